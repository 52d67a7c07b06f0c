"""Importing cnnviz_widgets keeps TensorFlow's start-up lines out of stderr (they land in
red in every notebook's first cell), and never a line that is not one of them."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnviz_widgets import tflog

from .test_notebooks import TF_LOG

PACKAGE = Path(tflog.__file__).resolve().parents[1]

# what TensorFlow 2.21 printed here, on a machine without a GPU
START_UP = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796155851.789095    2998 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1796155851.899569    2998 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796155889.033158    3183 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)
"""  # noqa: E501
CUINIT = START_UP.splitlines(keepends=True)[-1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGE), env.get("PYTHONPATH", "")])
    return {**env, **extra}


def test_start_up_lines_are_dropped_and_nothing_else():
    assert tflog.filter_start_up(START_UP) == ""
    real = "E0000 00:00:1.0  1 bfc_allocator.cc:1] Allocator ran out of memory\nboom\n"
    assert tflog.filter_start_up(START_UP + real) == real
    # a failed cuInit without "no CUDA driver" is a real error (a GPU machine): kept
    assert tflog.filter_start_up(CUINIT) == CUINIT


@pytest.mark.slow
def test_importing_the_package_prints_no_tensorflow_log():
    code = "import cnnviz_widgets as cw; cw.visualize(cw.load_model('shapes'), 0, steps=2)"
    quiet = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert quiet.returncode == 0, quiet.stderr
    assert not TF_LOG.search(quiet.stderr), quiet.stderr
    assert quiet.stderr == ""
    # the same with TensorFlow's log asked for: the lines are there (so the check above
    # can see them), and the user's setting is kept
    loud = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
        env=_env(TF_CPP_MIN_LOG_LEVEL="0"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loud.stdout.strip() == "0"
    if "cudart_stub" in loud.stderr or "cpu_feature_guard" in loud.stderr:
        assert TF_LOG.search(loud.stderr)


def test_a_real_error_while_tensorflow_starts_is_still_shown(tmp_path):
    # a stand-in for TensorFlow that prints its start-up lines and a real error on fd 2
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import os
            os.write(2, {START_UP.encode()!r})
            os.write(2, b"E0000 00:00:1.0  7 something.cc:9] a real problem\\n")
            def zeros(shape):
                os.write(2, b"runtime started\\n")
            """
        )
    )
    code = textwrap.dedent(
        f"""
        import importlib.util, os
        spec = importlib.util.spec_from_file_location("tflog", {str(Path(tflog.__file__))!r})
        tflog = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tflog)
        tflog.import_tensorflow()
        print(os.environ["TF_CPP_MIN_LOG_LEVEL"])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    assert out.stderr == "E0000 00:00:1.0  7 something.cc:9] a real problem\nruntime started\n"


def _stderr_by_cell(cells: list[str]) -> list[str]:
    """Each cell's stderr, the cells run in order on a fresh Jupyter kernel as a teacher's
    notebook (TensorFlow's log settings of the test session not passed on).  A last cell
    waits a little: the kernel forwards what the process writes on its file descriptor 2
    from a thread, and a line written at the end of the last cell could otherwise arrive
    after the notebook is done (a line missed would let these tests pass wrongly)."""
    import nbformat
    from nbclient import NotebookClient

    cells = [*cells, "import sys, time; time.sleep(3); sys.stderr.flush()"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # without PYTEST_CURRENT_TEST: ipykernel does not forward its file descriptor 2 into the
    # cells when it sees it (it leaves the capture to pytest), and nothing would be seen
    env = {k: v for k, v in _env().items() if k not in ("PYTHONWARNINGS", "PYTEST_CURRENT_TEST")}
    NotebookClient(nb, timeout=600, kernel_name="python3").execute(env=env)
    out = []
    for cell in nb.cells:
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, errors[0].get("evalue")
        out.append(
            "".join(
                o["text"]
                for o in cell.outputs
                if o.get("output_type") == "stream" and o.get("name") == "stderr"
            )
        )
    return out


TEACHER_CELLS = ["import cnnviz_widgets as cw", "cw.visualize(cw.load_model('shapes'), 0, steps=2)"]
MARK = "=== cnnviz_widgets imported next ==="


@pytest.mark.slow
def test_keras_imported_first_the_start_up_block_comes_once_and_nothing_after_it():
    # the order a teacher writes: TensorFlow's import lines come with `import keras`, before
    # the package exists (nothing can take them back); nothing of it may come again later
    # (the failed cuInit line came when the runtime started, at the package's first use)
    code = f"import sys, keras\nprint({MARK!r}, file=sys.stderr, flush=True)\n" + "\n".join(
        TEACHER_CELLS
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    before, after = out.stderr.split(MARK + "\n")
    if "absl::InitializeLog" in before:  # this TensorFlow prints a start-up block at all
        # TensorFlow 2.21 writes its block once per library that starts its log
        assert before.count("absl::InitializeLog") <= 2
        assert "cuInit" not in before  # the runtime is not started by `import keras`
    assert after == "", after


@pytest.mark.slow
def test_in_a_notebook_keras_first_prints_nothing_after_its_own_cell():
    first, *later = _stderr_by_cell(["import keras", *TEACHER_CELLS])
    assert "cuInit" not in first
    assert not any(TF_LOG.search(s) for s in later), later
    assert later == ["", "", ""], later


@pytest.mark.slow
def test_the_documented_first_cell_keeps_a_notebook_free_of_tensorflow_lines():
    # docs/teaching.md: import cnnviz_widgets first; `import keras` after it is quiet
    got = _stderr_by_cell([TEACHER_CELLS[0], "import keras", TEACHER_CELLS[1]])
    assert got == ["", "", "", ""], got


def test_a_cuinit_line_after_an_earlier_import_is_dropped_only_without_a_driver():
    # TensorFlow imported by keras first: "no driver" was printed before the filter ran
    assert tflog.filter_start_up(CUINIT, no_driver=True) == ""
    assert tflog.filter_start_up(CUINIT, no_driver=False) == CUINIT
