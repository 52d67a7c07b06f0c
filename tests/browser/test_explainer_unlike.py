"""The Explain panel in a real JupyterLab page says, beside the prediction, when an image is
unlike what the model was trained on (a photo for the embedded shapes model), and says
nothing for a generated shapes image.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/explainer_unlike.png.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .pages import REPO, fingerprint, notebook, open_and_run, option_index, wait_drawn

EXPLAINER = ".cnnviz-image-explainer"
OVERLAY = "canvas.cnnviz-explainer-canvas"
SAMPLE = f"{EXPLAINER} .cnnviz-ex-sample select"
UNLIKE = f"{EXPLAINER} .cnnviz-ex-unlike"
TOP = f"{EXPLAINER} table.cnnviz-top"


def test_a_photo_gets_the_note_under_the_top_5(lab, browser_context, tmp_path):
    url, root = lab
    name = notebook(
        root,
        "explainer_unlike.ipynb",
        ["import cnnviz_widgets as cw\nexplainer = cw.ImageExplainer('shapes')\nexplainer"],
    )
    page = open_and_run(browser_context, url, name, "explainer-unlike", OVERLAY)
    wait_drawn(page, OVERLAY)
    page.locator(TOP).first.wait_for(timeout=60_000)
    assert not page.locator(UNLIKE).first.is_visible()  # a generated circle: nothing said

    mark = fingerprint(page, OVERLAY)
    page.locator(SAMPLE).select_option(index=option_index(page, SAMPLE, "Grace Hopper"))
    wait_drawn(page, OVERLAY, before=mark)
    note = page.locator(UNLIKE).first
    note.wait_for(state="visible", timeout=60_000)
    text = note.inner_text()
    assert "This image is unlike the generated shapes images" in text
    assert "its answer means little" in text
    # right under the top-5 table, as wide as the side column at most, and in view
    top, box = page.locator(TOP).first.bounding_box(), note.bounding_box()
    assert 0 <= box["y"] - (top["y"] + top["height"]) < 20, (top, box)
    assert box["width"] <= 440 and box["height"] > 30
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 1300})
    page.wait_for_timeout(500)
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    panel = page.locator(EXPLAINER).first.bounding_box()
    clip = {**panel, "height": min(panel["height"], 760)}  # the image, top 5 and the note
    for folder in folders:
        page.screenshot(path=str(folder / "explainer_unlike.png"), clip=clip)
    shot = np.asarray(Image.open(tmp_path / "explainer_unlike.png"))
    assert shot.shape[0] > 400 and shot.shape[1] > 700 and shot[..., :3].std() > 10

    # back to a generated image: the note goes
    mark = fingerprint(page, OVERLAY)
    page.locator(SAMPLE).select_option(index=option_index(page, SAMPLE, "square"))
    wait_drawn(page, OVERLAY, before=mark)
    page.locator(UNLIKE).first.wait_for(state="hidden", timeout=60_000)
    page.close()
