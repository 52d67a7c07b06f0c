"""ImageExplainer without a browser: drive it like a front end would (uploads, dropdowns,
clicks on the canvas) and check the session, the other panels, and the exact pixels sent
to the canvases (decoded from the binary messages)."""

import dataclasses
import io
import time
import warnings

import keras
import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model import budget
from cnnviz_widgets.session import Session
from cnnviz_widgets.widgets import ClassOptimizer, ImageExplainer, explore, zoom_nearest
from cnnviz_widgets.widgets import image_explainer as explainer_module
from cnnviz_widgets.widgets.image_explainer import overlay_zoom

from .helpers import PNG, assert_same_state, click, model_state, png_bytes, wait_until


def last_sent(sent, pixels) -> np.ndarray:
    images = sent.on(pixels.canvas)
    assert images, "nothing was drawn on this canvas"
    return images[-1]


@pytest.fixture
def session(shapes):
    return Session(shapes)


@pytest.fixture
def panel(session):
    return ImageExplainer(session)


def upload(panel: ImageExplainer, name: str, data: bytes) -> None:
    """What the front end sends when a file is picked in the FileUpload."""
    panel.upload.set_state(
        {
            "value": [
                {
                    "name": name,
                    "type": "image/png",
                    "size": len(data),
                    "content": memoryview(data),
                    "last_modified": 0,
                }
            ]
        }
    )


def click_tile(panel: ImageExplainer, position: int) -> int:
    """Click the feature map at ``position`` of the montage; returns its channel."""
    fm = panel.features
    x, y, w, h = fm.montage.tile_box(position)
    z = panel.fm_pixels.zoom
    click(panel.fm_pixels.canvas, (x + w / 2) * z, (y + h / 2) * z)
    return int(fm.order[position])


def shown(panel: ImageExplainer, rgba: np.ndarray) -> np.ndarray:
    """``rgba`` as the overlay canvas shows it (whole-pixel zoom)."""
    return zoom_nearest(rgba, overlay_zoom(rgba.shape))


def test_a_new_panel_shows_an_image_its_top5_and_a_grad_cam(sent, panel, shapes):
    image = panel.image
    assert image is not None and image.shape == (64, 64, 3) and image.dtype == np.float32
    top = cw.predict_top(shapes, image)
    p = panel.predictions
    assert len(p) == 5
    np.testing.assert_array_equal(p.indices, top.indices)
    assert list(p.probabilities) == sorted(p.probabilities, reverse=True)
    assert panel.class_select.value == top.class_index  # the default class: the top one
    table = panel.predictions_html.value
    assert table.count("<tr") == 5
    for name in top.names:
        assert name in table
    result = panel.attribution
    assert result.method == "grad_cam" and result.layer == cw.default_cam_layer(shapes)
    assert result.class_index == top.class_index
    expected = shown(panel, cw.grad_cam(shapes, image, top.class_index).overlay("jet", 0.5))
    assert panel.pixels.sent.shape == (256, 256, 4)  # 64 px enlarged 4x, nearest
    np.testing.assert_array_equal(panel.pixels.sent, expected)
    np.testing.assert_array_equal(last_sent(sent, panel.pixels), expected)
    assert "Grad-CAM" in panel.caption.value and "computed in" in panel.status.value
    assert not panel.busy and panel.messages.kind is None


def test_set_image_array_path_and_upload(panel, shapes, tmp_path):
    ring = cw.sample_image("ring", seed=2)
    panel.set_image(ring)
    np.testing.assert_array_equal(panel.image, ring)
    assert panel.class_select.value == cw.predict_top(shapes, ring).class_index
    assert "array" in panel.source.value

    dots = (cw.sample_image("dots", seed=4) * 255).round().astype(np.uint8)
    path = tmp_path / "dots.png"
    Image.fromarray(dots).save(path)
    panel.set_image(path)
    np.testing.assert_array_equal(panel.image, cw.load_image(path))
    assert "dots.png" in panel.source.value
    assert panel.class_select.value == cw.predict_top(shapes, dots).class_index

    cross = (cw.sample_image("cross", seed=1) * 255).round().astype(np.uint8)
    upload(panel, "cross.png", png_bytes(cross))
    np.testing.assert_array_equal(panel.image, cross.astype(np.float32) / 255)
    assert "cross.png (uploaded)" in panel.source.value
    assert panel.upload.value == ()  # cleared, so the same file can come again
    assert panel.class_select.value == cw.predict_top(shapes, cross).class_index
    assert panel.attribution.class_index == panel.class_select.value
    assert panel.messages.kind is None


