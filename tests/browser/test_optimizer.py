"""ClassOptimizer and explore() in a real JupyterLab page: the live preview streams from the
background thread, Stop keeps the last image, other panels answer during a run.  The
preview's cost is measured by bench/bench_browser.py.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/class_optimizer.png and docs/explore.png.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time

import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.widgets.filter_gallery import auto_zoom

from .pages import (
    REPO,
    fingerprint,
    kernel,
    notebook,
    open_and_run,
    option_index,
    read_canvas,
    wait_drawn,
)
from .test_lab import CANVAS as GALLERY_CANVAS
from .test_lab import LIST

OPTIMIZER = ".cnnviz-class-optimizer"
TILE = "canvas.cnnviz-optimizer-canvas"
HISTORY = "canvas.cnnviz-history-canvas"
RUN = f"{OPTIMIZER} button.cnnviz-run-button"
STOP = f"{OPTIMIZER} button.cnnviz-stop-button"
STATUS = f"{OPTIMIZER} .cnnviz-status"


def status(page) -> str:
    return page.locator(STATUS).first.inner_text()


def wait_text(page, selector: str, pattern: str, timeout=120_000) -> str:
    """Wait until the first element matching ``selector`` shows text matching ``pattern``
    (a state, not a time: the kernel answers later under load), and return its text."""
    page.wait_for_function(
        """([sel, pattern]) => { const el = document.querySelector(sel);
              return el && new RegExp(pattern).test(el.innerText); }""",
        arg=[selector, pattern],
        timeout=timeout,
    )
    return page.locator(selector).first.inner_text()


def wait_status(page, pattern: str, timeout=120_000) -> str:
    return wait_text(page, STATUS, pattern, timeout)


@pytest.fixture(scope="module")
def opt_page(lab, browser_context):
    url, root = lab
    name = notebook(
        root,
        "optimizer_live.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "session = cw.Session('shapes')\n"
            "browser = cw.LayerBrowser(session, rows=10)\n"
            "optimizer = cw.ClassOptimizer(session, steps=100000)\n"
            "browser",
            "optimizer",
        ],
    )
    page = open_and_run(browser_context, url, name, "optimizer", RUN)
    page.locator(f"{OPTIMIZER} .cnnviz-class-list select").wait_for()
    return page


def test_run_streams_frames_stop_keeps_the_last_image_and_the_browser_answers(opt_page, capsys):
    page = opt_page
    # a click in the layer browser while idle, as a baseline
    start = time.perf_counter()
    page.locator(LIST).select_option(index=option_index(page, LIST, "conv2"))
    page.locator(".cnnviz-details").get_by_text("(None, 32, 32, 32)").first.wait_for()
    idle_click = time.perf_counter() - start

    page.locator(RUN).click()
    wait_drawn(page, TILE)  # the first live frame
    seen = {fingerprint(page, TILE)}
    while len(seen) < 3:  # the preview streams: new frames keep arriving
        wait_drawn(page, TILE, before=list(seen)[-1])
        seen.add(fingerprint(page, TILE))
    wait_status(page, r"step \d+ / 100000 · [\d.]+ steps/s · about")

    # the other panel answers while the run goes on
    start = time.perf_counter()
    page.locator(LIST).select_option(index=option_index(page, LIST, "conv4"))
    page.locator(".cnnviz-details").get_by_text("36,928").first.wait_for()
    busy_click = time.perf_counter() - start
    assert "steps/s" in status(page)  # still running
    assert kernel(page, "print(optimizer.running)").strip() == "True"

    page.locator(STOP).click()
    text = wait_status(page, "stopped at step")
    steps = int(re.search(r"stopped at step (\d+)", text).group(1))
    assert 3 <= steps < 100000
    # the status can show before the browser has decoded the last PNG: wait until the
    # canvas shows the kept image itself, then check that nothing is drawn after it
    kept = kernel(
        page, "import base64; print(base64.b64encode(optimizer.result.image.tobytes()).decode())"
    )
    kept = np.frombuffer(base64.b64decode(kept), np.uint8).reshape(64, 64, 3)
    deadline = time.perf_counter() + 10
    last = read_canvas(page, TILE)
    while not np.array_equal(last[:64, :64, :3], kept) and time.perf_counter() < deadline:
        page.wait_for_timeout(100)
        last = read_canvas(page, TILE)
    np.testing.assert_array_equal(last[:64, :64, :3], kept)  # the kept image is shown
    page.wait_for_timeout(1000)
    after = read_canvas(page, TILE)
    np.testing.assert_array_equal(after, last)  # nothing drawn after the stop
    image = last[:64, :64]  # the canvas holds the images at their own size
    assert last[..., 3].min() == 255 and image[..., :3].std() > 5  # opaque, not blank
    # exactly the kernel's last image (RGBA, lossless)
    kept = json.loads(kernel(page, "print(optimizer.result.images[0].tolist())"))
    np.testing.assert_array_equal(image[..., :3], np.array(kept, np.uint8))
    wait_drawn(page, HISTORY)  # its thumbnail is in the history strip
    box = page.locator(TILE).first.bounding_box()
    assert box["width"] == pytest.approx(3 * last.shape[1], abs=1)  # 3× larger, pixelated
    assert page.locator(f"{OPTIMIZER} .cnnviz-caption").first.inner_text().startswith("circle")
    with capsys.disabled():
        print(
            f"\n[browser] layer-browser click answered in {idle_click * 1000:.0f} ms idle, "
            f"{busy_click * 1000:.0f} ms during a run (thread); the run stopped at step {steps}"
        )


def test_screenshot_class_optimizer(opt_page, tmp_path):
    page = opt_page
    kernel(page, "optimizer.live_preview.value = True")
    kernel(
        page,
        "optimizer.config.steps = 256\n"
        "session.select('conv3', channel=12); optimizer.channel_count.value = 4\n"
        "optimizer.run(wait=True)\n"
        "optimizer.class_targets = ['triangle']; optimizer.run(wait=True)\n"
        "optimizer.class_targets = ['circle', 'ring', 'checkerboard', 'dots']",
    )
    page.locator(RUN).click()
    kernel(page, "optimizer.wait()")
    wait_status(page, "done: 256 steps")
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 2000})
    page.wait_for_timeout(600)
    shoot(page.locator(OPTIMIZER), "class_optimizer.png", tmp_path)


def test_a_new_step_shows_its_first_step_while_it_compiles(opt_page, tmp_path):
    """Two classes: a batch size the panel has not compiled. The eager first step is on
    the page with "compiling the step" before the compiled run's frames; here the kernel
    holds the run for 4 s after the preview (a slow trace) so that the page can be read."""
    page = opt_page
    kernel(
        page,
        "from cnnviz_widgets.engine.optvis import run as _run\n"
        "_preview = _run.Run._preview\n"
        "def _held(self, *args):\n"
        "    kept = yield from _preview(self, *args)\n"
        "    import time; time.sleep(4)  # as if the trace took 4 s\n"
        "    return kept\n"
        "_run.Run._preview = _held\n"
        "optimizer.config.steps = 100000  # the screenshot test before set 256\n"
        "optimizer.class_targets = ['square', 'cross']",
    )
    before = fingerprint(page, TILE)
    page.locator(RUN).click()
    wait_status(page, "first step shown; compiling the step")
    wait_drawn(page, TILE, before=before)
    shown = read_canvas(page, TILE)
    assert shown[..., 3].min() == 255 and shown[:64, :64, :3].std() > 5  # two real images
    assert kernel(page, "print(optimizer._run._c.tracing_count())").strip() == "0"
    page.mouse.move(0, 0)
    shoot(page.locator(OPTIMIZER), "class_optimizer_preview.png", tmp_path)
    wait_status(page, r"step \d+ / 100000 · [\d.]+ steps/s")  # then the compiled run
    page.locator(STOP).click()
    wait_status(page, "stopped at step")
    kernel(page, "_run.Run._preview = _preview")
    record = kernel(
        page, "print(optimizer.shown.frame_steps == sorted(set(optimizer.shown.frame_steps)))"
    )
    assert record.strip() == "True"


def shoot(locator, name: str, tmp_path) -> None:
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in folders:
        locator.screenshot(path=str(folder / name))
    shot = np.asarray(Image.open(tmp_path / name))
    assert shot.shape[0] > 300 and shot.shape[1] > 600, shot.shape
    assert shot[..., :3].std() > 10, f"{name} looks empty"


def test_explore_in_the_page(lab, browser_context, tmp_path):
    url, root = lab
    name = notebook(
        root,
        "explore.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "app = cw.explore('shapes')\n"
            "app.panels['Class optimization'].config.steps = 200\n"
            "app",
        ],
    )
    page = open_and_run(browser_context, url, name, "explore", ".cnnviz-explorer")
    tabs = page.locator(".cnnviz-explorer .lm-TabBar-tab")
    assert [t.strip() for t in tabs.all_inner_texts()][:3] == [
        "Layers",
        "Filters",
        "Class optimization",
    ]
    # a layer picked in the first tab is the one the other tabs show
    page.locator(LIST).select_option(index=option_index(page, LIST, "conv1"))
    tabs.nth(1).click()
    page.locator(".cnnviz-filter-gallery").get_by_text("of conv1").first.wait_for()
    tabs.nth(2).click()
    page.locator(RUN).click()
    wait_status(page, "done: 200 steps")
    wait_drawn(page, TILE)
    head = ".cnnviz-explorer-head"
    assert "selected: layer conv1" in wait_text(page, head, "selected: layer conv1")
    # for the picture: the filters tab, filter 9 of conv1 enlarged (RGB filters)
    tabs.nth(1).click()
    montage = cw.filter_montage(cw.load_model("shapes"), "conv1")
    zoom = auto_zoom(montage.image.shape)
    x, y, w, h = montage.tile_box(9)
    page.locator(GALLERY_CANVAS).first.click(
        position={"x": (x + w / 2) * zoom, "y": (y + h / 2) * zoom}
    )
    page.get_by_text("filter 9 of conv1").wait_for()
    # the header follows the session's selection in its own message: wait for it to say so
    assert "channel 9" in wait_text(page, head, r"channel 9\b")
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 1600})
    page.wait_for_timeout(600)
    shoot(page.locator(".cnnviz-explorer"), "explore.png", tmp_path)
