"""Griffe extension (mkdocs.yml, mkdocstrings ``extensions:``): the docstrings' reST bits,
read as Markdown for the API reference.

The docstrings are Google style with a few Sphinx habits that Markdown shows literally:
cross-reference roles (``:func:`optimize```, ``:class:`~cnnviz_widgets.Session```) become
code spans (``optimize``, ``Session``: a leading ``~`` keeps the last name only, as Sphinx
does), and a paragraph ending in ``::`` before an indented code block ends in ``:``.  The
source is not changed: ``help()`` shows the docstrings as written.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
LITERAL = re.compile(r"::$", re.MULTILINE)


def _role(match: re.Match) -> str:
    short, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def markdown_docstring(text: str) -> str:
    """``text`` with its reST roles as code spans and its literal-block ``::`` as ``:``."""
    return LITERAL.sub(":", ROLE.sub(_role, text))


class RstRoles(Extension):
    """Rewrites each object's docstring once the package is loaded."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
