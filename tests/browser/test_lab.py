"""The panels in a real JupyterLab page: what the browser draws, and how fast.

Set CNNVIZ_SCREENSHOTS=1 to also write the screenshots to docs/ (they are always taken,
into a temporary folder).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.widgets import zoom_nearest
from cnnviz_widgets.widgets.filter_gallery import auto_zoom

from .pages import (
    IDLE,
    REPO,
    copy_notebook,
    fingerprint,
    open_and_run,
    option_index,
    read_canvas,
    wait_drawn,
)

BROWSER = ".cnnviz-layer-browser"
GALLERY = ".cnnviz-filter-gallery"
CANVAS = "canvas.cnnviz-gallery-canvas"
DETAIL_CANVAS = "canvas.cnnviz-filter-canvas"
LIST = ".cnnviz-layer-list select"


@pytest.fixture(scope="module")
def shapes_page(lab, browser_context):
    url, root = lab
    copy_notebook("widgets.ipynb", root)
    page = open_and_run(browser_context, url, "widgets.ipynb", "shapes", GALLERY)
    # the last cell selects conv2, filter 3: wait until the notebook has run to the end
    page.get_by_text("Session('shapes', layer='conv2', channel=3").wait_for(timeout=90_000)
    wait_drawn(page, CANVAS, 0)
    wait_drawn(page, CANVAS, 1)
    return page


def test_layer_browser_lists_every_layer(shapes_page, shapes):
    texts = shapes_page.eval_on_selector(LIST, "s => [...s.options].map(o => o.textContent)")
    names = [t.replace("\u00a0", " ").split()[0] for t in texts]
    assert names == [r.name for r in cw.layer_table(shapes)]
    assert "Conv2D" in texts[1].replace("\u00a0", " ")
    summary = shapes_page.locator(BROWSER).inner_text()
    assert "63,017" in summary and "kernel_size" in summary  # conv2's config is shown


def test_selecting_a_conv_layer_redraws_the_gallery(shapes_page, shapes):
    before = read_canvas(shapes_page, CANVAS)
    mark = fingerprint(shapes_page, CANVAS)
    select = shapes_page.locator(LIST)
    select.select_option(index=option_index(shapes_page, LIST, "conv3"))
    expected = cw.filter_montage(shapes, "conv3").image
    expected = zoom_nearest(expected, auto_zoom(expected.shape))
    wait_drawn(shapes_page, CANVAS, 0, width=expected.shape[1], before=mark)
    after = read_canvas(shapes_page, CANVAS)
    assert after.shape != before.shape or not np.array_equal(after, before)
    np.testing.assert_array_equal(after, expected)  # exactly the engine's montage
    gallery_text = shapes_page.locator(GALLERY).first.inner_text()
    assert "of conv3" in gallery_text


def test_clicking_a_filter_enlarges_it(shapes_page, shapes):
    montage = cw.filter_montage(shapes, "conv3")
    zoom = auto_zoom(montage.image.shape)
    x, y, w, h = montage.tile_box(5)
    mark = fingerprint(shapes_page, CANVAS)
    shapes_page.locator(CANVAS).first.click(
        position={"x": (x + w / 2) * zoom, "y": (y + h / 2) * zoom}
    )
    shapes_page.get_by_text("filter 5 of conv3").wait_for(timeout=30_000)
    wait_drawn(shapes_page, DETAIL_CANVAS, 0)
    wait_drawn(shapes_page, CANVAS, 0, before=mark)  # the outline around filter 5
    pixels = read_canvas(shapes_page, CANVAS)
    edge = pixels[y * zoom - 1, (x + w // 2) * zoom]  # just above the tile
    assert edge[0] > 200 and 120 < edge[1] < 220 and edge[2] < 80, edge  # orange
    value = cw.filter_values(shapes, "conv3", view="mean", filters=[5])[0][0, 0]
    assert f"{value:+.3g}" in shapes_page.locator(GALLERY).first.inner_text()


def test_screenshots(shapes_page, tmp_path):
    page = shapes_page
    # a colourful state for the pictures: conv1 (RGB filters), filter 9 enlarged
    gallery_select = f"{GALLERY} .cnnviz-gallery-layer select"
    mark = fingerprint(page, CANVAS)
    page.locator(gallery_select).first.select_option(
        index=option_index(page, gallery_select, "conv1")
    )
    wait_drawn(page, CANVAS, 0, before=mark)
    montage = cw.filter_montage(cw.load_model("shapes"), "conv1")
    zoom = auto_zoom(montage.image.shape)
    x, y, w, h = montage.tile_box(9)
    page.locator(CANVAS).first.click(position={"x": (x + w / 2) * zoom, "y": (y + h / 2) * zoom})
    page.get_by_text("filter 9 of conv1").wait_for(timeout=30_000)
    wait_drawn(page, DETAIL_CANVAS, 0)
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 2400})  # whole panels in view
    page.wait_for_timeout(500)  # let the layout and hover styles settle
    targets = {
        "layer_browser.png": page.locator(BROWSER),
        "filter_gallery.png": page.locator(GALLERY).nth(0),
        "filter_overview.png": page.locator(GALLERY).nth(1),
    }
    out_dirs = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for name, locator in targets.items():
        for folder in out_dirs:
            folder.mkdir(exist_ok=True)
            locator.screenshot(path=str(folder / name))
        shot = np.asarray(Image.open(tmp_path / name))
        assert shot.shape[0] > 150 and shot.shape[1] > 400, (name, shot.shape)
        assert shot[..., :3].std() > 10, f"{name} looks empty"


def test_a_reloaded_page_gets_the_montage_again(shapes_page, shapes):
    """A new view of a live kernel starts with an empty canvas: the panel redraws it when
    the view reports ready (on_client_ready), as Voila and a page reload need."""
    page = shapes_page
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(500)
    page.reload()
    page.get_by_text(IDLE).wait_for(timeout=60_000)
    page.locator(CANVAS).first.wait_for(timeout=60_000)
    wait_drawn(page, CANVAS, 0)
    expected = cw.filter_montage(shapes, "conv1").image
    zoom = auto_zoom(expected.shape)
    expected = zoom_nearest(expected, zoom)
    pixels = read_canvas(page, CANVAS)
    assert pixels.shape == expected.shape
    x, y, w, h = cw.filter_montage(shapes, "conv1").tile_box(9)  # outlined: leave it out
    outside = np.ones(expected.shape[:2], bool)
    outside[(y - 3) * zoom : (y + h + 3) * zoom, (x - 3) * zoom : (x + w + 3) * zoom] = False
    np.testing.assert_array_equal(pixels[outside], expected[outside])
