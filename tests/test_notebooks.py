"""Every notebook in notebooks/ (the tour, the exercises and their solutions) runs top to
bottom without an error, on a kernel started as a user's would be (no TF_CPP_MIN_LOG_LEVEL,
no warning filters), and prints none of TensorFlow's log lines; the tour prints nothing on
stderr at all (no warning either).  Each notebook's run time is printed at the end of the
test run (the exercises promise at most two minutes on two cores); nothing here asserts a
time."""

import os
import pathlib
import re
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from .helpers import NOTEBOOK_TIMES

ROOT = pathlib.Path(__file__).parents[1] / "notebooks"
# (Jupyter's own copies in .ipynb_checkpoints are not notebooks of the project)
NOTEBOOKS = sorted(p for p in ROOT.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
SOLUTIONS = [p for p in NOTEBOOKS if p.parent.name == "solutions"]
CPU_CELL = (
    "import resource\n"
    "r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print('kernel CPU seconds', r.ru_utime + r.ru_stime)"
)


def _outputs(nb):
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def _checks(nb) -> list[str]:
    """The states of the classroom checks a notebook displayed: pass, hint or empty."""
    states = []
    for out in _outputs(nb):
        text = out.get("data", {}).get("text/html", "")
        if 'class="cnnviz-check ' in text:
            states.append(text.split('data-check="', 1)[1].split('"', 1)[0])
    return states


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
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, request):
    nb = nbformat.read(path, as_version=4)
    # a last cell, added here only: the kernel's own CPU seconds (user + system, all its
    # threads), a figure that does not depend on what else the machine is doing
    nb.cells.append(nbformat.v4.new_code_cell(CPU_CELL))
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
    start = time.perf_counter()
    client.execute(env=env)
    wall = time.perf_counter() - start
    cpu = float(nb.cells.pop().outputs[0]["text"].split()[-1])
    request.config.stash.setdefault(NOTEBOOK_TIMES, {})[str(path.relative_to(ROOT))] = (wall, cpu)
    errors = [out for out in _outputs(nb) if out.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    images = [out for out in _outputs(nb) if "image/png" in out.get("data", {})]
    assert images, "the notebook shows no picture"
    logged = [
        m.string[m.start() : m.start() + 200] for s in _streams(nb) for m in TF_LOG.finditer(s)
    ]
    assert not logged, logged
    if path.name == "tour.ipynb":
        assert not _streams(nb, "stderr"), _streams(nb, "stderr")
    checks = _checks(nb)
    if path.parent.name == "solutions":
        assert checks and set(checks) == {"pass"}, f"a solution's checks: {checks}"
    elif path.parent.name == "exercises":
        # the student's copy: every task starts unanswered, and the check says so
        assert checks and set(checks) == {"empty"}, f"an exercise's checks: {checks}"


def test_every_exercise_has_a_solution_and_the_generator_wrote_both(monkeypatch):
    exercises = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert len(exercises) >= 4
    assert exercises == sorted(p.name for p in SOLUTIONS)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_exercises", ROOT.parent / "scripts" / "make_exercises.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_exercises", module)  # its dataclass looks it up
    spec.loader.exec_module(module)
    for name, cells in module.EXERCISES.items():
        for solution, path in ((False, ROOT / "exercises"), (True, ROOT / "exercises/solutions")):
            written = nbformat.read(path / f"{name}.ipynb", as_version=4)
            expected = module.build(cells, solution, name)
            assert [c.source for c in written.cells] == [c.source for c in expected.cells], (
                f"{path.name}/{name}.ipynb differs from scripts/make_exercises.py: run it"
            )
