"""Every notebook in notebooks/ (the tour, the exercises) and teacher/ (the solutions) runs top to
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

REPO = pathlib.Path(__file__).parents[1]
ROOT = REPO / "notebooks"
TEACHER = REPO / "teacher" / "solutions"  # outside notebooks/: students' copies lack them
# (Jupyter's own copies in .ipynb_checkpoints are not notebooks of the project)
NOTEBOOKS = sorted(
    p
    for folder in (ROOT, TEACHER)
    for p in folder.rglob("*.ipynb")
    if ".ipynb_checkpoints" not in p.parts
)
IDS = [str(p.relative_to(REPO)) for p in NOTEBOOKS]
SOLUTIONS = [p for p in NOTEBOOKS if p.parent == TEACHER]
EXERCISES = [p for p in NOTEBOOKS if p.parent == ROOT / "exercises"]
EXECUTED = pytest.StashKey[dict]()
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


def _run(path, request):
    """``path`` executed on a fresh kernel, and its wall and CPU seconds (cached per run)."""
    done = request.config.stash.setdefault(EXECUTED, {})
    if path in done:
        return done[path]
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
    # (conftest.py) are not passed on, nor pytest's marker variable (with it ipykernel does
    # not forward what is written to file descriptor 2 into the cells)
    dropped = ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS", "PYTEST_CURRENT_TEST")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    start = time.perf_counter()
    client.execute(env=env)
    wall = time.perf_counter() - start
    cpu = float(nb.cells.pop().outputs[0]["text"].split()[-1])
    done[path] = nb, wall, cpu
    return done[path]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs(path, request):
    nb, wall, cpu = _run(path, request)
    request.config.stash.setdefault(NOTEBOOK_TIMES, {})[str(path.relative_to(REPO))] = (wall, cpu)
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
    if path.parent == TEACHER:
        assert checks and set(checks) == {"pass"}, f"a solution's checks: {checks}"
    elif path.parent == ROOT / "exercises":
        # the student's copy: every task starts unanswered, and the check says so
        assert checks and set(checks) == {"empty"}, f"an exercise's checks: {checks}"


def _texts(nb) -> str:
    """Everything a notebook's outputs show as text (streams, results, HTML)."""
    parts = []
    for out in _outputs(nb):
        parts.append(out.get("text", ""))
        for kind in ("text/plain", "text/html", "text/markdown"):
            parts.append(str(out.get("data", {}).get(kind, "")))
    return "\n".join(parts)


NUMBER = re.compile(r"-?\d+\.\d+")


@pytest.mark.slow
@pytest.mark.parametrize("path", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_an_exercise_shows_none_of_its_answers(path, request):
    """Run all on the student's copy shows no number that a worked answer computes (the
    values the checks compare with), at 2, 3 or 4 decimals, and no answer is 0 (a guess)."""
    solution, _, _ = _run(TEACHER / path.name, request)
    exercise, _, _ = _run(path, request)
    answers = [
        float(x)
        for cell in solution.cells
        if "solution" in cell.metadata.get("tags", [])
        for out in cell.get("outputs", [])
        if out.get("output_type") == "execute_result"
        for x in NUMBER.findall(out["data"].get("text/plain", ""))
    ]
    shown = _texts(exercise)
    for value in answers:
        for digits in (2, 3, 4):
            text = f"{value:.{digits}f}"
            if float(text) != 0:
                assert text not in shown, f"{path.name} shows {text}, an answer, unanswered"
    # an answer of exactly 0 alone can be guessed: exercise 2b's zeros sit beside sums > 0
    assert not answers or any(abs(v) > 0.01 for v in answers)


def test_every_exercise_has_a_solution_and_the_generator_wrote_both(monkeypatch):
    exercises = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
    assert len(exercises) >= 4
    assert exercises == sorted(p.name for p in SOLUTIONS)
    # the students' folder carries no solution, in any sub-folder
    under = [p for p in ROOT.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    assert not [p for p in under if '"solution"' in p.read_text()], "a solution under notebooks/"
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_exercises", ROOT.parent / "scripts" / "make_exercises.py"
    )
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_exercises", module)  # its dataclass looks it up
    spec.loader.exec_module(module)
    for name, cells in module.EXERCISES.items():
        for solution, path in ((False, ROOT / "exercises"), (True, TEACHER)):
            written = nbformat.read(path / f"{name}.ipynb", as_version=4)
            expected = module.build(cells, solution, name)
            assert [c.source for c in written.cells] == [c.source for c in expected.cells], (
                f"{path.name}/{name}.ipynb differs from scripts/make_exercises.py: run it"
            )
