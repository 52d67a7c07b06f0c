"""Helpers shared by the browser tests: start and stop servers, write notebooks, run code in
a page's kernel, and read or wait for the pixels of a canvas in the page."""

from __future__ import annotations

import base64
import io
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
IDLE = "Python 3 (ipykernel) | Idle"

# a cheap fingerprint of a canvas' pixels, computed in the page
HASH_JS = """(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let h = 0; for (let i = 0; i < d.length; i += 7) h = (Math.imul(h, 31) + d[i]) | 0;
  return h; }"""


# --- servers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Wait until ``url/api/status`` answers (a Jupyter server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not start in {timeout} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server started in its own process group (its kernels with it)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: the server and kernels
        proc.wait(timeout=10)


# --- notebooks and kernels ---------------------------------------------------------------


def notebook(root, name: str, cells: list[str]) -> str:
    """Write a notebook of code ``cells`` as ``root/name``; returns ``name``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    nbformat.write(nb, root / name)
    return name


def kernel(page, code: str) -> str:
    """Run ``code`` in the notebook's kernel (not as a cell); returns what it printed."""
    return page.evaluate(
        """async (code) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const future = kernel.requestExecute({code, store_history: false});
            let out = '';
            future.onIOPub = (msg) => {
                if (msg.header.msg_type === 'stream') out += msg.content.text;
                if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.evalue;
            };
            await future.done;
            return out;
        }""",
        code,
    )


def copy_notebook(name: str, root: Path) -> Path:
    """Copy notebooks/<name> into the server's folder (the repository copy stays clean)."""
    target = root / name
    shutil.copy(REPO / "notebooks" / name, target)
    return target


def open_and_run(context, url: str, path: str, workspace: str, ready_selector: str):
    """Open a notebook in its own workspace, wait for an idle kernel, run all cells and
    wait until ``ready_selector`` is in the page.  Returns the page."""
    page = context.new_page()
    page.goto(f"{url}/lab/workspaces/{workspace}/tree/{path}")
    page.get_by_text(IDLE).wait_for(timeout=60_000)
    page.evaluate(
        """() => {
            const app = window.jupyterapp;
            if (!app.shell.leftCollapsed) app.commands.execute('application:toggle-left-area');
            return app.commands.execute('notebook:run-all-cells');
        }"""
    )
    page.locator(ready_selector).first.wait_for(timeout=90_000)
    return page


# --- canvases ----------------------------------------------------------------------------


def read_canvas(page, selector: str, index: int = 0) -> np.ndarray:
    """The RGBA pixels of the ``index``-th canvas matching ``selector``, read from the page."""
    url = page.evaluate(
        "([sel, i]) => document.querySelectorAll(sel)[i].toDataURL('image/png')", [selector, index]
    )
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def wait_drawn(
    page,
    selector: str,
    index: int = 0,
    width: int | None = None,
    before: int | None = None,
    timeout: float = 60_000,
) -> None:
    """Wait until the canvas is drawn (opaque corner), optionally at a size and with
    pixels other than ``before`` (a :func:`fingerprint`)."""
    page.wait_for_function(
        f"""([sel, i, w, before]) => {{
            const hash = {HASH_JS};
            const c = document.querySelectorAll(sel)[i];
            if (!c || c.width <= 1 || (w !== null && c.width !== w)) return false;
            const px = c.getContext('2d').getImageData(c.width - 1, c.height - 1, 1, 1).data;
            if (px[3] !== 255) return false;
            return before === null || hash(c) !== before;
        }}""",
        arg=[selector, index, width, before],
        polling="raf",
        timeout=timeout,
    )


def fingerprint(page, selector: str, index: int = 0) -> int:
    """A hash of the canvas' pixels, computed in the page."""
    return page.evaluate(
        f"([sel, i]) => ({HASH_JS})(document.querySelectorAll(sel)[i])", [selector, index]
    )


def option_index(page, selector: str, prefix: str) -> int:
    """Index of the option whose text starts with ``prefix`` (labels use nbsp)."""
    return page.evaluate(
        """([sel, prefix]) => [...document.querySelector(sel).options]
              .findIndex(o => o.textContent.replace(/\\u00a0/g, ' ').trim().startsWith(prefix))""",
        [selector, prefix],
    )


def server_env(root: Path) -> dict:
    """The environment of a Jupyter or Voila server the tests start: its own config,
    runtime and IPython folders under ``root/.home`` (made here), TensorFlow quiet."""
    home = root / ".home"
    (home / "config").mkdir(parents=True)
    return dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONWARNINGS="ignore",
    )


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Wait until something listens on ``port`` (for Voila: a GET of ``/`` starts a kernel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.25)
    raise RuntimeError(f"the server did not start in {timeout} s:\n{log.read_text()[-3000:]}")
