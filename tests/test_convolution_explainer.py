"""ConvolutionExplainer without a browser: drive it as a front end would (clicks on the
feature map, dropdowns, the session) and check what it shows against the engine."""

import html
import re
import threading

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.session import Session
from cnnviz_widgets.widgets import ConvolutionExplainer, explore
from cnnviz_widgets.widgets import convolution_explainer as conv_module
from cnnviz_widgets.widgets.convolution_explainer import SUM, scaled_map
from cnnviz_widgets.widgets.pictures import opaque_rgba

from .helpers import assert_same_state, click, model_state, wait_until


def text_of(widget) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", widget.value))


def click_unit(panel: ConvolutionExplainer, y: int, x: int) -> None:
    """A mouse click in the middle of unit (y, x) of the feature-map canvas."""
    z = panel.map_pixels.zoom
    click(panel.map_pixels.canvas, (x + 0.5) * z, (y + 0.5) * z)


@pytest.fixture
def session(shapes):
    return Session(shapes)


@pytest.fixture
def panel(session):
    return ConvolutionExplainer(session)


def test_it_opens_on_the_first_convolution_at_its_strongest_value(panel, shapes):
    assert panel.layer.value == "conv1" and panel.channel.value == 0
    assert panel.layer.options == tuple(
        (label, p) for label, p in panel.layer.options if p in ("conv1", "conv2", "conv3", "conv4")
    )
    assert len(panel.layer.options) == 4
    out = cw.feature_maps(shapes, panel.image, "conv1").maps[..., 0]
    assert panel.position == tuple(int(v) for v in np.unravel_index(np.argmax(out), out.shape))
    trace = cw.convolution_at(shapes, panel.image, "conv1", 0, *panel.position)
    assert trace.text() in text_of(panel.arithmetic)
    assert panel.trace.value == pytest.approx(trace.value)
    # what the canvases received: the image, and the channel's map
    np.testing.assert_array_equal(panel.image_pixels.image, opaque_rgba(panel.image))
    np.testing.assert_array_equal(panel.map_pixels.image, scaled_map(out))
    assert panel.messages.kind is None


def test_a_click_explains_that_value(panel, shapes, sent):
    panel.session.layer = "conv2"
    panel.channel.value = 5
    assert panel.session.channel == 5 and panel.map_pixels.zoom == 8
    click_unit(panel, 2, 30)
    assert panel.position == (2, 30)
    expected = cw.convolution_at(shapes, panel.image, "conv2", 5, 2, 30)
    assert panel.trace.text() == expected.text()
    assert expected.text() in text_of(panel.arithmetic)
    assert "conv2[y=2, x=30, channel 5]" in text_of(panel.arithmetic)
    # the unit is outlined on the map, its receptive field on the image and its patch on
    # the layer's input (pool1's maps)
    assert panel.map_pixels.highlight == (30, 2, 1, 1)
    rf = cw.receptive_field(shapes, "conv2", 2, 30)
    top, left, bottom, right = rf.box
    assert panel.image_pixels.highlight == (left, top, right - left, bottom - top)
    assert panel.input_pixels.highlight == (29, 1, 3, 3)
    assert panel.input_column.layout.display is None
    # the click redrew the map (its outline moved): a new image was sent to it
    assert sent.on(panel.map_pixels.canvas)
    # a click past the edge of the map takes the last unit
    click_unit(panel, 40, 40)
    assert panel.position == (31, 31)


def test_the_grids_show_the_channel_that_contributes_most(panel, shapes):
    panel.session.select("conv2", 3)
    trace = panel.select(10, 11)
    k = int(np.argmax(np.abs(trace.channel_sums)))
    grids = text_of(panel.grids)
    assert f"Input channel {trace.input_channels[k]} (the largest contribution here)" in grids
    # a 3x3 kernel: every product's number is in the grid, and the per-channel sums
    for value in trace.products[..., k].ravel():
        assert f"{value:.2f}".replace("-", "−") in grids or abs(value) < 0.01
    assert "Per input channel" in text_of(panel.sums)
    panel.input_channel.value = SUM
    assert "products summed over the 16 input channels" in text_of(panel.grids)
    panel.input_channel.value = 7
    assert "Input channel 7" in text_of(panel.grids)
    assert "largest" not in text_of(panel.grids)


