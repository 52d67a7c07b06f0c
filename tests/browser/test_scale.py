"""explore(model, scale=1.5): on a projector, text and pictures larger together, and
clicks still land on what they are drawn over.

One notebook shows the explorer at scale 1.5 and, below it, the same session at scale 1.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.widgets.filter_gallery import auto_zoom

from .pages import REPO, notebook, open_and_run, wait_drawn
from .test_lab import CANVAS, GALLERY

EXPLORER = ".cnnviz-explorer"


def test_scale_enlarges_text_and_pictures_and_clicks_still_land(lab, browser_context, tmp_path):
    url, root = lab
    name = notebook(
        root,
        "scale.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "big = cw.explore('shapes', scale=1.5)\n"
            "big.show('Filters')\n"
            "big",
            "small = cw.explore(big.session)\nsmall.show('Filters')\nsmall",
        ],
    )
    page = open_and_run(browser_context, url, name, "scale", f"{EXPLORER} >> nth=1")
    wait_drawn(page, CANVAS, 0)
    wait_drawn(page, CANVAS, 1)
    heads = page.locator(f"{EXPLORER} .cnnviz-explorer-head")
    big, small = heads.nth(0).bounding_box(), heads.nth(1).bounding_box()
    assert 1.4 < big["height"] / small["height"] < 1.6  # the text: 1.5 times larger
    canvases = page.locator(CANVAS)
    ratio = canvases.nth(0).bounding_box()["width"] / canvases.nth(1).bounding_box()["width"]
    assert 1.45 < ratio < 1.55  # the pictures with it
    # a click on filter 5 of the enlarged gallery picks filter 5
    montage = cw.filter_montage(cw.load_model("shapes"), "conv1")
    zoom = auto_zoom(montage.image.shape) * 1.5
    x, y, w, h = montage.tile_box(5)
    canvases.nth(0).click(position={"x": (x + w / 2) * zoom, "y": (y + h / 2) * zoom})
    page.locator(GALLERY).first.get_by_text("filter 5 of conv1").first.wait_for(timeout=30_000)
    page.mouse.move(0, 0)
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in folders:
        page.locator(EXPLORER).first.screenshot(path=str(folder / "explore_scale.png"))
    shot = np.asarray(Image.open(tmp_path / "explore_scale.png"))
    assert shot[..., :3].std() > 10
