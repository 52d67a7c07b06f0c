"""`make app`: notebooks/app.ipynb served by Voila, as a teacher would project it.

The test starts Voila on a copy of the app notebook (the command `make app` runs), opens it
in headless chromium with every non-local request blocked (offline), and checks that no code
is shown, that the explorer's panels drew (the filter gallery's canvas holds a picture, not
a blank), and that a click works: choosing conv3 in the layer list redraws the gallery.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/app.png.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .pages import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    copy_notebook,
    fingerprint,
    free_port,
    option_index,
    read_canvas,
    server_env,
    stop,
    wait_drawn,
    wait_for_port,
)
from .test_lab import CANVAS, LIST

EXPLORER = ".cnnviz-explorer"
TAB = f"{EXPLORER} .lm-TabBar-tab"


@pytest.fixture(scope="module")
def app_page(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    pytest.importorskip("playwright", reason="browser tests need `pip install playwright`")
    pytest.importorskip("voila", reason="`make app` needs voila")
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("app")
    copy_notebook("app.ipynb", root)
    env = server_env(root)
    port = free_port()
    # the command of `make app`, on a free port
    cmd = [sys.executable, str(REPO / "scripts" / "serve_app.py"), str(root / "app.ipynb")]
    cmd += ["--no-browser"]
    cmd += ["--Voila.ip=127.0.0.1", f"--port={port}"]
    log = root / ".home" / "voila.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, proc, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1360, "height": 1400})
            requests = []

            def local_only(route):
                host = route.request.url.split("/")[2].split(":")[0]
                if host in ("127.0.0.1", "localhost"):
                    route.continue_()
                else:  # offline: a font CDN, anything else
                    requests.append(route.request.url)
                    route.abort()

            context.route("**/*", local_only)
            page = context.new_page()
            # Voila runs the notebook before it answers: that includes importing TensorFlow
            page.goto(f"http://127.0.0.1:{port}", timeout=300_000)
            page.locator(LIST).wait_for(timeout=180_000)
            yield page
            context.close()
            browser.close()
    finally:
        stop(proc)


def test_the_app_shows_no_code_and_the_classes(app_page):
    text = app_page.inner_text("body")
    assert "import cnnviz_widgets" not in text and "cw.explore" not in text
    assert app_page.locator(".jp-InputArea-editor, .jp-CodeMirrorEditor").count() == 0
    assert "Look inside a CNN" in text
    pictures = app_page.locator("img")  # the strip of the nine classes (a PNG)
    assert pictures.count() >= 1
    tabs = [t.strip() for t in app_page.locator(TAB).all_inner_texts()]
    assert tabs[:3] == ["Layers", "Filters", "Class optimization"], tabs


def test_the_gallery_drew_a_picture(app_page):
    app_page.locator(TAB, has_text="Filters").click()
    wait_drawn(app_page, CANVAS, 0)
    pixels = read_canvas(app_page, CANVAS)[..., :3]
    assert pixels.std() > 10, "the gallery's canvas is blank"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # filters, not a flat fill


def test_a_click_in_the_layer_list_redraws_the_gallery(app_page, tmp_path):
    page = app_page
    page.locator(TAB, has_text="Filters").click()
    wait_drawn(page, CANVAS, 0)
    mark = fingerprint(page, CANVAS)
    page.locator(TAB, has_text="Layers").click()
    page.locator(LIST).select_option(index=option_index(page, LIST, "conv3"))
    page.locator(TAB, has_text="Filters").click()
    wait_drawn(page, CANVAS, 0, before=mark)  # the kernel answered with conv3's montage
    page.get_by_text("of conv3").first.wait_for(timeout=30_000)
    # a picture of the app on conv1, for docs/; the mark is taken before the pick (taken
    # after it, a quick redraw could land first and the wait below would wait for nothing:
    # a clean-clone CI run timed out there)
    mark = fingerprint(page, CANVAS)
    page.locator(TAB, has_text="Layers").click()
    page.locator(LIST).select_option(index=option_index(page, LIST, "conv1"))
    page.locator(TAB, has_text="Filters").click()
    wait_drawn(page, CANVAS, 0, before=mark)
    page.mouse.move(0, 0)
    out_dirs = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in out_dirs:
        page.screenshot(path=str(folder / "app.png"), full_page=True)
    shot = np.asarray(Image.open(tmp_path / "app.png"))
    assert shot[..., :3].std() > 10
