"""Every notebook in notebooks/ runs top to bottom without an error, on a kernel started as
a user's would be (no TF_CPP_MIN_LOG_LEVEL, no warning filters), and prints none of
TensorFlow's log lines; the tour prints nothing on stderr at all (no warning either)."""

import os
import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))

# TensorFlow's C++ log lines ("I0000 00:00:1796... cudart_stub.cc:31] ...", "E0000 ..."), its
# start-up banner, its Python logger's warnings (retracing) and grappler's errors
TF_LOG = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|WARNING:tensorflow|retracing|"
    r"grappler|remapper|cuInit|cuda|oneDNN|rebuild TensorFlow",
    re.MULTILINE,
)


def _streams(nb, name=None):
    return [
        out["text"]
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and name in (None, out.get("name"))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    # a fresh kernel as a user gets it: the test session's TensorFlow and warning settings
    # (conftest.py) are not passed on
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")
    }
    client.execute(env=env)
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    images = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    ]
    assert images, "the notebook shows no picture"
    logged = [
        m.string[m.start() : m.start() + 200] for s in _streams(nb) for m in TF_LOG.finditer(s)
    ]
    assert not logged, logged
    if path.name == "tour.ipynb":
        assert not _streams(nb, "stderr"), _streams(nb, "stderr")
