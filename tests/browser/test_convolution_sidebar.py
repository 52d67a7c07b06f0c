"""The Convolution tab of explore() in JupyterLab with the left sidebar (file browser) open,
at common laptop widths: the map to click stays in view beside the image, and the parts
stay legible (nothing squeezed or clipped).

Set CNNVIZ_SCREENSHOTS=1 to also write docs/convolution_sidebar.png.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .pages import REPO, fingerprint, kernel, notebook, open_and_run, wait_drawn

PANEL = ".cnnviz-conv-explainer"
MAP = "canvas.cnnviz-conv-map"
IMAGE = "canvas.cnnviz-conv-image"
SHOTS = os.environ.get("CNNVIZ_SIDEBAR_SHOTS")  # a folder for the screenshot, besides docs/


@pytest.fixture(scope="module")
def sidebar_page(lab, browser_context):
    url, root = lab
    name = notebook(
        root,
        "convolution_sidebar.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "app = cw.explore('shapes')\n"
            "panel = app.show('Convolution')\n"
            "app.session.select('conv2', 5)\n"
            "app",
        ],
    )
    browser_context.set_default_navigation_timeout(120_000)
    page = open_and_run(browser_context, url, name, "convolution-sidebar", MAP)
    wait_drawn(page, IMAGE)
    wait_drawn(page, MAP)
    # the file browser open, as a teacher's Lab is
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    page.locator(".jp-FileBrowser").first.wait_for(state="visible", timeout=30_000)
    return page


BOXES = """() => {
    const panel = document.querySelector('.cnnviz-conv-explainer');
    const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
        return [r.left, r.top, r.width, r.height]; };
    const all = (sel) => [...panel.querySelectorAll(sel)].map(box);
    return {
        panel: box(panel),
        notebook: box(document.querySelector('.jp-NotebookPanel .jp-Notebook')),
        sidebar: box(document.querySelector('#jp-left-stack')),
        map: box(panel.querySelector('canvas.cnnviz-conv-map')),
        image: box(panel.querySelector('canvas.cnnviz-conv-image')),
        columns: all('.cnnviz-conv-column'),
        grids: all('table.cnnviz-conv-numbers'),
        rows: all('.cnnviz-conv-row'),
        controls: all('.widget-dropdown, .widget-inline-hbox'),
        viewport: [window.innerWidth, window.innerHeight],
    };
}"""


def _boxes(page, width: int) -> dict:
    page.set_viewport_size({"width": width, "height": 900})
    page.wait_for_timeout(600)  # let Lab lay out its panels again
    page.locator(MAP).first.scroll_into_view_if_needed()
    return page.evaluate(BOXES)


def _right(box) -> float:
    return box[0] + box[2]


@pytest.mark.parametrize("width", [1280, 1366])
def test_the_pictures_share_a_row_beside_the_open_sidebar(sidebar_page, width):
    b = _boxes(sidebar_page, width)
    assert b["sidebar"][2] > 200, b["sidebar"]  # the file browser is open
    notebook_right = _right(b["notebook"])
    # the map to click, the image and the layer's input side by side, in one row
    tops = {round(c[1]) for c in b["columns"]}
    assert len(b["columns"]) == 3 and len(tops) == 1, b["columns"]
    assert b["map"][1] == b["image"][1] and b["map"][0] < b["image"][0]
    # ... each in full view: right of the sidebar, left of the notebook's edge
    for column in b["columns"]:
        assert column[0] >= _right(b["sidebar"]) and _right(column) <= notebook_right, column
    # ... and legible: conv2's 32x32 map at 6 or more screen pixels a value, square
    assert b["map"][2] >= 6 * 32 and abs(b["map"][2] - b["map"][3]) < 1, b["map"]
    # the three number grids (patch, kernel, products) in the panel, none over another
    grids = sorted(b["grids"])
    assert len(grids) == 3
    for a, c in itertools.pairwise(grids):
        assert _right(a) <= c[0] or a[1] + a[3] <= c[1], (a, c)
    for grid in grids:
        assert _right(grid) <= notebook_right, grid


def test_a_click_on_the_scaled_map_picks_the_value_under_the_pointer(sidebar_page):
    page = sidebar_page
    b = _boxes(page, 1280)
    scale = b["map"][2] / 256  # the canvas is 256 px (32 values x 8), shown smaller
    assert scale < 1  # the case this test is about: the map was scaled down to fit
    mark = fingerprint(page, MAP)
    page.locator(MAP).first.click(position={"x": (20 * 8 + 4) * scale, "y": (3 * 8 + 4) * scale})
    page.locator(PANEL).get_by_text("conv2[y=3, x=20, channel 5]").wait_for(timeout=30_000)
    wait_drawn(page, MAP, before=mark)


def test_screenshot_with_the_sidebar_open(sidebar_page, tmp_path):
    page = sidebar_page
    mark = fingerprint(page, MAP)
    kernel(  # the channel's strongest value, for the picture
        page,
        "import numpy as np\n"
        "out = cw.feature_maps(app.session.loaded, panel.image, 'conv2').maps[..., 5]\n"
        "panel.select(*(int(v) for v in np.unravel_index(out.argmax(), out.shape)))",
    )
    wait_drawn(page, MAP, before=mark)
    page.set_viewport_size({"width": 1280, "height": 1500})  # the whole panel in view
    page.wait_for_timeout(600)
    page.mouse.move(0, 0)
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    if SHOTS:
        folders.append(Path(SHOTS))
    for folder in folders:
        page.screenshot(path=str(folder / "convolution_sidebar.png"))
    shot = np.asarray(Image.open(tmp_path / "convolution_sidebar.png"))
    assert shot.shape[:2] == (1500, 1280) and shot[..., :3].std() > 10
