"""The package's structure: no module imports another's private names, and private Keras
API is read in one module only (engine/internals.py)."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).parents[1] / "cnnviz_widgets"
PRIVATE_KERAS = re.compile(
    r"\._(inbound_nodes|nodes_by_depth|functional|run_through_graph|"
    r"omit_frequent_tracing_warning|value)\b|keras\.src\b"
)


def test_no_module_imports_a_private_name_of_another():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                names = [a.name for a in node.names]
                private = [n for n in names if n.startswith("_") and not n.endswith("__")]
                assert not private, f"{path.relative_to(PACKAGE)} imports {private}"


def test_private_keras_api_is_read_in_internals_only():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "internals.py":
            continue
        found = PRIVATE_KERAS.findall(path.read_text())
        assert not found, f"{path.relative_to(PACKAGE)} reads private Keras API: {found}"