def test_a_non_image_upload_is_a_message_and_the_panel_keeps_working(panel):
    before = panel.image.copy()
    upload(panel, "notes.txt", b"this is not a picture")
    assert panel.messages.kind == "error"
    assert "notes.txt" in panel.messages.text and "not an image" in panel.messages.text
    np.testing.assert_array_equal(panel.image, before)  # the previous image stays
    upload(panel, "empty.png", b"")
    assert panel.messages.kind == "error" and "empty" in panel.messages.text
    panel.sample_select.value = "square"
    assert panel.messages.kind is None
    assert "square" in panel.source.value and panel.attribution is not None


def test_set_image_from_code_raises_and_keeps_the_image(panel, tmp_path):
    before = panel.image.copy()
    with pytest.raises(cw.CnnvizError, match="no image file"):
        panel.set_image(tmp_path / "missing.png")
    with pytest.raises(cw.CnnvizError, match="batch of 2"):
        panel.set_image(np.zeros((2, 64, 64, 3)))
    np.testing.assert_array_equal(panel.image, before)


def test_a_bad_constructor_image_shows_in_the_panel(shapes):
    panel = ImageExplainer(shapes, image="no/such/file.png")
    assert panel.messages.kind == "error" and "no image file" in panel.messages.text
    assert panel.image is not None and panel.pixels.sent is not None  # the default image


def test_adjusted_images_show_a_note(panel):
    panel.set_image(cw.sample_image("grace_hopper"))
    assert panel.messages.kind == "note"
    assert "resized from 600x512 to 64x64" in panel.messages.text
    assert panel.image.shape == (64, 64, 3)
    gray = (cw.sample_image("circle")[..., 0] * 255).astype(np.uint8)  # (64, 64)
    panel.set_image(gray)
    assert panel.messages.kind == "note" and "grayscale" in panel.messages.text
    assert panel.image.shape == (64, 64, 3)
    panel.set_image(cw.sample_image("circle"))
    assert panel.messages.kind is None  # nothing to say about a fitting image


def test_class_and_method_change_what_is_drawn(panel, shapes, sent):
    image = panel.image
    first = panel.pixels.sent.copy()
    other = (panel.class_select.value + 1) % 9
    panel.class_select.value = other
    assert panel.attribution.class_index == other
    expected = shown(panel, cw.grad_cam(shapes, image, other).overlay("jet", 0.5))
    np.testing.assert_array_equal(last_sent(sent, panel.pixels), expected)
    assert not np.array_equal(expected, first)

    engine = {
        "grad_cam++": lambda: cw.grad_cam(shapes, image, other, plus_plus=True),
        "saliency": lambda: cw.saliency(shapes, image, other),
        "smoothgrad": lambda: cw.saliency(shapes, image, other, smooth=25, noise=0.15),
        "occlusion": lambda: cw.occlusion(shapes, image, other, patch=8, stride=4),
        "grad_cam": lambda: cw.grad_cam(shapes, image, other),
    }
    drawn = {}
    for method, compute in engine.items():
        panel.method.value = method
        assert panel.messages.kind is None, panel.messages.text
        assert panel.attribution.method == method
        drawn[method] = last_sent(sent, panel.pixels)
        np.testing.assert_array_equal(drawn[method], shown(panel, compute().overlay("jet", 0.5)))
    assert len({d.tobytes() for d in drawn.values()}) == 5  # five different pictures
    # only the method's own settings are visible
    panel.method.value = "occlusion"
    assert panel.occlusion_box.layout.display is None
    assert panel.cam_box.layout.display == "none" and panel.smooth_box.layout.display == "none"


