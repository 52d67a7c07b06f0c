"""ClassOptimizer and explore() in a real JupyterLab page: the live preview streams from the
background thread, Stop keeps the last image, other panels answer during a run; and the
preview's cost, printed.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/class_optimizer.png and docs/explore.png.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import statistics
import time

import nbformat
import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.widgets.filter_gallery import auto_zoom

from .conftest import REPO, open_and_run
from .test_lab import CANVAS as GALLERY_CANVAS
from .test_lab import HASH_JS, LIST, fingerprint, option_index

OPTIMIZER = ".cnnviz-class-optimizer"
TILE = "canvas.cnnviz-optimizer-canvas"
HISTORY = "canvas.cnnviz-history-canvas"
RUN = f"{OPTIMIZER} button.cnnviz-run-button"
STOP = f"{OPTIMIZER} button.cnnviz-stop-button"
STATUS = f"{OPTIMIZER} .cnnviz-status"


def notebook(root, name: str, cells: list[str]) -> str:
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


def read(page, selector: str, index: int = 0) -> np.ndarray:
    url = page.evaluate(
        "([sel, i]) => document.querySelectorAll(sel)[i].toDataURL('image/png')", [selector, index]
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def wait_opaque(page, selector: str, index: int = 0, before=None, timeout=60_000) -> None:
    """Wait until the canvas has an image (opaque corner) other than fingerprint ``before``."""
    page.wait_for_function(
        f"""([sel, i, before]) => {{
            const hash = {HASH_JS};
            const c = document.querySelectorAll(sel)[i];
            if (!c || c.width <= 1) return false;
            if (c.getContext('2d').getImageData(c.width - 1, c.height - 1, 1, 1).data[3] !== 255)
                return false;
            return before === null || hash(c) !== before;
        }}""",
        arg=[selector, index, before],
        polling="raf",
        timeout=timeout,
    )


def status(page) -> str:
    return page.locator(STATUS).first.inner_text()


def wait_status(page, pattern: str, timeout=120_000) -> str:
    page.wait_for_function(
        """([sel, pattern]) => { const el = document.querySelector(sel);
              return el && new RegExp(pattern).test(el.innerText); }""",
        arg=[STATUS, pattern],
        timeout=timeout,
    )
    return status(page)


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
    wait_opaque(page, TILE)  # the first live frame
    seen = {fingerprint(page, TILE)}
    while len(seen) < 3:  # the preview streams: new frames keep arriving
        wait_opaque(page, TILE, before=list(seen)[-1])
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
    last = read(page, TILE)
    page.wait_for_timeout(1000)
    after = read(page, TILE)
    np.testing.assert_array_equal(after, last)  # nothing drawn after the stop
    image = last[:64, :64]  # the canvas holds the images at their own size
    assert last[..., 3].min() == 255 and image[..., :3].std() > 5  # opaque, not blank
    # exactly the kernel's last image (RGBA, lossless)
    kept = json.loads(kernel(page, "print(optimizer.result.images[0].tolist())"))
    np.testing.assert_array_equal(image[..., :3], np.array(kept, np.uint8))
    wait_opaque(page, HISTORY)  # its thumbnail is in the history strip
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
        "optimizer.steps.value = 256\n"
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


def test_preview_overhead(opt_page, capsys):
    """Steps/s of the same run with the live preview on and off, alternating (printed, not
    asserted: on two shared cores the kernel, the server and the browser compete)."""
    page = opt_page
    kernel(page, "optimizer.steps.value = 300; optimizer.class_targets = [0, 1, 2, 3]")
    rates: dict[bool, list[float]] = {True: [], False: []}
    draws = paint = 0.0
    for live in (True, False) * 4:
        kernel(page, f"optimizer.live_preview.value = {live}")
        before = int(kernel(page, "print(len(optimizer.records))"))
        page.locator(RUN).click()
        page.wait_for_function(
            "() => document.querySelector('.cnnviz-class-optimizer .cnnviz-run-button').disabled"
        )
        out = kernel(
            page,
            "optimizer.wait(); r = optimizer.result\n"
            "print(len(optimizer.records), r.steps / r.seconds, optimizer.draw_count, "
            "r.seconds, optimizer.paint_seconds)",
        ).split()
        assert int(out[0]) == before + 1, out
        rates[live].append(float(out[1]))
        if live:
            assert int(out[2]) >= 5, out  # it did draw
            draws, paint = int(out[2]) / float(out[3]), float(out[4]) / int(out[2])
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    with capsys.disabled():
        print(
            f"\n[browser] batch of 4, 300 steps (median of 4): {on:.1f} steps/s with the live "
            f"preview, {off:.1f} without: overhead {100 * (off - on) / off:+.1f} % "
            f"({draws:.1f} redraws/s, {paint * 1000:.1f} ms each; "
            f"on {[round(r) for r in rates[True]]}, off {[round(r) for r in rates[False]]}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )


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
            "app.panels['Class optimization'].steps.value = 200\n"
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
    wait_opaque(page, TILE)
    assert "selected: layer conv1" in page.locator(".cnnviz-explorer-head").inner_text()
    # for the picture: the filters tab, filter 9 of conv1 enlarged (RGB filters)
    tabs.nth(1).click()
    montage = cw.filter_montage(cw.load_model("shapes"), "conv1")
    zoom = auto_zoom(montage.image.shape)
    x, y, w, h = montage.tile_box(9)
    page.locator(GALLERY_CANVAS).first.click(
        position={"x": (x + w / 2) * zoom, "y": (y + h / 2) * zoom}
    )
    page.get_by_text("filter 9 of conv1").wait_for()
    head = page.locator(".cnnviz-explorer-head")
    assert "channel 9" in head.inner_text()
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 1600})
    page.wait_for_timeout(600)
    shoot(page.locator(".cnnviz-explorer"), "explore.png", tmp_path)
