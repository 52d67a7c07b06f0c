"""ImageExplainer in a real JupyterLab page: a picture uploaded through the file input is
explained, a new class redraws the heatmap, a feature map click selects its channel.

Set CNNVIZ_SCREENSHOTS=1 to also write docs/image_explainer.png.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.widgets import zoom_nearest
from cnnviz_widgets.widgets.image_explainer import overlay_zoom

from .pages import REPO, fingerprint, kernel, notebook, open_and_run, read_canvas, wait_drawn

EXPLAINER = ".cnnviz-image-explainer"
OVERLAY = "canvas.cnnviz-explainer-canvas"
MAPS = "canvas.cnnviz-featuremap-canvas"
CLASS_SELECT = f"{EXPLAINER} .cnnviz-ex-class select"
UPLOAD = f"{EXPLAINER} button.cnnviz-ex-upload"
SOURCE_CLASS = "checkerboard"  # the uploaded picture


def upload(page, path) -> None:
    """Upload a file through the FileUpload's real ``<input type=file>``.

    ipywidgets 8 keeps that input out of the document (the button clicks it), so it is
    reached through the file chooser the click opens, and given the file there.
    """
    with page.expect_file_chooser() as chooser:
        page.locator(UPLOAD).click()
    chooser.value.set_files(str(path))


@pytest.fixture(scope="module")
def explainer_page(lab, browser_context):
    url, root = lab
    name = notebook(
        root,
        "explainer.ipynb",
        [
            "import cnnviz_widgets as cw\n"
            "session = cw.Session('shapes')\n"
            "explainer = cw.ImageExplainer(session)\n"
            "optimizer = cw.ClassOptimizer(session)\n"
            "explainer",
        ],
    )
    page = open_and_run(browser_context, url, name, "explainer", OVERLAY)
    wait_drawn(page, OVERLAY)
    wait_drawn(page, MAPS)
    return page


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    """A PNG of a generated shapes image and its exact pixels."""
    image = (cw.sample_image(SOURCE_CLASS, seed=3) * 255).round().astype(np.uint8)
    path = tmp_path_factory.mktemp("upload") / f"{SOURCE_CLASS}.png"
    Image.fromarray(image).save(path)
    return path, image


def expected_overlay(image: np.ndarray, target) -> np.ndarray:
    result = cw.grad_cam(cw.load_model("shapes"), image, target)
    rgba = result.overlay("jet", 0.5)
    return zoom_nearest(rgba, overlay_zoom(rgba.shape))


def test_upload_then_a_new_class_redraws_the_heatmap(explainer_page, picture):
    page = explainer_page
    path, image = picture
    before = fingerprint(page, OVERLAY)
    upload(page, path)
    page.locator(EXPLAINER).get_by_text(f"{path.name} (uploaded)").wait_for(timeout=60_000)
    wait_drawn(page, OVERLAY, width=256, before=before)
    uploaded = read_canvas(page, OVERLAY)
    assert uploaded.shape == (256, 256, 4)
    # the page shows what the engine computes for this picture and its top class
    top = cw.predict_top(cw.load_model("shapes"), image).class_index
    picked = int(kernel(page, "print(explainer.class_select.value)"))
    assert picked == top
    diff = np.abs(uploaded.astype(int) - expected_overlay(image, top).astype(int))
    assert diff.mean() < 1.0, diff.mean()
    # the top-5 table is in the page
    table = page.locator(f"{EXPLAINER} table.cnnviz-top").inner_text()
    assert len([line for line in table.splitlines() if line.strip()]) >= 5
    assert "%" in table

    # another class, chosen in the dropdown: a different heatmap reaches the page
    other = 0 if top != 0 else 1
    mark = fingerprint(page, OVERLAY)
    page.locator(CLASS_SELECT).select_option(index=other)
    wait_drawn(page, OVERLAY, width=256, before=mark)
    changed = read_canvas(page, OVERLAY)
    assert not np.array_equal(changed, uploaded)
    diff = np.abs(changed.astype(int) - expected_overlay(image, other).astype(int))
    assert diff.mean() < 1.0, diff.mean()
    assert kernel(page, "print(session.class_index)").strip() == str(other)


def test_a_bad_upload_shows_a_message_and_the_panel_keeps_working(explainer_page, tmp_path):
    page = explainer_page
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    upload(page, bad)
    message = page.locator(f"{EXPLAINER} .cnnviz-message-error")
    message.wait_for(timeout=30_000)
    assert "not an image" in message.inner_text()
    # still usable: a sample picks a new image and clears the message
    mark = fingerprint(page, OVERLAY)
    page.locator(f"{EXPLAINER} .cnnviz-ex-sample select").select_option(label="ring (generated)")
    wait_drawn(page, OVERLAY, before=mark)
    assert page.locator(f"{EXPLAINER} .cnnviz-message-error").count() == 0


def test_clicking_a_feature_map_selects_the_channel(explainer_page):
    page = explainer_page
    got = json.loads(
        kernel(
            page,
            # the last image's feature maps may still be drawing (under load, CI saw
            # features None here): wait for them, at most a minute
            "import json, time\n"
            "for _ in range(600):\n"
            "    if explainer.wait(0.1) and explainer.features is not None: break\n"
            "    time.sleep(0.1)\n"
            "x, y, w, h = explainer.features.montage.tile_box(1)\n"
            "z = explainer.fm_pixels.zoom\n"
            "c = int(explainer.features.order[1])\n"
            "print(json.dumps([c, (x + w / 2) * z, (y + h / 2) * z]))",
        )
    )
    channel, x, y = got
    mark = fingerprint(page, MAPS)
    maps = page.locator(MAPS).first
    # ipycanvas focuses the canvas on mouse down, which scrolls a partly visible canvas
    # before it measures the click: the click must find it wholly in view
    maps.scroll_into_view_if_needed()
    maps.click(position={"x": x, "y": y})
    page.locator(EXPLAINER).get_by_text(f"Channel {channel} of").wait_for(timeout=30_000)
    wait_drawn(page, MAPS, before=mark)  # the outline around the tile
    state = kernel(
        page, "print(session.layer, session.channel, optimizer.target.channel_index.value)"
    )
    assert state.split() == ["conv4", str(channel), str(channel)]


def test_screenshot(explainer_page, picture, tmp_path):
    page = explainer_page
    path, _ = picture
    mark = fingerprint(page, OVERLAY)
    upload(page, path)
    page.locator(EXPLAINER).get_by_text(f"{path.name} (uploaded)").wait_for(timeout=60_000)
    wait_drawn(page, OVERLAY, before=mark)
    kernel(page, "session.select('conv3', 5)")
    page.locator(EXPLAINER).get_by_text("Channel 5 of").wait_for(timeout=30_000)
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1360, "height": 1800})
    page.wait_for_timeout(600)
    folders = [tmp_path] + ([REPO / "docs"] if os.environ.get("CNNVIZ_SCREENSHOTS") else [])
    for folder in folders:
        page.locator(EXPLAINER).screenshot(path=str(folder / "image_explainer.png"))
    shot = np.asarray(Image.open(tmp_path / "image_explainer.png"))
    assert shot.shape[0] > 500 and shot.shape[1] > 700, shot.shape
    assert shot[..., :3].std() > 10
