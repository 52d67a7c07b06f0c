"""The same panels in the other front ends the README promises: Notebook 7 and Voila.

Each front end gets its own server (pip-installed ``notebook`` / ``voila``, no extension
built) and headless Debian chromium.  A small notebook shows a LayerBrowser, a
FilterGallery and a ClassOptimizer on one session; the tests check that the widgets render,
that the gallery's canvas is drawn, that a click in the layer browser reaches the kernel
and comes back as a new montage, and that Run streams preview frames.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .pages import (
    CHROMIUM,
    CHROMIUM_ARGS,
    fingerprint,
    free_port,
    notebook,
    option_index,
    server_env,
    stop,
    wait_drawn,
    wait_for_port,
    wait_for_server,
)
from .test_lab import CANVAS, LIST
from .test_optimizer import RUN, STATUS, TILE

CELLS = [
    "import cnnviz_widgets as cw\nsession = cw.Session('shapes')\ncw.LayerBrowser(session)",
    "cw.FilterGallery(session)",
    "optimizer = cw.ClassOptimizer(session, steps=400)\noptimizer.class_targets = ['ring']\n"
    "optimizer",
]


def _server(kind: str, root: Path):
    """Start ``jupyter notebook`` or ``voila`` on a free port; returns (url, process)."""
    env = server_env(root)
    port = free_port()
    bin_dir = Path(sys.executable).parent
    if kind == "notebook":
        cmd = [
            str(bin_dir / "jupyter"),
            "notebook",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root}",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--JupyterNotebookApp.expose_app_in_browser=True",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
    else:
        cmd = [
            str(bin_dir / "voila"),
            str(root / "panels.ipynb"),
            "--no-browser",
            "--Voila.ip=127.0.0.1",
            f"--port={port}",
        ]
    log = root / ".home" / f"{kind}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        if kind == "notebook":
            wait_for_server(url, proc, log)
        else:  # a GET of Voila's page would start a kernel: wait for the port instead
            wait_for_port(port, proc, log)
    except BaseException:
        stop(proc)
        raise
    return url, proc


@pytest.fixture(scope="module", params=["notebook", "voila"])
def frontend_page(request, tmp_path_factory):
    """(kind, page): the panels notebook open and run in Notebook 7 or rendered by Voila."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    pytest.importorskip("playwright", reason="browser tests need `pip install playwright`")
    kind = request.param
    pytest.importorskip(kind, reason=f"the {kind} front end is not installed")
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp(kind)
    name = notebook(root, "panels.ipynb", CELLS)
    url, proc = _server(kind, root)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1360, "height": 2400})
            if kind == "notebook":
                page.goto(f"{url}/notebooks/{name}")
                page.wait_for_function(
                    "() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                    "&& window.jupyterapp.shell.currentWidget.sessionContext?.session?.kernel"
                    "?.connectionStatus === 'connected'",
                    timeout=90_000,
                )
                page.wait_for_timeout(500)
                page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            else:
                page.goto(url)  # Voila runs the notebook on the server and shows its outputs
            page.locator(TILE).first.wait_for(timeout=180_000)
            wait_drawn(page, CANVAS, 0)
            yield kind, page
            browser.close()
    finally:
        stop(proc)


def test_panels_render_and_the_gallery_is_drawn(frontend_page):
    kind, page = frontend_page
    texts = page.eval_on_selector(LIST, "s => [...s.options].map(o => o.textContent)")
    names = [t.replace("\u00a0", " ").split()[0] for t in texts]
    assert "conv1" in names and "predictions" in names, (kind, names)
    assert page.locator(CANVAS).count() >= 1


def test_a_click_in_the_layer_browser_redraws_the_gallery(frontend_page):
    _, page = frontend_page
    mark = fingerprint(page, CANVAS)
    page.locator(LIST).select_option(index=option_index(page, LIST, "conv3"))
    wait_drawn(page, CANVAS, 0, before=mark)  # the kernel answered with conv3's montage
    page.get_by_text("of conv3").first.wait_for(timeout=30_000)


def test_run_streams_preview_frames(frontend_page, tmp_path):
    kind, page = frontend_page
    seen = {fingerprint(page, TILE)}
    page.locator(RUN).click()
    deadline = 600  # polls of 50 ms: the run streams at least two different frames
    while len(seen) < 3 and deadline:
        page.wait_for_timeout(50)
        seen.add(fingerprint(page, TILE))
        deadline -= 1
    assert len(seen) >= 3, f"{kind}: the preview did not stream"
    page.locator(STATUS).get_by_text("done").wait_for(timeout=120_000)
    page.mouse.move(0, 0)  # a full-page picture, to look at when this test fails
    page.screenshot(path=str(tmp_path / f"frontend_{kind}.png"), full_page=True)
