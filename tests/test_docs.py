"""The documentation: the API reference covers the public API, the site publishes the
notebooks but never the exercises' solutions, and the README stays a short, linked entry.

The site itself is built with ``mkdocs build --strict`` by ``make test`` (before pytest):
broken links, anchors and API references fail there.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import classroom, objectives, widgets

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _directives() -> set[str]:
    """Every ``::: dotted.path`` of the API reference pages."""
    found = set()
    for page in (DOCS / "api").glob("*.md"):
        found.update(re.findall(r"^::: *([\w.]+)", page.read_text(), flags=re.MULTILINE))
    return found


def _documented(name: str, directives: set[str], modules: tuple[str, ...]) -> bool:
    return any(d.endswith("." + name) for d in directives) or any(m in directives for m in modules)


@pytest.mark.parametrize(
    "module, modules",
    [
        (cw, ()),
        (classroom, ("cnnviz_widgets.classroom",)),
        (objectives, ("cnnviz_widgets.objectives",)),
    ],
    ids=["cnnviz_widgets", "classroom", "objectives"],
)
def test_every_public_name_is_in_the_api_reference(module, modules):
    directives = _directives()
    # a module re-exported at the top level has its own page
    names = [n for n in module.__all__ if not isinstance(getattr(module, n), type(cw))]
    missing = [n for n in names if not _documented(n, directives, modules)]
    assert not missing, f"not in docs/api/*.md (add a '::: ...{missing[0]}' line): {missing}"
    for sub in ("classroom", "objectives"):
        assert f"cnnviz_widgets.{sub}" in directives


def test_every_panel_is_in_the_api_reference():
    directives = _directives()
    panels = [n for n in widgets.__all__ if n in cw._WIDGETS or n == "Explorer"]
    assert len(panels) >= 7
    missing = [n for n in panels if f"cnnviz_widgets.widgets.{n}" not in directives]
    assert not missing, missing


def _nav() -> list:
    yaml = pytest.importorskip("yaml", reason="reading mkdocs.yml needs PyYAML ('.[docs]')")
    with open(ROOT / "mkdocs.yml") as f:  # plain YAML: no !!python tags
        return yaml.safe_load(f)["nav"]


def _hooks():
    pytest.importorskip("mkdocs", reason="the docs hook needs pip install '.[docs]'")
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts/docs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_publishes_every_tracked_notebook_but_no_solution():
    hooks = _hooks()
    published = hooks.notebooks_in_nav(_nav())
    assert not [p for p in published if "/solutions/" in p]
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "notebooks/*.ipynb"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    expected = sorted(p for p in tracked if "/solutions/" not in p)
    assert expected, "git ls-files found no notebook"
    assert sorted(published) == expected


def test_the_hook_refuses_a_solution_in_the_nav(tmp_path):
    hooks = _hooks()
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import Files

    nav = [{"Answers": "notebooks/exercises/solutions/01_reading_filters.ipynb"}]
    config = {"nav": nav, "site_dir": str(tmp_path), "use_directory_urls": True}
    with pytest.raises(PluginError, match="solutions are not published"):
        hooks.on_files(Files([]), config)
    config["nav"] = [{"Tour": "notebooks/tour.ipynb"}]
    files = hooks.on_files(Files([]), config)
    assert [f.src_uri for f in files] == ["notebooks/tour.ipynb"]


def test_every_guide_page_is_in_the_nav():
    named = set(_hooks()._nav_paths(_nav()))
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - named == set()


def test_the_readme_is_short_names_the_test_command_and_links_to_existing_files():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "## The test command: `make test`" in text
    assert "make demo" in text and "make app" in text
    targets = re.findall(r"\]\(([^)#\s]+)\)", text)
    assert targets, "the README links nowhere"
    broken = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not broken, broken


def test_the_api_reference_reads_the_docstrings_sphinx_roles_as_code():
    pytest.importorskip("griffe", reason="the API reference needs pip install '.[docs]'")
    spec = importlib.util.spec_from_file_location(
        "griffe_rst_roles", ROOT / "scripts/griffe_rst_roles.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = "Runs :func:`optimize` on a :class:`~cnnviz_widgets.session.Session`. Example::\n"
    assert module.markdown_docstring(text) == "Runs `optimize` on a `Session`. Example:\n"
    # the package's docstrings: nothing of those roles is left after the rewrite
    doc = module.markdown_docstring(cw.visualize.__doc__)
    assert ":class:" in cw.visualize.__doc__ and ":class:" not in doc


def test_make_builds_the_docs_strictly_in_the_test_command():
    if shutil.which("make") is None:
        pytest.skip("needs make")
    for target in ("test", "docs"):
        planned = subprocess.run(
            ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        build = [line for line in planned.splitlines() if " build " in line]
        assert build, f"make {target} does not build the docs"
        # --quiet hides the warnings from mkdocs' own count: --strict would pass them
        assert "--strict" in build[0] and "--quiet" not in build[0], build[0]
