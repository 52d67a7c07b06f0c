"""ConvolutionExplainer in a real JupyterLab page, as the Convolution tab of explore(): the
image and the feature map are drawn, and a click on the map updates the arithmetic line; on
a large input the maps are read in the background and drawn from there.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/convolution_explainer.png.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

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

PANEL = ".cnnviz-conv-explainer"
IMAGE = "canvas.cnnviz-conv-image"
MAP = "canvas.cnnviz-conv-map"
LINE = f"{PANEL} .cnnviz-conv-line"


@pytest.fixture(scope="module")
def conv_page(lab, browser_context):
    url, root = lab
    name = notebook(
        root,
        "convolution.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "app = cw.explore('shapes')\n"
            "panel = app.show('Convolution')\n"
            "app.session.select('conv2', 5)\n"
            "app",
        ],
    )
    browser_context.set_default_navigation_timeout(120_000)  # a busy machine loads slowly
    page = open_and_run(browser_context, url, name, "convolution", MAP)
    wait_drawn(page, IMAGE)
    wait_drawn(page, MAP)
    return page


def test_the_tab_draws_and_a_click_updates_the_arithmetic(conv_page):
    page = conv_page
    image = read_canvas(page, IMAGE)
    assert image.shape == (256, 256, 4)
    assert image[..., :3].std() > 10  # a picture, not a blank canvas
    picture = read_canvas(page, MAP)
    assert picture.shape == (256, 256, 4) and picture[..., :3].std() > 10
    before = page.locator(LINE).inner_text()
    assert before.startswith("sum ") and "→ relu →" in before

    # click unit (y=3, x=20) of conv2's 32x32 map, shown 8x larger
    mark = fingerprint(page, MAP)
    canvas = page.locator(MAP).first
    canvas.scroll_into_view_if_needed()
    canvas.click(position={"x": 20 * 8 + 4, "y": 3 * 8 + 4})
    page.locator(PANEL).get_by_text("conv2[y=3, x=20, channel 5]").wait_for(timeout=30_000)
    wait_drawn(page, MAP, before=mark)  # the outline moved to the clicked unit
    got = json.loads(
        kernel(
            page,
            "import json\n"
            "t = cw.convolution_at(app.session.loaded, panel.image, 'conv2', 5, 3, 20)\n"
            "print(json.dumps([panel.position, t.text()]))",
        )
    )
    assert got[0] == [3, 20]
    assert page.locator(LINE).inner_text() == got[1]
    # the coloured grids are in the page: 3x3 numbers for the patch, kernel, products
    grids = page.locator(f"{PANEL} table.cnnviz-conv-numbers")
    assert grids.count() == 3
    assert grids.first.locator("td").count() == 9


def test_a_large_input_is_read_in_the_background_and_drawn(lab, browser_context):
    url, root = lab
    name = notebook(
        root,
        "convolution_large.ipynb",
        [
            "import keras\n"
            "import cnnviz_widgets as cw\n"
            "keras.utils.set_random_seed(3)\n"
            "inputs = keras.Input((160, 160, 3))\n"
            "x = keras.layers.Conv2D(4, 3, padding='same', activation='relu', name='a')(inputs)\n"
            "x = keras.layers.Conv2D(6, 3, 2, padding='same', activation='relu', name='b')(x)\n"
            "x = keras.layers.GlobalAveragePooling2D()(x)\n"
            "panel = cw.ConvolutionExplainer(keras.Model(inputs, keras.layers.Dense(3)(x)))\n"
            "print('background:', panel.runner.thread is not None)\n"
            "panel",
        ],
    )
    page = open_and_run(browser_context, url, name, "convolution-large", PANEL)
    page.get_by_text("background: True").wait_for(timeout=30_000)
    wait_drawn(page, MAP)  # drawn by the background pass, in the page
    assert read_canvas(page, MAP).shape == (160, 160, 4)  # a's 160x160 map at zoom 1
    page.locator(f"{PANEL} .cnnviz-status").get_by_text("a read in").wait_for(timeout=30_000)
    mark = fingerprint(page, MAP)
    layers = f"{PANEL} .cnnviz-conv-layer select"
    page.locator(layers).select_option(index=option_index(page, layers, "b"))
    wait_drawn(page, MAP, before=mark)  # b's map, after its own background pass
    assert read_canvas(page, MAP).shape == (240, 240, 4)  # 80x80 at zoom 3
    page.locator(f"{PANEL} .cnnviz-status").get_by_text("b read in").wait_for(timeout=30_000)
    assert page.locator(f"{PANEL} .cnnviz-conv-where").inner_text().startswith("b[y=")
    page.close()


def test_screenshot(conv_page, tmp_path):
    page = conv_page
    # the channel's strongest value: a sum that survives the relu
    mark = fingerprint(page, MAP)
    kernel(
        page,
        "import numpy as np\n"
        "out = cw.feature_maps(app.session.loaded, panel.image, 'conv2').maps[..., 5]\n"
        "panel.select(*(int(v) for v in np.unravel_index(out.argmax(), out.shape)))",
    )
    wait_drawn(page, MAP, before=mark)
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 1300})
    page.wait_for_timeout(600)
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in folders:
        page.locator(".cnnviz-explorer").screenshot(path=str(folder / "convolution_explainer.png"))
    shot = np.asarray(Image.open(tmp_path / "convolution_explainer.png"))
    assert shot.shape[0] > 500 and shot.shape[1] > 700, shot.shape
    assert shot[..., :3].std() > 10
