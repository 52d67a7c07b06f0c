"""A real JupyterLab in headless Debian chromium, driven by Playwright (see DESIGN.md §3).

Each test module gets its own Lab server (``lab`` fixture) on a free port, with its
configuration, runtime and IPython directories in a temporary folder, and a browser page.
The server is stopped by its PID at the end.  Without /usr/bin/chromium the tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
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


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # the server shuts its kernels down
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: the server and kernels
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """``(url, root)`` of a fresh JupyterLab serving a temporary folder."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    pytest.importorskip("playwright", reason="browser tests need `pip install playwright`")
    root = tmp_path_factory.mktemp("lab")
    home = root / ".home"
    config = home / "config"
    settings = config / "lab" / "user-settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    (settings / "apputils-extension").mkdir(parents=True)
    # render every cell (no virtual scrolling), no autosave, no update / news pop-ups
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"})
    )
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    (settings / "docmanager-extension").mkdir(parents=True)
    (settings / "docmanager-extension" / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosave": False})
    )
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONWARNINGS="ignore",
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = root / ".home" / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_server(url, proc, log)
        yield url, root
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def browser_context(lab):
    """A headless chromium context that may only talk to the local server."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1360, "height": 1000})

        def local_only(route):
            host = route.request.url.split("/")[2].split(":")[0]
            if host in ("127.0.0.1", "localhost"):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", local_only)
        try:
            yield context
        finally:
            context.close()
            browser.close()


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
