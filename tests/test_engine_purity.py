"""The engine imports no widget, IPython or pyplot module."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).parents[1] / "cnnviz_widgets"
ENGINE = PACKAGE / "engine"
# the engine, and the modules on top of it that must work without Jupyter too
PURE = [*ENGINE.rglob("*.py"), *(PACKAGE / "classroom").rglob("*.py")]
FORBIDDEN = ("ipywidgets", "ipycanvas", "IPython", "matplotlib.pyplot", "pylab")


def test_engine_sources_import_nothing_forbidden():
    for path in PURE:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path.name} imports {name}"


def test_importing_the_engine_loads_no_forbidden_module():
    # Keras itself imports pyplot and IPython when they are installed
    # (keras.src.visualization), so compare against what a bare `import keras` loads: the
    # engine must add no forbidden module of its own.
    code = (
        "import sys, keras;"
        f"base = {{n for n in sys.modules if n.startswith({FORBIDDEN!r})}};"
        "import cnnviz_widgets.engine as e;"
        "m = e.load_model('shapes'); e.filter_montage(m, 'conv1'); e.layer_table(m);"
        "from cnnviz_widgets import classroom as c; c.check_vertical_edge_filter(1, m);"
        f"bad = [n for n in sys.modules if n.startswith({FORBIDDEN!r}) and n not in base];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