def test_method_settings_reach_the_engine(panel, shapes):
    panel.cam_layer.value = "conv2"
    assert panel.attribution.layer == "conv2"
    panel.method.value = "occlusion"
    assert (panel.patch.value, panel.stride.value) == (8, 4)  # an eighth of 64 px
    panel.patch.value = 16
    panel.stride.value = 16
    assert (panel.attribution.patch, panel.attribution.stride) == (16, 16)
    assert panel.attribution.raw.shape == (4, 4)
    panel.method.value = "smoothgrad"
    panel.smooth_samples.value = 10
    assert panel.attribution.samples == 10


def test_opacity_and_colours_only_redraw(panel, sent):
    result = panel.attribution
    panel.opacity.value = 0.0
    assert panel.attribution is result  # not recomputed
    plain = shown(panel, result.overlay("jet", 0.0))
    np.testing.assert_array_equal(last_sent(sent, panel.pixels), plain)
    image_rgba = np.round(panel.image * 255).astype(np.uint8)
    np.testing.assert_array_equal(plain[::4, ::4, :3], image_rgba)  # the image alone
    panel.opacity.value = 1.0
    full = last_sent(sent, panel.pixels)
    np.testing.assert_array_equal(full, shown(panel, result.overlay("jet", 1.0)))
    assert not np.array_equal(full, plain)
    panel.cmap.value = "viridis"
    np.testing.assert_array_equal(
        last_sent(sent, panel.pixels), shown(panel, result.overlay("viridis", 1.0))
    )
    panel.weighted.value = True
    np.testing.assert_array_equal(
        last_sent(sent, panel.pixels),
        shown(panel, result.overlay("viridis", 1.0, weighted=True)),
    )
    assert panel.attribution is result


def test_feature_maps_follow_the_session_layer(panel, session, shapes, sent):
    assert session.layer is None
    assert panel.features.layer == cw.default_cam_layer(shapes)  # shown, not selected
    assert "no layer is selected" in panel.fm_head.value
    session.layer = "conv2"
    fm = panel.features
    assert fm.layer == "conv2" and panel.fm_layer.value == "conv2"
    expected = cw.feature_maps(shapes, panel.image, "conv2", sort="mean")
    np.testing.assert_array_equal(fm.order, expected.order)
    np.testing.assert_array_equal(fm.maps, expected.maps)
    drawn = last_sent(sent, panel.fm_pixels)
    np.testing.assert_array_equal(drawn, zoom_nearest(expected.montage.image, panel.fm_pixels.zoom))
    means = fm.stats.mean[np.asarray(fm.order)]
    assert list(means) == sorted(means, reverse=True)  # strongest first
    assert "32 channels of 32×32" in panel.fm_info.value
    panel.fm_sort.value = None
    np.testing.assert_array_equal(panel.features.order, np.arange(32))
    panel.fm_layer.value = "conv1"  # the panel's own dropdown sets the session
    assert session.layer == "conv1" and panel.features.layer == "conv1"


def test_a_non_spatial_layer_gets_a_note(panel, session):
    session.layer = "gap"
    assert panel.features is None
    assert "no spatial maps" in panel.fm_info.value and "conv4" in panel.fm_info.value
    assert panel.messages.kind is None
    session.layer = "conv3"
    assert panel.features.layer == "conv3"


def test_clicking_a_feature_map_selects_the_channel_for_the_optimizer(session, shapes):
    optimizer = ClassOptimizer(session)
    panel = ImageExplainer(session)
    session.layer = "conv3"
    channel = click_tile(panel, 2)
    assert (session.layer, session.channel) == ("conv3", channel)
    # the class optimizer takes it as its channel target
    assert optimizer.target.mode.value == "channel"
    assert optimizer.target.layer_select.value == "conv3"
    assert optimizer.target.channel_index.value == channel
    assert f"channel <b>{channel}</b> of conv3" in optimizer.target.summary.value
    # the tile is outlined, its statistics and map shown
    assert panel.fm_pixels.highlight == panel.features.montage.tile_box(2)
    assert f"Channel {channel} of" in panel.fm_detail.value
    mean = panel.features.stats.mean[channel]
    assert f"{mean:.3g}" in panel.fm_detail.value
    overlay = panel.features.overlay(channel, "jet", 0.6)
    np.testing.assert_array_equal(panel.channel_pixels.image, overlay)
    # a click on the padding between tiles changes nothing
    click(panel.fm_pixels.canvas, 0, 0)
    assert session.channel == channel
    # with no layer selected, a click selects the layer shown (the Grad-CAM layer)
    session.layer = None
    channel = click_tile(panel, 0)
    assert (session.layer, session.channel) == ("conv4", channel)
    assert (
        optimizer.target.layer_select.value == "conv4"
        and optimizer.target.channel_index.value == channel
    )


