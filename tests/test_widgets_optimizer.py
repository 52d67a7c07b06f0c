"""ClassOptimizer and explore() without a browser: drive them like a front end, let the
background runs finish (polled, no timing assertions), check what is sent and kept."""

import importlib
import io
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine.model import budget
from cnnviz_widgets.session import SelectionError, Session
from cnnviz_widgets.widgets import ClassOptimizer, FilterGallery, LayerBrowser, explore
from cnnviz_widgets.widgets.class_optimizer import PreviewLayout, curve_svg
from cnnviz_widgets.widgets.explore import Explorer
from cnnviz_widgets.widgets.pictures import compose, opaque_rgba, thumbnail

from .helpers import click, wait_until


def finish(panel, timeout=180.0):
    assert panel.wait(timeout), "the run did not end"


def pick(panel: ClassOptimizer, *classes):
    """What the front end sends when classes are clicked in the list."""
    values = [v for _, v in panel.target.picker.select.options]
    panel.target.picker.select.set_state({"index": [values.index(c) for c in classes]})


def tile(panel, picture, k):
    """Image ``k`` of the batch, cut out of a preview canvas picture."""
    x, y, w, h = panel.preview_layout.box(k)
    return picture[y : y + h, x : x + w]


@pytest.fixture
def session(shapes):
    return Session(shapes)


@pytest.fixture
def panel(session):
    opt = ClassOptimizer(session, steps=12)
    opt.redraw_interval = 0.0  # every frame drawn: deterministic frame counts in tests
    yield opt
    opt.close()


# --- targets ------------------------------------------------------------------------


def test_classes_are_listed_by_name_and_searchable(panel, shapes):
    labels = [label for label, _ in panel.target.picker.select.options]
    assert labels[0] == "0 · circle" and labels[8] == "8 · dots" and len(labels) == 9
    assert panel.target.picker.select.value == (0,)  # a class is ready to run
    assert "circle" in panel.target.summary.value
    pick(panel, 3)
    panel.target.picker.search.value = "STRIPES"
    assert [v for _, v in panel.target.picker.select.options] == [5, 6]
    assert panel.class_targets == [3]  # hidden by the search, still the target
    pick(panel, 5, 6)
    assert panel.class_targets == [5, 6]
    assert "2 images in one batch" in panel.target.summary.value
    panel.target.picker.search.value = "zebra"
    assert panel.messages.kind == "note" and "zebra" in panel.messages.text
    panel.target.picker.search.value = "4"  # an index works as a search word
    assert [v for _, v in panel.target.picker.select.options] == [4]
    panel.target.picker.search.value = ""
    assert panel.target.picker.select.value == (5, 6) and panel.messages.kind is None


def test_imagenet_names_for_keras_applications(vgg16):
    opt = ClassOptimizer(vgg16)
    labels = [label for label, _ in opt.target.picker.select.options]
    assert len(labels) == 1000 and labels[207] == "207 · golden_retriever"
    opt.target.picker.search.value = "retriever"
    assert 207 in [v for _, v in opt.target.picker.select.options]
    opt.class_targets = ["tabby"]
    assert opt.session.class_index == 281 and opt.class_targets == [281]
    assert "block1_conv1" in [v for _, v in opt.target.layer_select.options]
    opt.close()


@pytest.mark.slow
def test_a_model_without_class_names_lists_indices():
    import keras

    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, name="c"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5, name="out"),
        ]
    )
    opt = ClassOptimizer(model, steps=4)
    assert [label for label, _ in opt.target.picker.select.options] == [
        f"class {i}" for i in range(5)
    ]
    opt.run(wait=True, timeout=180)
    assert opt.result.images.shape == (1, 16, 16, 3)
    assert opt.labels == ["class 0"] and "class 0" in opt.preview.captions.value
    opt.close()


