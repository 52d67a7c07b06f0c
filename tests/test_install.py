"""The README's commands start without a deprecation warning from the project's setup."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .browser.pages import free_port, stop

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_demo_starts_jupyterlab_without_deprecation_warnings(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("needs make")
    # the exact command `make demo` runs, with this interpreter's jupyter
    planned = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    line = next(x for x in reversed(planned) if " lab " in x)
    cmd = shlex.split(line)
    assert cmd[0].endswith("/jupyter") and cmd[1] == "lab"
    cmd[0] = str(Path(sys.executable).with_name("jupyter"))
    if "--no-browser" not in cmd:  # a machine with a screen: do not open one
        cmd.append("--no-browser")
    cmd += ["--ip=127.0.0.1", f"--port={free_port()}"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while "is running at" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, f"jupyter lab exited early:\n{log.read_text()[-3000:]}"
            time.sleep(0.25)
        text = log.read_text()
        assert "is running at" in text, f"jupyter lab did not start:\n{text[-3000:]}"
    finally:
        stop(proc)
    warned = [x for x in text.splitlines() if "Deprecat" in x or x.startswith("[W")]
    assert not warned, "\n".join(warned)