def test_a_picked_class_goes_to_the_session_a_new_image_does_not(session, shapes):
    optimizer = ClassOptimizer(session)
    panel = ImageExplainer(session)
    assert session.class_index is None  # the default class stays local
    panel.class_select.value = 3
    assert session.class_index == 3
    assert optimizer.target.mode.value == "class" and optimizer.class_targets == [3]
    panel.set_image(cw.sample_image("dots", seed=7))
    assert session.class_index == 3  # a new image's default class is not written
    assert panel.class_select.value == panel.predictions.class_index
    session.class_index = "triangle"  # a class set elsewhere is explained here
    assert panel.class_select.value == 2 and panel.attribution.class_index == 2


def test_new_shapes_images_show_their_seed(panel):
    seed = panel.new_shapes_image(seed=1234)
    assert seed == 1234
    batch = cw.generate_shapes(1, seed=1234)
    np.testing.assert_array_equal(panel.image, batch.images[0])
    assert "seed 1234" in panel.source.value
    assert cw.SHAPES_CLASS_NAMES[int(batch.labels[0])].replace("_", " ") in panel.source.value
    panel.new_image.click()
    assert "seed" in panel.source.value and panel.messages.kind is None


def test_samples_cover_every_class_and_the_photo(panel):
    values = [v for _, v in panel.sample_select.options]
    assert values == ["", *cw.SHAPES_CLASS_NAMES, "grace_hopper"]
    assert panel.sample_select.value == "circle"  # the default image is a sample
    panel.sample_select.value = "grace_hopper"
    assert "Grace Hopper" in panel.source.value
    assert panel.messages.kind == "note"  # resized to the model's 64 px
    panel.sample_select.value = "checkerboard"
    np.testing.assert_array_equal(panel.image, cw.sample_image("checkerboard"))
    panel.new_shapes_image(seed=3)
    assert panel.sample_select.value == ""  # not a sample any more


def test_grad_cam_without_a_spatial_layer_is_a_message(tmp_path):
    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(4, activation="softmax")(flat)
    model = keras.Model(inputs, outputs)
    before = model_state(model)
    panel = ImageExplainer(model, image=np.random.default_rng(0).random((32, 32, 3)))
    assert panel.method.value == "saliency"  # Grad-CAM cannot work on this model
    assert panel.messages.kind is None and panel.attribution.method == "saliency"
    assert "no layer with a spatial output" in panel.fm_info.value
    panel.method.value = "grad_cam"
    assert panel.messages.kind == "error" and "spatial" in panel.messages.text
    assert panel.attribution is None and "without a heatmap" in panel.caption.value
    panel.method.value = "occlusion"
    assert panel.messages.kind is None and panel.attribution.method == "occlusion"
    assert_same_state(before, model_state(model))


