"""MkDocs hook (mkdocs.yml ``hooks:``): publish the notebooks the nav names.

The notebooks live in ``notebooks/``, outside ``docs/``.  Only those listed in the nav are
added to the site, so a teacher's scratch notebook in that folder is never published, and
the exercises' worked solutions (``notebooks/exercises/solutions/``) are refused outright:
students read the site.  mkdocs-jupyter renders them as they are stored (``execute: false``;
the test suite runs every notebook already).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "notebooks/"


def _nav_paths(nav) -> list[str]:
    """Every page path in a nav tree (lists of strings and one-key dicts)."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_paths(value)]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_paths(item)]
    return []


def notebooks_in_nav(nav) -> list[str]:
    """The notebook paths (``notebooks/...ipynb``) the nav names, in nav order."""
    return [p for p in _nav_paths(nav) if p.startswith(PREFIX) and p.endswith(".ipynb")]


# before mkdocs-jupyter's on_files (priority 0), which wraps every .ipynb file it finds
@event_priority(50)
def on_files(files: Files, config) -> Files:
    for path in notebooks_in_nav(config["nav"]):
        if "/solutions/" in path:
            raise PluginError(f"{path}: the exercises' solutions are not published")
        if not (ROOT / path).is_file():
            raise PluginError(f"mkdocs.yml names {path}, which does not exist")
        files.append(File(path, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
