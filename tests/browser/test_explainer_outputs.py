"""The Explain panel on a model with two outputs, in a real JupyterLab page: an Output
dropdown shows, and picking the other output lists that output's classes and explains it.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/explainer_outputs.png.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from .pages import REPO, fingerprint, notebook, open_and_run, option_index, wait_drawn

EXPLAINER = ".cnnviz-image-explainer"
OVERLAY = "canvas.cnnviz-explainer-canvas"
OUTPUT = f"{EXPLAINER} .cnnviz-output select"
TOP = f"{EXPLAINER} table.cnnviz-top"

# the embedded model's classifier, and a second head on conv4: round vs angular vs pattern
CELL = """import keras
import cnnviz_widgets as cw
base = cw.load_model("shapes").model
pooled = keras.layers.GlobalAveragePooling2D()(base.get_layer("conv4").output)
kind = keras.layers.Dense(3, activation="softmax", name="kind")(pooled)
two = keras.Model(base.input, [base.output, kind])
first = cw.model_outputs(two)[0].name
names = {first: list(cw.SHAPES_CLASS_NAMES), "kind": ["round", "angular", "pattern"]}
two = cw.load_model(two, class_names=names)
explainer = cw.ImageExplainer(two)
explainer"""


def test_two_outputs_get_a_dropdown_and_the_second_is_explained(lab, browser_context, tmp_path):
    url, root = lab
    name = notebook(root, "explainer_outputs.ipynb", [CELL])
    page = open_and_run(browser_context, url, name, "explainer-outputs", OVERLAY)
    wait_drawn(page, OVERLAY)
    top = page.locator(TOP).first
    top.wait_for(timeout=60_000)
    drop = page.locator(OUTPUT).first
    assert drop.is_visible()
    options = drop.locator("option").all_inner_texts()
    assert len(options) == 2 and options[1].startswith("kind"), options
    shapes = ("circle", "square", "triangle", "ring", "cross", "stripes", "checkerboard", "dots")
    first = top.inner_text()  # the first output: five of the shapes classes
    assert sum(n in first for n in shapes) >= 4 and "round" not in first, first

    mark = fingerprint(page, OVERLAY)
    drop.select_option(index=option_index(page, OUTPUT, "kind"))
    wait_drawn(page, OVERLAY, before=mark)
    page.wait_for_function(
        "s => /round|angular|pattern/.test(document.querySelector(s)?.innerText ?? '')",
        arg=TOP,
        timeout=60_000,
    )
    text = top.inner_text()
    assert not any(n in text for n in shapes) and "round" in text, text

    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 1300})
    page.wait_for_timeout(500)
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    panel = page.locator(EXPLAINER).first.bounding_box()
    clip = {**panel, "height": min(panel["height"], 760)}
    for folder in folders:
        page.screenshot(path=str(folder / "explainer_outputs.png"), clip=clip)
    shot = np.asarray(Image.open(tmp_path / "explainer_outputs.png"))
    assert shot.shape[0] > 400 and shot.shape[1] > 700 and shot[..., :3].std() > 10
    page.close()