def test_channel_targets_and_batches(panel, shapes):
    panel.target.mode.value = "channel"
    panel.target.layer_select.value = "conv3"
    panel.target.channel_index.value = 62
    panel.target.channel_count.value = 4  # only 64 channels: 62 and 63
    objective, labels, title = panel.targets()
    assert labels == ["conv3 · 62", "conv3 · 63"] and title == "conv3 · 62–63"
    assert objective.batch_size() == 2
    assert "channels <b>62–63</b>" in panel.target.summary.value
    panel.target.channel_index.value = 4
    panel.run(wait=True, timeout=180)
    assert panel.result.images.shape == (4, 64, 64, 3)
    assert panel.labels == [f"conv3 · {c}" for c in (4, 5, 6, 7)]
    layout = panel.preview_layout
    assert layout.columns == 4 and layout.rows == 1  # 4 images of 64 px fit in a row
    assert "channel('conv3', [4, 5, 6, 7])" in panel.shown.settings["objective"]


def test_presets_fill_the_settings(panel):
    controls = panel.settings_column
    assert (controls.steps.value, controls.lr.value, controls.tv.value) == (12, 0.02, 0.0)
    controls.preset.value = "keras-vis"
    p = cw.PRESETS["keras-vis"]
    shown = (controls.steps.value, controls.lr.value, controls.tv.value, controls.lp.value)
    assert shown == (p.steps, p.lr, p.tv, p.lp)
    assert "keras-vis" in panel.settings_column.preset_info.value
    panel.settings_column.class_objective.value = "class_logit"
    assert "class_logit(0)" == repr(panel.targets()[0])


# --- runs ---------------------------------------------------------------------------


@pytest.mark.slow
def test_run_streams_frames_and_keeps_a_history(panel, sent):
    pick(panel, 0, 3, 8)
    panel.settings_column.steps.value = 16
    panel.run_bar.run_button.click()  # returns at once: the run goes on in a thread
    assert panel.running or panel.wait(0)
    finish(panel)
    record = panel.shown
    result = panel.result
    assert result.steps == 16 and not result.stopped and result.error is None
    assert result.images.shape == (3, 64, 64, 3) and result.history.shape == (16, 3)
    # live frames reached every preview canvas, and they changed from frame to frame
    frames = sent.on(panel.preview.pixels.canvas)  # one canvas, every image of the batch
    assert len(frames) >= 3
    for k in range(3):
        distinct = {tile(panel, f, k).tobytes() for f in frames}
        assert len(distinct) >= 2, "the preview did not change"
        np.testing.assert_array_equal(tile(panel, frames[-1], k), opaque_rgba(result.images[k]))
    assert frames[-1].shape == (64 + 8, 3 * 64 + 2 * 4, 4)  # own size: gaps of 4 px, a
    assert panel.preview.pixels.css_zoom == 3  # caption band of 8 px; shown 3× larger, pixelated
    assert panel.preview.pixels.canvas.layout.width == f"{frames[-1].shape[1] * 3}px"
    assert panel.draw_count >= 2
    assert len(record.frames) >= 3 and record.frame_steps[-1] == 16
    assert panel.labels == ["circle", "ring", "dots"]
    for name in ("circle", "ring", "dots"):
        assert (
            f"{name}</div>" in panel.preview.captions.value
            or f"{name} <span" in panel.preview.captions.value
        )
    assert "done: 16 steps" in panel.run_bar.status.value and panel.run_bar.progress.value == 16
    # the precision the run used is in the status line, and why in its tooltip
    assert f">{result.precision}</span>" in panel.run_bar.status.value
    assert panel.run_bar.progress.bar_style == "success"
    assert (
        "<polyline" in panel.readouts.curve.value
        and panel.readouts.curve.value.count("<polyline") == 3
    )
    assert not panel.run_bar.run_button.disabled and panel.run_bar.stop_button.disabled
    assert len(panel.history.box.children) == 1 and panel.records == [record]

    pick(panel, 1)
    panel.run(wait=True, timeout=180)
    assert len(panel.history.box.children) == 2 and len(panel.records) == 2
    assert panel.result.images.shape[0] == 1 and panel.preview.pixels.image.shape == (64 + 8, 64, 4)
    # the newest first in the strip; clicking the older one shows it again
    older = panel.history.items[0]
    assert panel.history.box.children[1] is older.box
    click(older.pixels.canvas)
    assert panel.shown is record and panel.labels == ["circle", "ring", "dots"]
    assert "cnnviz-selected" in older.box._dom_classes
    np.testing.assert_array_equal(
        tile(panel, panel.preview.pixels.image, 2), opaque_rgba(record.images[2])
    )
    assert "circle, ring, dots" in panel.readouts.result_info.value