def test_an_unexpected_error_shows_and_the_panel_recovers(panel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(explainer_module, "saliency", broken)
    panel.method.value = "saliency"
    assert panel.messages.kind == "error" and "out of cheese" in panel.messages.text
    assert not panel.busy and "working" not in panel.status.value
    panel.method.value = "grad_cam"
    assert panel.messages.kind is None and panel.attribution.method == "grad_cam"


def test_a_working_state_is_shown_while_the_engine_runs(panel, monkeypatch):
    seen = []
    original = explainer_module.occlusion

    def spy(*args, **kwargs):
        seen.append((panel.busy, panel.status.value, panel.status._dom_classes))
        return original(*args, **kwargs)

    monkeypatch.setattr(explainer_module, "occlusion", spy)
    panel.method.value = "occlusion"
    busy, text, classes = seen[0]
    assert busy and text.startswith("working") and "256 patches" in text
    assert "cnnviz-working" in classes
    assert not panel.busy and "Occlusion computed in" in panel.status.value
    assert "cnnviz-working" not in panel.status._dom_classes


def test_many_classes_get_a_search_box():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(40, activation="softmax")
    outputs = dense(x)
    # class 0 on top for every image, so that picking zebra (39) below is a change: with
    # random weights alone a run failed with the explanation at 39 but the session at
    # None, as when zebra is already the top class and the pick changes nothing
    kernel, _ = dense.get_weights()
    dense.set_weights([kernel, np.where(np.arange(40) == 0, 20.0, 0.0).astype(np.float32)])
    names = [f"thing_{i}" for i in range(39)] + ["zebra"]
    loaded = cw.load_model(keras.Model(inputs, outputs), class_names=names)
    panel = ImageExplainer(loaded)
    assert panel.class_search.layout.display is None  # shown for 40 classes
    picked = panel.class_select.value
    assert picked == 0
    panel.class_search.value = "zeb"
    values = [v for _, v in panel.class_select.options]
    assert 39 in values and panel.class_select.value == picked  # the current class stays
    assert set(values) <= {39, picked}
    panel.class_select.value = 39
    assert panel.attribution.class_index == 39 and panel.session.class_index == 39
    panel.class_search.value = "nothing like it"
    assert panel.messages.kind == "note" and "No class matches" in panel.messages.text
    panel.class_search.value = ""
    assert len(panel.class_select.options) == 40 and panel.messages.kind is None


def test_the_user_model_is_not_changed(shapes):
    before = model_state(shapes.model)
    session = Session(shapes)
    panel = ImageExplainer(session)
    for _, method in explainer_module.METHODS:
        panel.method.value = method
    session.layer = "conv1"
    click_tile(panel, 0)
    panel.set_image(cw.sample_image("grace_hopper"))
    assert_same_state(before, model_state(shapes.model))


def test_explore_has_the_explain_tab(shapes):
    app = explore(shapes)
    assert "Explain an image" in app.panels
    panel = app.panels["Explain an image"]
    assert isinstance(panel, ImageExplainer) and panel.session is app.session
    app.session.layer = "conv2"
    assert panel.features.layer == "conv2"
    app.close()


def test_exported_from_the_package(tmp_path, panel):
    assert cw.ImageExplainer is ImageExplainer
    data = panel.to_png(tmp_path / "overlay.png")
    assert data.startswith(PNG) and (tmp_path / "overlay.png").read_bytes() == data
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), panel.pixels.sent)


