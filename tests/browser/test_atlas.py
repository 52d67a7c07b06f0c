"""The unit atlas in a real JupyterLab page, as a tab of explore(): units appear in the grid
while the atlas computes, a click on one shows its page with its dataset examples, and the
click selects the channel in the shared session.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/unit_atlas.png and docs/unit_atlas_unit.png.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np
from PIL import Image

from .pages import REPO, fingerprint, kernel, notebook, open_and_run, read_canvas, wait_drawn

PANEL = ".cnnviz-unit-atlas"
GRID = "canvas.cnnviz-atlas-grid"
UNIT = "canvas.cnnviz-atlas-unit"
EMPTY = (64, 64, 64)  # an empty tile's grey


def shoot(locator, name: str, tmp_path) -> None:
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in folders:
        locator.screenshot(path=str(folder / name))
    shot = np.asarray(Image.open(tmp_path / name))
    assert shot.shape[0] > 200 and shot.shape[1] > 300, shot.shape
    assert shot[..., :3].std() > 10, f"{name} looks empty"


def test_units_appear_while_it_computes_and_a_click_shows_the_examples(
    lab, browser_context, tmp_path
):
    url, root = lab
    store = root / "atlas-store"
    name = notebook(
        root,
        "atlas.ipynb",
        [
            f"import os\nos.environ['CNNVIZ_STORE'] = {str(store)!r}\n"
            "import cnnviz_widgets as cw\n"
            "app = cw.explore('shapes')\n"
            "app.session.layer = 'conv2'\n"
            "atlas = app.panels['Unit atlas']\n"
            "atlas.steps.value = 48\n"
            "app",
        ],
    )
    page = open_and_run(browser_context, url, name, "atlas", ".cnnviz-explorer")
    tabs = page.locator(".cnnviz-explorer .lm-TabBar-tab")
    titles = [t.strip() for t in tabs.all_inner_texts()]
    tabs.nth(titles.index("Unit atlas")).click()
    wait_drawn(page, GRID)
    empty = fingerprint(page, GRID)
    box = json.loads(kernel(page, "import json; print(json.dumps(atlas.tile_box(0)))"))

    def grey(picture, box):
        """The share of a tile's pixels that are the empty tile's grey (the rest: its
        channel number)."""
        x, y, w, h = box
        return (picture[y : y + h, x : x + w, :3] == EMPTY).all(axis=-1).mean()

    assert grey(read_canvas(page, GRID), box) > 0.8
    page.locator(f"{PANEL} button", has_text="Run").click()
    # while it runs: the grid changes and shows units before the run is over
    wait_drawn(page, GRID, before=empty, timeout=300_000)
    during = read_canvas(page, GRID)
    running = kernel(page, "print(atlas.running, len(atlas.atlas.vis_store.done()))").split()
    assert running[0] == "True", "the grid changed only after the run"
    assert grey(during, box) < 0.2
    status = f"document.querySelector('{PANEL} .cnnviz-status').innerText"
    # the run's status line, in the panel
    assert re.search(r"compiling|visualizations|dataset examples", page.evaluate(f"() => {status}"))
    page.wait_for_function(f"() => /32 of 32 units done/.test({status})", timeout=600_000)
    # click unit 5: its page shows its dataset examples; the session selects channel 5
    x, y, w, h = json.loads(kernel(page, "print(json.dumps(atlas.tile_box(5)))"))
    page.locator(GRID).click(position={"x": x + w / 2, "y": y + h / 2})
    page.locator(f"{PANEL}").get_by_text("dataset examples, best first").first.wait_for()
    wait_drawn(page, UNIT)
    assert kernel(page, "print(app.session.channel)").strip() == "5"
    assert "channel 5" in page.locator(".cnnviz-explorer-head").inner_text()
    shown = read_canvas(page, UNIT)
    expected = kernel(
        page,
        "from cnnviz_widgets.widgets.unit_atlas import unit_page\n"
        "u = atlas.atlas.unit(5); p = unit_page(u)\n"
        "print(json.dumps([p.shape, int(p.sum()), len(u.examples)]))",
    )
    shape, total, n_examples = json.loads(expected)
    assert list(shown.shape) == shape and int(shown.sum()) == total  # exact RGBA
    assert n_examples == 9
    # the examples row is not blank: real images under the visualization
    assert shown[200:280, 6:90, :3].std() > 10
    text = page.locator(f"{PANEL} .cnnviz-detail-box").inner_text()
    assert re.search(r"channel\s*5", text) and "feeds most" not in text  # conv2: no classes
    page.set_viewport_size({"width": 1360, "height": 1400})
    page.wait_for_timeout(500)
    shoot(page.locator(PANEL), "unit_atlas.png", tmp_path)
    shoot(page.locator(f"{PANEL} .cnnviz-detail-box"), "unit_atlas_unit.png", tmp_path)
    assert np.asarray(shown)[..., 3].min() == 255


WIDE = """
import os
os.environ['CNNVIZ_STORE'] = {store!r}
import keras, numpy as np
import cnnviz_widgets as cw
keras.utils.set_random_seed(0)
inputs = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(512, 5, padding="same", activation="relu", name="wide")(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
data = np.random.default_rng(0).random((24, 32, 32, 3)).astype("float32")
atlas = cw.UnitAtlas(cw.Session(cw.load_model(model, preprocessing="unit"), layer="wide"),
                     data, steps=8, batch=128, k=6)
atlas.run()
atlas
"""


def test_a_512_unit_layer_stays_legible(lab, browser_context, tmp_path):
    """512 units: tiles of full size with their numbers, pages, no horizontal scroll, the
    unit's page beside the grid at full width; "click a unit" before one is chosen; a
    unit found by its number. Writes docs/unit_atlas_512.png with CNNVIZ_SCREENSHOTS=1."""
    url, root = lab
    name = notebook(root, "wide.ipynb", [WIDE.format(store=str(root / "wide-store"))])
    page = open_and_run(browser_context, url, name, "wide", PANEL)
    status = f"document.querySelector('{PANEL} .cnnviz-status').innerText"
    page.wait_for_function(f"() => /512 of 512 units done/.test({status})", timeout=600_000)
    wait_drawn(page, GRID)
    panel = page.locator(PANEL)
    assert "Click a unit" in panel.locator(".cnnviz-detail-box").inner_text()
    assert "page 1 of 6" in panel.locator(".cnnviz-atlas-page").inner_text()
    grid = page.locator(GRID).bounding_box()
    assert grid["width"] == grid["height"] == 582  # 10 x 10 tiles of 56 px, not squashed
    box = panel.locator(".cnnviz-atlas-grid-box .cnnviz-canvas-box")
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth")  # no column hidden
    # a unit by its number: its page shows, beside the grid, at its full size
    find = panel.locator(".cnnviz-atlas-find input")
    find.fill("437")
    find.press("Enter")
    page.get_by_text("channel 437").first.wait_for(timeout=60_000)
    wait_drawn(page, UNIT)
    page.mouse.move(0, 0)
    page.wait_for_timeout(300)
    shoot(panel, "unit_atlas_512.png", tmp_path)
    assert "page 5 of 6" in panel.locator(".cnnviz-atlas-page").inner_text()
    unit = page.locator(UNIT).bounding_box()
    width = page.locator(UNIT).evaluate("c => c.width")
    assert unit["width"] == width >= 540  # not shrunk into a narrow column
    assert unit["x"] > grid["x"] + grid["width"]  # beside the grid
    # every tile carries its number: light digits on the dark band at its bottom
    picture = read_canvas(page, GRID)[..., :3]
    for r in range(10):
        for c in range(10):
            x, y = 2 + c * 58, 2 + r * 58
            band = picture[y + 41 : y + 56, x : x + 30]
            assert (band.min(axis=-1) > 200).sum() >= 10, (r, c)