def test_a_new_step_shows_its_first_step_at_once_and_keeps_only_the_run(monkeypatch):
    """A run whose step is not compiled yet (here: three classes, where the panel warmed
    one up for one) paints the eager first step before the trace; the record, the curve
    and the saved frames are the compiled run's alone."""
    panel = ClassOptimizer(Session(cw.load_model("shapes")), steps=12)  # nothing compiled
    panel.redraw_interval = 0.0
    painted = []
    paint = panel._paint

    def spy(frame, record, text):
        paint(frame, record, text)
        painted.append((frame.step, frame.preview, panel.run_bar.status.value))

    monkeypatch.setattr(panel, "_paint", spy)
    pick(panel, 0, 3, 8)
    panel.settings_column.steps.value = 6
    record = panel.run(wait=True, timeout=180)
    assert painted[0][:2] == (1, True) and "compiling the step" in painted[0][2]
    assert [p for _, p, _ in painted[1:]] == [False] * (len(painted) - 1)
    result = panel.result
    assert result.steps == 6 and result.history.shape == (6, 3)
    steps, values = record.curve()
    np.testing.assert_array_equal(steps, np.arange(1, 7))
    np.testing.assert_array_equal(values, result.history)
    assert record.frame_steps == sorted(set(record.frame_steps))  # no step kept twice
    assert "done: 6 steps" in panel.run_bar.status.value
    panel.close()


