"""The package's structure: no module imports another's private names (the other fences:
tests/test_fences.py)."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).parents[1] / "cnnviz_widgets"


def test_no_module_imports_a_private_name_of_another():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                names = [a.name for a in node.names]
                private = [n for n in names if n.startswith("_") and not n.endswith("__")]
                assert not private, f"{path.relative_to(PACKAGE)} imports {private}"