def test_a_large_kernel_is_shown_in_colour_only(panel):
    assert panel.trace.kernel.shape == (7, 7, 3)  # conv1
    assert "cnnviz-conv-colours" in panel.grids.value
    assert "cnnviz-conv-numbers" not in panel.grids.value
    panel.session.layer = "conv3"
    assert "cnnviz-conv-numbers" in panel.grids.value


def test_padding_positions_are_marked(panel):
    panel.session.layer = "conv3"
    trace = panel.select(0, 0)
    assert trace.padded.sum() == 5
    assert panel.grids.value.count(">pad</td>") == 2 * 5  # in the patch and the products


def test_the_first_layer_shows_no_separate_input_map(panel):
    assert panel.layer.value == "conv1"
    assert panel.input_column.layout.display == "none"
    assert panel.image_pixels.highlight is not None


def test_it_follows_the_session_and_keeps_its_layer_for_other_layers(panel, session):
    session.layer = "conv4"
    assert panel.layer.value == "conv4" and panel.trace.layer == "conv4"
    session.channel = 9
    assert panel.channel.value == 9 and panel.trace.channel == 9
    session.layer = "pool2"
    assert panel.layer.value == "conv4" and panel.messages.kind == "note"
    assert "pool2" in panel.messages.text and "not a convolution" in panel.messages.text
    panel.layer.value = "conv1"
    assert session.layer == "conv1" and panel.trace.layer == "conv1"
    assert session.channel == 9 and panel.trace.channel == 9  # the channel was kept


def test_images(panel, shapes):
    panel.sample_select.value = "ring"
    np.testing.assert_array_equal(panel.image, cw.sample_image("ring", seed=0))
    seed = panel.new_shapes_image(7)
    assert seed == 7 and "seed 7" in panel.source.value
    y, x = 20, 11
    panel.select(y, x)  # a clicked position stays on a new image
    panel.set_image(cw.sample_image("grace_hopper"))  # resized to 64x64, with a note
    assert panel.image.shape == (64, 64, 3) and panel.position == (y, x)
    assert panel.messages.kind == "note" and "resized" in panel.messages.text
    expected = cw.convolution_at(shapes, panel.image, panel.layer.value, 0, y, x)
    assert panel.trace.text() == expected.text()


def test_a_bad_image_or_position_is_a_message_in_the_panel(panel):
    before = panel.trace
    with pytest.raises(cw.CnnvizError, match="no image file"):
        panel.set_image("no-such-picture.png")
    assert panel.trace is before
    # the constructor keeps going with a bad image: message in the panel, default image
    other = ConvolutionExplainer(panel.session, image=np.zeros((5, 5, 7)))
    assert other.messages.kind == "error" and "7 channels" in other.messages.text
    assert other.trace is not None
    # a stray click arrives before anything is drawn: nothing breaks
    with pytest.raises(cw.CnnvizError, match="outside"):
        panel.select(99, 0)
    panel.guarded(panel.select)(99, 0)
    assert panel.messages.kind == "error" and "use y in 0..63" in panel.messages.text


def test_a_model_without_convolutions():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)], name="flat"
    )
    panel = ConvolutionExplainer(model)
    assert panel.messages.kind == "note" and "no Conv2D" in panel.messages.text
    assert panel.trace is None and panel.layer.disabled


