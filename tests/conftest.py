import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# "auto" keeps float32 in the suite (and in the kernels, servers and Ray workers it starts,
# which inherit the environment): on a CPU with bfloat16 it would otherwise measure and
# pick bfloat16 by timing, so a test's numbers would depend on the machine and its load.
# The tests of what "auto" chooses simulate the hardware (monkeypatched), and the quality
# tests ask for bfloat16 by name.
os.environ.setdefault("CNNVIZ_AUTO_PRECISION", "float32")

import keras
import pytest

import cnnviz_widgets as cw

from .helpers import NOTEBOOK_TIMES, spy_on_canvases


@pytest.fixture(autouse=True)
def _fresh_precision_decisions():
    """ "auto" remembers its decisions by a model's architecture and weights for the
    process; a test's simulated hardware or timings must not decide another test's."""
    from cnnviz_widgets.engine.model import precision

    precision._BY_SIGNATURE.clear()
    yield
    precision._BY_SIGNATURE.clear()


@pytest.fixture(scope="session")
def vgg16():
    """VGG16 with random weights (nothing is downloaded), seeded so runs repeat."""
    keras.utils.set_random_seed(0)
    return cw.load_model("vgg16", weights=None)


@pytest.fixture(scope="session")
def shapes():
    return cw.load_model("shapes")


@pytest.fixture
def sent(monkeypatch):
    """Every PNG image the canvas manager sends, decoded, by the canvas it is for."""
    return spy_on_canvases(monkeypatch)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Print how long each notebook took (the exercises promise two minutes on two cores)."""
    times = config.stash.get(NOTEBOOK_TIMES, {})
    if times:
        terminalreporter.write_sep("-", "notebook run times (wall clock; the kernel's CPU time)")
        for name, (wall, cpu) in sorted(times.items()):
            terminalreporter.write_line(f"{wall:7.1f} s wall  {cpu:7.1f} s CPU  {name}")
