"""The Explain panel's Compare view in a real JupyterLab page: the Compare button draws
the chosen methods side by side with their AUCs, the Sanity check button draws the maps
under cascading randomization and the correlation curve.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/compare_view.png.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .pages import REPO, notebook, open_and_run, wait_drawn

EXPLAINER = ".cnnviz-image-explainer"
COMPARE = f"{EXPLAINER} .cnnviz-ex-compare"
METHODS = ("saliency", "integrated_gradients", "guided_backprop", "grad_cam", "score_cam", "rise")


def test_compare_and_sanity_check_in_the_page(lab, browser_context, tmp_path):
    url, root = lab
    name = notebook(
        root,
        "compare.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "explainer = cw.ImageExplainer('shapes')\n"
            f"explainer.compare.methods.value = {METHODS!r}\n"
            "explainer",
        ],
    )
    page = open_and_run(browser_context, url, name, "compare", "canvas.cnnviz-explainer-canvas")
    wait_drawn(page, "canvas.cnnviz-explainer-canvas")
    page.locator(f"{COMPARE} .cnnviz-ex-compare-button").click()
    tiles = page.locator(f"{COMPARE} .cnnviz-ex-tile")
    tiles.nth(len(METHODS) - 1).wait_for(timeout=180_000)
    assert tiles.count() == len(METHODS)
    labels = [tiles.nth(i).inner_text() for i in range(len(METHODS))]
    assert "Grad-CAM" in labels[3] and all("deletion" in t and "insertion" in t for t in labels)
    page.locator(f"{COMPARE} .cnnviz-ex-sanity-button").click()
    page.locator(f"{COMPARE} .cnnviz-ex-curve polyline").nth(len(METHODS) - 1).wait_for(
        timeout=300_000
    )
    page.set_viewport_size({"width": 1360, "height": 2400})  # the whole view on screen
    page.locator(COMPARE).scroll_into_view_if_needed()
    page.wait_for_timeout(800)  # the last images decode
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in folders:
        page.locator(COMPARE).screenshot(path=str(folder / "compare_view.png"))
    shot = np.asarray(Image.open(tmp_path / "compare_view.png"))
    assert shot.shape[0] > 500 and shot.shape[1] > 700, shot.shape
    assert shot[..., :3].std() > 10