def test_png_and_gif_exports_decode(panel, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the buttons write into the working folder
    with pytest.raises(cw.CnnvizError, match="nothing to export"):
        panel.to_png()
    pick(panel, 2, 4)
    panel.run(wait=True, timeout=180)
    png = Image.open(io.BytesIO(panel.to_png(tmp_path / "a.png")))
    assert png.size[0] > 2 * 64 * 3 and (tmp_path / "a.png").exists()
    single = np.asarray(Image.open(io.BytesIO(panel.to_png(index=1))))
    np.testing.assert_array_equal(single, opaque_rgba(panel.result.images[1]))
    with pytest.raises(cw.CnnvizError, match="out of range"):
        panel.to_png(index=5)
    gif = Image.open(io.BytesIO(panel.to_gif(tmp_path / "a.gif")))
    assert gif.format == "GIF" and gif.n_frames >= 3 and gif.size == png.size
    first = np.asarray(gif.convert("RGB"))
    gif.seek(gif.n_frames - 1)
    assert not np.array_equal(first, np.asarray(gif.convert("RGB")))  # it moves
    panel.readouts.save_png.click()
    assert "optimized_triangle_cross.png" in panel.readouts.export_status.value
    assert Image.open(tmp_path / "optimized_triangle_cross.png").size == png.size
    panel.readouts.save_gif.click()
    assert (
        "download" in panel.readouts.export_status.value
        and "image/gif" in panel.readouts.export_status.value
    )
    assert Image.open(tmp_path / "optimized_triangle_cross.gif").n_frames == gif.n_frames


def test_stop_ends_the_run_and_keeps_the_last_image(panel, sent):
    panel.settings_column.steps.value = 100_000
    panel.run()
    wait_until(lambda: panel.draw_count >= 2, what="two live frames")
    assert (
        panel.running
        and panel.run_bar.run_button.disabled
        and not panel.run_bar.stop_button.disabled
    )
    panel.run_bar.stop_button.click()
    finish(panel)
    result = panel.result
    assert result.stopped and 2 <= result.steps < 100_000
    assert result.images.std() > 1  # not blank
    shown = sent.on(panel.preview.pixels.canvas)[-1]
    np.testing.assert_array_equal(tile(panel, shown, 0), opaque_rgba(result.images[0]))
    assert (
        "stopped at step" in panel.run_bar.status.value
        and "last image kept" in panel.run_bar.status.value
    )
    assert panel.records[-1].result is result and "stopped at" in (
        panel.history.items[-1].caption.value
    )


def test_one_run_at_a_time_and_the_other_panels_keep_working(session, panel):
    browser = LayerBrowser(session)
    panel.settings_column.steps.value = 100_000
    panel.run()
    with pytest.raises(cw.CnnvizError, match="already going"):
        panel.run()
    panel.run_bar.run_button.click()  # from the button: a message in the panel, nothing raised
    assert panel.messages.kind == "error" and "already going" in panel.messages.text
    wait_until(lambda: panel.draw_count >= 1, what="a live frame")
    browser.layer_list.value = "conv2"  # answered while the run goes on
    assert panel.running  # still going
    assert "conv2" in browser.details.value and "(None, 32, 32, 32)" in browser.details.value
    panel.stop()
    finish(panel)
    browser.close()


def test_closing_the_panel_stops_its_run(session):
    opt = ClassOptimizer(session, steps=100_000)
    opt.run()
    wait_until(lambda: opt.draw_count >= 1, what="a live frame")
    run = opt._run
    opt.close()
    assert not opt.running and run.result is not None and run.result.stopped
    assert opt.runner.thread is not None and not opt.runner.thread.is_alive()
    with pytest.raises(cw.CnnvizError, match="closed"):
        opt.run()
    opt.close()  # twice is fine


def test_live_preview_off_draws_only_the_result(panel, sent):
    panel.settings_column.live_preview.value = False
    panel.run(wait=True, timeout=180)
    frames = sent.on(panel.preview.pixels.canvas)
    assert len(frames) == 1  # the final image only
    np.testing.assert_array_equal(tile(panel, frames[0], 0), opaque_rgba(panel.result.images[0]))
    assert panel.run_bar.progress.value == 12


# --- errors -------------------------------------------------------------------------


def test_a_run_checks_its_settings_and_precision_once(panel, monkeypatch):
    from cnnviz_widgets.engine.model import precision
    from cnnviz_widgets.engine.optvis import run as run_module
    from cnnviz_widgets.widgets import optimizer_settings

    calls = {"settings": 0, "precision": 0}

    def counted(name, check):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return check(*args, **kwargs)

        return wrapper

    check, precise = run_module.check_settings, precision.check_precision
    monkeypatch.setattr(run_module, "check_settings", counted("settings", check))
    monkeypatch.setattr(optimizer_settings, "check_settings", counted("settings", check))
    monkeypatch.setattr(run_module, "check_precision", counted("precision", precise))
    monkeypatch.setattr(precision, "check_precision", counted("precision", precise))
    record = panel.run(wait=True, timeout=600)
    assert calls == {"settings": 1, "precision": 1}
    assert record.settings["steps"] == 12 and record.settings["lr"] == panel.config.lr


def test_bad_settings_show_in_the_panel(panel):
    panel.settings_column.lr.value = 0
    panel.run_bar.run_button.click()
    assert panel.messages.kind == "error" and "learning rate must be > 0" in panel.messages.text
    panel.settings_column.lr.value = 0.05
    panel.settings_column.steps.value = 0
    panel.run_bar.run_button.click()
    assert "steps must be at least 1" in panel.messages.text
    panel.settings_column.steps.value = 4
    panel.settings_column.tv.value = -1
    panel.run_bar.run_button.click()
    assert "tv is a penalty weight" in panel.messages.text
    panel.settings_column.tv.value = 0
    with pytest.raises(SelectionError, match="class index 99 is out of range"):
        panel.class_targets = [99]  # from code: raised
    panel.guarded(lambda: setattr(panel, "class_targets", [0, 99]))()  # from a control: shown
    assert "class index 99 is out of range" in panel.messages.text and "0..8" in panel.messages.text
    assert panel.class_targets == [0]
    panel.target.picker.picked = [99]  # stale or forged: the run refuses it with the range
    panel.run_bar.run_button.click()
    assert "class 99 is out of range" in panel.messages.text
    panel.class_targets = list(range(9)) * 2
    panel.run_bar.run_button.click()
    assert "at most 16" in panel.messages.text
    pick(panel, 1)
    panel.run(wait=True, timeout=180)  # still usable
    assert panel.messages.kind is None and panel.result.steps == 4


def test_a_run_too_big_for_memory_is_refused_in_the_panel(panel, monkeypatch):
    monkeypatch.setattr(budget, "MEMORY_SHARE", 1e-9)  # as if memory were all but full
    pick(panel, 2, 5)
    panel.run_bar.run_button.click()
    assert not panel.running and panel.records == [] and panel.messages.kind == "error"
    text = panel.messages.text
    assert text.startswith("RunTooLargeError: this optimization (2 image(s) of 64x64, 12 steps)")
    assert "would need about" in text and "lower the batch (fewer targets)" in text
    monkeypatch.undo()
    panel.run_bar.run_button.click()  # the panel goes on: the same run now starts
    finish(panel)
    assert panel.messages.kind is None and panel.result is not None


def test_a_long_run_says_so_in_the_panel_and_starts(panel, monkeypatch):
    monkeypatch.setattr(budget, "WARN_SECONDS", 0.0)  # every run is "long"
    with warnings.catch_warnings():
        warnings.simplefilter("error", cw.LongRunWarning)  # not in the cell's stderr
        panel.run_bar.run_button.click()
        assert panel.messages.kind == "note"  # shown as the run starts
        finish(panel)
    text = panel.messages.text
    assert text.startswith("A long run: this optimization (1 image(s) of 64x64, 12 steps)")
    assert "will take about" in text and "Stop ends it" in text
    assert panel.result is not None and panel.result.steps == 12  # it ran to the end
    monkeypatch.undo()
    panel.run(wait=True)  # the next, ordinary run clears the note
    assert panel.messages.kind is None


def test_a_nan_stop_keeps_the_last_image_and_the_panel_usable(panel):
    panel.extra = obj.custom(lambda image: tf.sqrt(-tf.reduce_mean(image, axis=[1, 2, 3])))
    panel.run(wait=True, timeout=180)
    result = panel.result
    assert result.error and "NaN" in result.error
    assert panel.messages.kind == "error" and "NaN or infinite" in panel.messages.text
    assert result.images.shape == (1, 64, 64, 3) and result.images.std() > 0
    np.testing.assert_array_equal(
        tile(panel, panel.preview.pixels.image, 0), opaque_rgba(result.images[0])
    )
    assert panel.run_bar.progress.bar_style == "danger" and "NaN stop" in panel.run_bar.status.value
    assert not panel.run_bar.run_button.disabled
    panel.extra = None
    panel.run(wait=True, timeout=180)
    assert panel.result.error is None and panel.messages.kind is None


def test_an_unexpected_error_in_the_run_shows_in_the_panel(panel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("GPU on fire")

    monkeypatch.setattr(panel, "_draw_images", broken)
    panel.run(wait=True, timeout=180)
    assert panel.messages.kind == "error" and "GPU on fire" in panel.messages.text
    assert not panel.running and not panel.run_bar.run_button.disabled
    monkeypatch.undo()
    panel.run(wait=True, timeout=180)
    assert panel.result is not None and panel.messages.kind is None


# --- session ------------------------------------------------------------------------


def test_session_sync_both_ways(session, panel):
    session.class_index = "ring"
    assert panel.target.mode.value == "class" and panel.target.picker.select.value == (3,)
    pick(panel, 7)
    assert session.class_index == 7
    panel.target.picker.search.value = "circle"
    session.class_index = 5  # hidden by the search: the search is cleared to show it
    assert panel.target.picker.search.value == "" and panel.target.picker.select.value == (5,)

    gallery = FilterGallery(session)  # a click on filter 9 of conv2 in the gallery
    session.select("conv2", channel=9)
    assert panel.target.mode.value == "channel"
    assert (panel.target.layer_select.value, panel.target.channel_index.value) == ("conv2", 9)
    assert "channel <b>9</b> of conv2" in panel.target.summary.value
    panel.target.channel_index.value = 11  # and back to the session
    assert session.channel == 11 and gallery.pixels.highlight is not None
    panel.target.layer_select.value = "conv4"
    assert session.layer == "conv4" and session.channel == 11
    assert gallery.montage.layer == "conv4"
    session.layer = "pool1"  # not a convolution: the channel target stays
    assert panel.target.layer_select.value == "conv4"
    session.layer = "conv1"
    assert panel.target.layer_select.value == "conv1" and panel.target.channel_index.value == 11
    assert panel.target.channel_index.max == 15
    gallery.close()


def test_initial_target_from_the_session(shapes):
    session = Session(shapes, layer="conv3", channel=5)
    opt = ClassOptimizer(session)
    assert opt.target.mode.value == "channel" and opt.target.channel_index.value == 5
    # preset "auto": the robust model's own recipe, named under the menu with the reason
    s = opt.settings_column
    assert s.preset.value == "auto" and s.steps.value == cw.PRESETS["robust"].steps
    assert "auto chose robust: the model declares it in its metadata" in s.preset_info.value
    s.preset.value = "lucid"
    assert s.steps.value == cw.PRESETS["lucid"].steps
    assert s.preset_info.value.startswith("Lucid")
    opt.close()
    opt = ClassOptimizer(Session(shapes, class_index="dots"), preset="tf-keras-vis", lr=0.3)
    assert (
        opt.target.mode.value == "class"
        and opt.class_targets == [8]
        and opt.settings_column.lr.value == 0.3
    )
    with pytest.raises(cw.CnnvizError, match="unknown preset"):
        ClassOptimizer(shapes, preset="deepdream")
    opt.close()


# --- helpers ------------------------------------------------------------------------


def test_preview_layout_grids():
    nine = PreviewLayout.for_batch(9, 64, 64)
    assert (nine.zoom, nine.columns, nine.rows) == (3, 3, 3)
    assert nine.box(4) == (68, 76, 64, 64)  # row 1, column 1: past a gap and a caption band
    picture = nine.compose(np.full((9, 64, 64, 3), 7, np.uint8))
    assert picture.shape == (3 * 72 + 2 * 4, 3 * 64 + 2 * 4, 4)
    assert (picture[..., :3] == 7).sum() == 9 * 64 * 64 * 3
    vgg = PreviewLayout.for_batch(4, 224, 224)
    assert (vgg.zoom, vgg.columns, vgg.rows) == (1, 2, 2)
    one = PreviewLayout.for_batch(1, 28, 28)
    assert (one.zoom, one.columns) == (6, 1)


def test_compose_thumbnail_and_curve():
    images = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    picture = compose(images, ["a", "b", "c", "d", "e"], zoom=2)
    assert picture.dtype == np.uint8 and picture.shape[2] == 4
    np.testing.assert_array_equal(picture[10:26:2, 10:26:2, :3], images[0])
    thumb = thumbnail(images)
    assert thumb.shape == (84, 84, 4)
    gray = compose(images[:2, :, :, :1], zoom=1)
    assert gray.shape[2] == 4
    svg = curve_svg(np.arange(1, 11), np.random.default_rng(1).normal(size=(10, 2)), 20)
    assert svg.startswith("<svg") and svg.count("<polyline") == 2 and "step 20" in svg
    assert "appears when a run starts" in curve_svg(np.zeros(0), np.zeros((0, 1)), 10)


# --- explore ------------------------------------------------------------------------


def test_explore_puts_the_panels_on_one_session(shapes):
    app = explore(shapes)
    assert isinstance(app, Explorer) and isinstance(app.session, Session)
    assert list(app.panels)[:3] == ["Layers", "Filters", "Class optimization"]
    assert app.tabs.titles[:3] == ("Layers", "Filters", "Class optimization")
    browser, gallery, optimizer = (app.panels[k] for k in list(app.panels)[:3])
    assert isinstance(browser, LayerBrowser) and isinstance(gallery, FilterGallery)
    assert isinstance(optimizer, ClassOptimizer)
    assert browser.session is gallery.session is optimizer.session is app.session
    browser.layer_list.value = "conv3"
    assert gallery.montage.layer == "conv3" and optimizer.target.layer_select.value == "conv3"
    app.session.channel = 4
    assert optimizer.target.mode.value == "channel" and optimizer.target.channel_index.value == 4
    assert "channel <code>4</code>" in app.head.value and "9 classes" in app.head.value
    assert app.show("Class optimization") is optimizer and app.tabs.selected_index == 2
    app.close()
    assert optimizer.runner.closed


def test_explore_takes_extra_panels_and_survives_a_broken_one(shapes):
    import ipywidgets

    session = Session(shapes)
    note = ipywidgets.HTML("mine")

    def broken(session):
        raise RuntimeError("not today")

    app = explore(session, extra_panels=[("Notes", note), broken, LayerBrowser])
    assert app.session is session
    titles = list(app.panels)
    assert titles[-3:] == ["Notes", "broken", "LayerBrowser"]
    assert app.panels["Notes"] is note
    assert "not today" in app.panels["broken"].value
    assert app.panels["LayerBrowser"].session is session
    app.close()


def test_explore_includes_the_image_explainer_when_it_imports(shapes, monkeypatch):
    import sys
    import types

    explore_module = importlib.import_module("cnnviz_widgets.widgets.explore")

    module = types.ModuleType("cnnviz_widgets.widgets.image_explainer")

    class ImageExplainer(LayerBrowser):  # a stand-in with the expected constructor
        pass

    module.ImageExplainer = ImageExplainer
    monkeypatch.setitem(sys.modules, "cnnviz_widgets.widgets.image_explainer", module)
    app = explore_module.explore(shapes)
    assert isinstance(app.panels["Explain an image"], ImageExplainer)
    assert app.panels["Explain an image"].session is app.session
    app.close()


def test_settings_are_traits_linked_to_the_controls(panel):
    panel.config.steps = 64  # from code: the box follows
    assert panel.settings_column.steps.value == 64 and panel.settings()["steps"] == 64
    panel.settings_column.lr.value = 0.5  # from the box: the trait follows
    assert panel.config.lr == 0.5 and panel.settings()["lr"] == 0.5
    with pytest.raises(cw.CnnvizError, match="unknown preset"):
        panel.config.preset = "deepdream"
    panel.config.preset = "keras-vis"
    p = cw.PRESETS["keras-vis"]
    assert (
        panel.settings_column.preset.value == "keras-vis"
        and panel.settings_column.steps.value == p.steps
    )
    assert (panel.config.tv, panel.config.lp) == (p.tv, p.lp)


def test_the_panel_warms_up_its_step_when_it_opens():
    """Opening the panel traces and optimizes the step its Run button will use, in the
    background (cw.warm_up): the first run then traces nothing."""
    import threading

    from cnnviz_widgets.engine import optvis

    model = cw.load_model("shapes")  # a model object of its own: no step traced yet
    assert optvis.step_tracing_count(model) == 0
    panel = ClassOptimizer(model, steps=4)
    warming = [t for t in threading.enumerate() if t.name == "cnnviz-warm-up"]
    assert warming, "the panel started no warm-up"
    for thread in warming:
        thread.join(120)
    assert optvis.step_tracing_count(model) == 1
    record = panel.run(wait=True, timeout=120)
    assert record.result is not None and record.result.error is None
    assert optvis.step_tracing_count(model) == 1
    panel.close()