def test_other_kinds_of_convolutions_and_a_nested_model():
    keras.utils.set_random_seed(1)
    inner_in = keras.Input((20, 20, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="strided")(inner_in)
    h = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(h)
    base = keras.Model(inner_in, h, name="base")
    x = keras.Input((20, 20, 3))
    y = base(x)
    y = keras.layers.SeparableConv2D(3, 3, dilation_rate=2, name="sep")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    model = keras.Model(x, keras.layers.Dense(2, activation="softmax")(y))
    before = model_state(model)
    panel = ConvolutionExplainer(model)
    assert [p for _, p in panel.layer.options] == ["base/strided", "base/dw", "sep"]
    image = panel.image
    for layer in ("base/dw", "sep"):
        panel.layer.value = layer
        trace = panel.select(1, 2)
        assert trace.text() == cw.convolution_at(model, image, layer, 0, 1, 2).text()
        assert panel.field is not None
    assert "separable" in panel.grids.value
    assert_same_state(before, model_state(model))


def test_explore_has_the_convolution_tab(shapes):
    app = explore(shapes)
    panel = app.panels["Convolution"]
    assert isinstance(panel, ConvolutionExplainer) and panel.session is app.session
    app.session.layer = "conv3"
    assert panel.trace.layer == "conv3"
    assert app.show("Convolution") is panel
    app.close()
    assert cw.ConvolutionExplainer is ConvolutionExplainer


def test_the_model_is_not_changed(shapes):
    before = model_state(shapes.model)
    panel = ConvolutionExplainer(shapes)
    for layer in ("conv2", "conv4"):
        panel.layer.value = layer
        click_unit(panel, 1, 1)
    assert_same_state(before, model_state(shapes.model))


# --- large inputs: the model passes run in the background ---------------------------------


@pytest.fixture(scope="module")
def large_model():
    """160x160 inputs: above the 128 px from which the passes go to the background."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((160, 160, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="b")(x)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs)


class HeldPasses:
    """``layer_input_output`` for the panel that waits, in the worker thread, until the
    test lets it go on: what the panel shows while a pass runs can be checked."""

    def __init__(self, monkeypatch, fail: Exception | None = None):
        self.go = threading.Event()
        self.layers: list[str] = []
        self.threads: list[str] = []
        self.fail = fail
        real = conv_module.layer_input_output

        def held(model, image, layer):
            self.layers.append(layer)
            self.threads.append(threading.current_thread().name)
            assert self.go.wait(60), "the test never let the pass go on"
            if self.fail is not None:
                raise self.fail
            return real(model, image, layer)

        monkeypatch.setattr(conv_module, "layer_input_output", held)


def test_on_a_large_input_the_pass_runs_in_the_background(large_model, monkeypatch):
    held = HeldPasses(monkeypatch)
    panel = ConvolutionExplainer(large_model)  # returns while the first pass is held
    assert panel.runner.running and panel.trace is None and panel.image.shape == (160, 160, 3)
    assert "working… reading a's input and output" in panel.status.value
    assert not panel.run_bar.stop_button.disabled
    assert panel.run_bar.progress.layout.display is None  # shown from the first pass on
    with pytest.raises(cw.CnnvizError, match=r"still being read.*panel\.wait"):
        panel.select(3, 3)
    click_unit(panel, 1, 1)  # a click meanwhile does nothing, and breaks nothing
    panel.channel.value = 2  # the panel stays usable: the trace will be channel 2's
    held.go.set()
    assert panel.wait(60) and not panel.runner.running
    assert held.threads == ["cnnviz job: read a"]  # the job's worker, not the constructor's
    assert panel.trace.layer == "a" and panel.trace.channel == 2
    out = cw.feature_maps(large_model, panel.image, "a").maps[..., 2]
    assert panel.position == tuple(int(v) for v in np.unravel_index(out.argmax(), out.shape))
    assert panel.run_bar.progress.bar_style == "success" and "a read in" in panel.status.value
    assert (
        panel.select(5, 7).text()
        == cw.convolution_at(large_model, panel.image, "a", 2, 5, 7).text()
    )
    panel.close()


def test_a_layer_picked_during_a_pass_is_read_next(large_model, monkeypatch):
    held = HeldPasses(monkeypatch)
    panel = ConvolutionExplainer(large_model)
    panel.layer.value = "b"  # while a's pass is held
    assert panel.session.layer == "b" and panel.trace is None
    held.go.set()
    assert panel.wait(60)
    assert held.layers == ["a", "b"]  # a's maps were not shown for b
    assert panel.trace.layer == "b" and panel.map_pixels.image.shape == (80, 80, 4)
    assert panel.messages.kind != "error" and panel.run_bar.progress.bar_style == "success"
    panel.close()


def test_stop_keeps_the_picture_and_a_failed_pass_is_a_message(large_model, monkeypatch):
    panel = ConvolutionExplainer(large_model)
    assert panel.wait(60) and panel.trace.layer == "a"
    shown = panel.map_pixels.sent.copy()
    held = HeldPasses(monkeypatch)
    panel.layer.value = "b"
    wait_until(lambda: held.layers == ["b"], 60, "b's pass")
    panel.run_bar.stop_button.click()  # during the pass: its maps are not shown
    held.go.set()
    assert panel.wait(60)
    assert panel.run_bar.progress.bar_style == "warning"
    assert "stopped: the picture shown is the previous one" in panel.status.value
    np.testing.assert_array_equal(panel.map_pixels.sent, shown)  # the picture stays
    assert panel.trace is None and panel.messages.kind != "error"
    assert "click the map or pick a channel, layer or image to read b again" in panel.status.value
    click_unit(panel, 1, 1)  # the way out the status names: b is read after all
    assert panel.wait(60) and panel.trace.layer == "b" and held.layers == ["b", "b"]
    panel.layer.value = "a"
    assert panel.wait(60) and panel.trace.layer == "a"
    held.fail = cw.CnnvizError("out of cheese")
    panel.new_shapes_image(4)
    assert panel.wait(60)
    assert panel.messages.kind == "error" and "out of cheese" in panel.messages.text
    assert panel.run_bar.progress.bar_style == "danger" and panel.trace is None
    held.fail = None
    panel.layer.value = "b"  # the kernel and the panel go on
    assert panel.wait(60) and panel.trace.layer == "b" and panel.messages.kind != "error"
    panel.close()


def test_explore_returns_before_the_convolution_tab_has_read_its_maps(large_model, monkeypatch):
    held = HeldPasses(monkeypatch)
    app = explore(large_model)
    panel = app.panels["Convolution"]
    assert panel.runner.running and panel.trace is None  # explore did not wait for it
    held.go.set()
    assert panel.wait(60) and panel.trace is not None
    app.close()


def test_it_opens_at_the_strongest_value_until_a_value_is_clicked(shapes):
    """The position explained is the channel's strongest value, also after the channel or
    the image changed elsewhere (a tour's Run All), until a value is clicked."""
    from cnnviz_widgets.session import Session

    session = Session(shapes, layer="conv1", channel=0)
    panel = ConvolutionExplainer(session)
    for channel in (3, 7, 12):
        session.channel = channel
        out = panel._maps[1][..., channel]
        assert panel.trace.value == pytest.approx(float(out.max()), abs=1e-6), channel
    panel.new_shapes_image(5)
    assert panel.trace.value == pytest.approx(float(panel._maps[1][..., 12].max()), abs=1e-6)
    panel.select(1, 2)
    session.channel = 4
    assert panel.position == (1, 2)  # clicked: kept
    # patch, kernel and products on one colour scale, with its legend
    t, k = panel.trace, panel._shown_channel()
    scale = max(float(np.abs(a[..., k]).max()) for a in (t.patch, t.kernel, t.products))
    legend = re.search(r'cnnviz-conv-legend".*?<span>(.*?)</span>.*?<span>(.*?)</span>',
                       panel.grids.value)  # fmt: skip
    assert legend and legend.group(2) == html.escape(f"{scale:.2f}")
    assert panel.grids.value.count("<table") == 3
    # the map to click comes first (it stays in view when the pictures wrap)
    assert panel.pictures.box.children[0].children[0].children[0] is panel.map_pixels.canvas
    panel.close()
