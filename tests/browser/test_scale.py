"""explore(model, scale=1.5): on a projector, text and pictures larger together, and
clicks still land on what they are drawn over.

One notebook shows the explorer at scale 1.5 and, below it, the same session at scale 1.
"""

from __future__ import annotations

import cnnviz_widgets as cw

from .pages import notebook, open_and_run, wait_drawn
from .test_lab import CANVAS, GALLERY

EXPLORER = ".cnnviz-explorer"


def test_scale_enlarges_text_and_pictures_and_clicks_still_land(lab, browser_context):
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
    x, y, w, h = montage.tile_box(5)
    height, width = montage.image.shape[:2]
    canvases.nth(0).scroll_into_view_if_needed()
    box = canvases.nth(0).bounding_box()  # where the page shows it, as a user's mouse sees
    page.mouse.click(
        box["x"] + box["width"] * (x + w / 2) / width,
        box["y"] + box["height"] * (y + h / 2) / height,
    )
    page.locator(GALLERY).first.get_by_text("filter 5 of conv1").first.wait_for(timeout=30_000)
    # (Playwright's click(position=...) lands elsewhere inside a CSS zoom: the mouse is
    # moved in page coordinates here, as a user's is)