def test_large_inputs_get_fewer_samples_and_a_subsampled_montage(sent):
    inputs = keras.Input((160, 160, 3))
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="big")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    session = Session(keras.Model(inputs, outputs))
    panel = ImageExplainer(session, image=np.random.default_rng(1).random((160, 160, 3)))
    assert panel.wait(180)  # a large input: the new image's work went to the background
    assert panel.smooth_samples.value == 10
    assert (panel.patch.value, panel.stride.value) == (20, 10)  # the engine's defaults
    assert "256 patches" in panel.patch_count.value
    panel.stride.value = 20
    assert "64 patches" in panel.patch_count.value
    fm = panel.features
    assert fm.layer == "big" and max(fm.montage.image.shape[:2]) > 1024
    drawn = last_sent(sent, panel.fm_pixels)
    assert max(drawn.shape[:2]) <= 1024  # every 2nd pixel
    np.testing.assert_array_equal(drawn, fm.montage.image[::2, ::2])
    # a click on the subsampled picture finds the right map, and outlines it there
    x, y, w, h = fm.montage.tile_box(9)
    click(panel.fm_pixels.canvas, (x + w / 2) / 2, (y + h / 2) / 2)
    assert session.channel == int(fm.order[9])
    assert panel.fm_pixels.highlight == (x // 2, y // 2, -(-w // 2), -(-h // 2))


def test_a_grayscale_model_takes_colour_uploads_with_a_note():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    before = model_state(model)
    panel = ImageExplainer(model)
    colour = (cw.sample_image("cross", size=28) * 255).round().astype(np.uint8)
    upload(panel, "cross.png", png_bytes(colour))
    assert panel.messages.kind == "note" and "gray" in panel.messages.text
    assert panel.image.shape == (28, 28, 1)
    assert panel.attribution.method == "grad_cam" and panel.attribution.layer == "conv"
    assert panel.pixels.sent.shape == (224, 224, 4)  # 28 px enlarged 8x (the largest zoom)
    assert_same_state(before, model_state(model))


# --- long work in the background; polish ---------------------------------------------


def slow_engine(calls, steps=2000):
    """An engine method that reports progress for a long time (until Stop raises)."""

    def method(*args, progress=None, **kwargs):
        calls.append(kwargs)
        for done in range(1, steps + 1):
            time.sleep(0.005)
            progress(done, steps)
        raise AssertionError("the job was not stopped")

    return method


def test_occlusion_and_smoothgrad_run_in_the_background(panel, shapes):
    panel.background = True
    image, target = panel.image, panel.class_select.value
    panel.method.value = "occlusion"
    assert panel.wait(180) and not panel.busy
    expected = cw.occlusion(shapes, image, target, patch=8, stride=4)
    np.testing.assert_array_equal(panel.pixels.sent, shown(panel, expected.overlay("jet", 0.5)))
    assert panel.attribution.method == "occlusion" and "Occlusion computed in" in panel.status.value
    assert (panel.progress.value, panel.progress.max) == (256, 256)
    assert panel.progress.bar_style == "success" and panel.stop_button.disabled
    panel.method.value = "smoothgrad"
    assert panel.wait(180)
    expected = cw.saliency(shapes, image, target, smooth=25, noise=0.15)
    np.testing.assert_array_equal(panel.pixels.sent, shown(panel, expected.overlay("jet", 0.5)))
    assert panel.progress.max == 25 and panel.messages.kind is None


def test_stop_keeps_the_picture_and_the_panel_stays_usable(panel, monkeypatch):
    panel.background = True
    before, cam = panel.pixels.sent.copy(), panel.attribution
    calls = []
    monkeypatch.setattr(explainer_module, "occlusion", slow_engine(calls))
    panel.method.value = "occlusion"
    wait_until(lambda: panel.progress.value > 0, what="progress")
    assert panel.busy and panel.runner.running and not panel.stop_button.disabled
    wait_until(lambda: "patches/s · about" in panel.status.value, what="the rate")
    panel.opacity.value = 0.8  # the panel answers while the job runs
    panel.stop_button.click()
    assert panel.wait(60) and not panel.busy
    assert "stopped" in panel.status.value and panel.progress.bar_style == "warning"
    assert panel.attribution is cam  # what is shown: the Grad-CAM, redrawn at 0.8
    np.testing.assert_array_equal(panel.pixels.sent, shown(panel, cam.overlay("jet", 0.8)))
    assert not np.array_equal(panel.pixels.sent, before)
    # a new method asked for during a job: the job stops and the new one runs
    panel.method.value = "occlusion"
    wait_until(lambda: panel.progress.value > 0, what="progress")
    panel.method.value = "saliency"
    assert panel.wait(60)
    wait_until(lambda: panel.attribution is not None and not panel.runner.running)
    assert panel.attribution.method == "saliency" and panel.messages.kind is None


def test_a_failing_background_job_shows_in_the_panel(panel, monkeypatch):
    panel.background = True

    def broken(*args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(explainer_module, "saliency", broken)
    panel.method.value = "smoothgrad"
    assert panel.wait(60)
    assert panel.messages.kind == "error" and "out of cheese" in panel.messages.text
    assert panel.attribution is None and "without a heatmap" in panel.caption.value
    monkeypatch.undo()
    panel.method.value = "grad_cam"
    assert panel.messages.kind is None and panel.attribution.method == "grad_cam"


@pytest.mark.parametrize("background", [False, True])
def test_a_run_too_big_for_memory_is_refused_in_the_panel(panel, monkeypatch, background):
    panel.background = background
    monkeypatch.setattr(budget, "MEMORY_SHARE", 1e-9)  # as if memory were all but full
    for method, what in (("occlusion", "occlusion ("), ("smoothgrad", "SmoothGrad (")):
        panel.method.value = method
        assert panel.wait(60)
        text = panel.messages.text
        assert panel.messages.kind == "error" and text.startswith(f"RunTooLargeError: {what}")
        assert "would need about" in text and "lower batch_size" in text
        assert panel.attribution is None and "without a heatmap" in panel.caption.value
    monkeypatch.undo()
    panel.method.value = "occlusion"  # the panel goes on
    assert panel.wait(60) and panel.attribution.method == "occlusion"
    assert panel.messages.kind is None


@pytest.mark.parametrize("background", [False, True])
def test_a_long_run_says_so_in_the_panel_and_starts(panel, monkeypatch, background):
    panel.background = background
    monkeypatch.setattr(budget, "WARN_SECONDS", 0.0)  # every run is "long"
    with warnings.catch_warnings():
        warnings.simplefilter("error", cw.LongRunWarning)  # not in the cell's stderr
        panel.method.value = "occlusion"
        assert panel.wait(60)
    assert panel.attribution.method == "occlusion"  # it ran
    text = panel.messages.text
    assert panel.messages.kind == "note" and text.startswith("A long run: occlusion (")
    assert "will take about" in text and ("Stop ends it" in text) == background
    panel.method.value = "grad_cam"  # not checked by the budget: the note goes
    assert panel.messages.kind is None and panel.attribution.method == "grad_cam"


def test_large_inputs_explain_in_the_background_by_default(sent):
    inputs = keras.Input((160, 160, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="big")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    image = np.random.default_rng(2).random((160, 160, 3))
    panel = ImageExplainer(keras.Model(inputs, outputs), image=image)
    assert panel.runner.thread is not None  # the new image's work: not in the constructor
    panel.method.value = "occlusion"  # asked for during that work: runs after it
    wait_until(lambda: panel.attribution is not None and panel.attribution.method == "occlusion")
    assert panel.wait(180) and panel.features is not None and panel.predictions is not None
    assert panel.messages.kind != "error" and panel.progress.bar_style == "success"
    panel.close()


@pytest.mark.slow
def test_explore_on_a_large_model_returns_at_once_and_works_in_the_background():
    vgg = keras.applications.VGG16(weights=None)  # never download weights
    app = explore(vgg)
    panel = app.panels["Explain an image"]
    assert panel.runner.running  # predictions, Grad-CAM, feature maps: in the background
    assert "working" in panel.status.value and not panel.stop_button.disabled
    conv = app.panels["Convolution"]
    assert conv.runner.thread is not None  # its first pass went to the background too
    app.panels["Layers"].layer_list.value = "block3_conv1"  # the other panels answer
    assert app.session.layer == "block3_conv1"
    assert panel.wait(600) and panel.messages.kind in (None, "note")
    assert panel.predictions is not None and panel.attribution.method == "grad_cam"
    assert panel.features is not None and panel.features.layer == "block3_conv1"
    assert conv.wait(600) and conv.trace.layer == "block3_conv1"
    assert conv.messages.kind in (None, "note")
    app.close()


def test_a_caveat_note_goes_when_the_next_method_has_none(panel, monkeypatch):
    original = explainer_module.grad_cam

    def no_evidence(*args, **kwargs):
        result = original(*args, **kwargs)
        return dataclasses.replace(result, notes=["no positive evidence for class 3"])

    monkeypatch.setattr(explainer_module, "grad_cam", no_evidence)
    panel.method.value = "grad_cam++"
    assert panel.messages.kind == "note" and "no positive evidence" in panel.messages.text
    panel.method.value = "occlusion"
    assert panel.messages.kind is None  # not left over from Grad-CAM
    panel.set_image(cw.sample_image("grace_hopper"))  # an image note is not a caveat
    panel.method.value = "saliency"
    assert panel.messages.kind == "note" and "resized" in panel.messages.text


def test_the_class_in_use_and_the_top_prediction_are_both_shown(session, shapes):
    panel = ImageExplainer(session)
    top = panel.predictions.class_index
    assert "the top prediction" in panel.class_note.value
    assert panel.use_top.layout.display == "none"
    other = (top + 4) % 9
    session.class_index = other  # e.g. the class optimizer's last class
    name, top_name = cw.SHAPES_CLASS_NAMES[other], cw.SHAPES_CLASS_NAMES[top]
    assert panel.attribution.class_index == other
    assert f"Explaining <b>{name}</b>" in panel.class_note.value
    assert f"top prediction <b>{top_name}</b>" in panel.class_note.value
    assert panel.use_top.layout.display is None
    panel.use_top.click()
    assert panel.attribution.class_index == top and session.class_index == top
    assert panel.use_top.layout.display == "none"
