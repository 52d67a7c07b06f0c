"""convolution_at and receptive_field: the arithmetic of one feature-map value must give the
model's own output there, and the receptive field must hold every pixel with a gradient."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine.layers.convolution import layer_input_output, trace_from_maps

from .helpers import assert_same_state, model_state

TOL = dict(rtol=1e-4, atol=1e-5)


def model_output(model, image, layer) -> np.ndarray:
    """The layer's output for one image, from a plain Keras sub-model (no cnnviz reader)."""
    keras_model = model.model if isinstance(model, cw.LoadedModel) else model
    found = keras_model.get_layer(layer)
    sub = keras.Model(keras_model.inputs[0], found.output)
    return np.asarray(sub(image[None].astype(np.float32), training=False))[0]


def layer_input(model, image, layer) -> np.ndarray:
    keras_model = model.model if isinstance(model, cw.LoadedModel) else model
    sub = keras.Model(keras_model.inputs[0], keras_model.get_layer(layer).input)
    return np.asarray(sub(image[None].astype(np.float32), training=False))[0]


# The layer input read by an independent Keras sub-model (eager) and the one the engine
# reads (one traced graph) are computed by different kernels: with oneDNN on (AVX-512 CPUs)
# the traced graph runs fused convolutions that sum in another order, so the two readings
# differ in the last bits (seen: 6e-8 on values of 0.15, 1 to 3 float32 ulps after five
# layers). They must agree to 16 float32 epsilons of the map's largest value; a patch taken
# from a neighbouring position, channel or padding would differ by orders more. The patch
# must equal, bit for bit, the input map the trace was made from.
INPUT_ULPS = 16 * np.finfo(np.float32).eps


def check_trace(
    t: cw.ConvolutionTrace, expected: float, inputs: np.ndarray, source: np.ndarray
) -> None:
    """Every field agrees with the others, the input read independently and the output.

    ``source`` is the layer input the trace was made from (the engine's reading): the patch
    is exactly its values; ``inputs``, read independently, agrees within ``INPUT_ULPS``."""
    np.testing.assert_allclose(t.value, expected, **TOL)
    np.testing.assert_allclose(t.model_value, expected, **TOL)
    np.testing.assert_array_equal(t.products, t.patch * t.kernel)
    np.testing.assert_allclose(t.total, t.products.sum(), rtol=1e-5, atol=1e-5)
    assert t.pre_activation == pytest.approx(t.total + t.bias)
    kh, kw = t.kernel.shape[:2]
    assert t.patch.shape == t.kernel.shape and t.padded.shape == (kh, kw)
    h, w, _ = inputs.shape
    top, left, bottom, right = t.input_box
    assert (bottom - top, right - left) == (
        (kh - 1) * t.dilation[0] + 1,
        (kw - 1) * t.dilation[1] + 1,
    )
    for i, r in enumerate(t.input_rows):
        for j, c in enumerate(t.input_cols):
            outside = not (0 <= r < h and 0 <= c < w)
            assert t.padded[i, j] == outside
            if outside:
                assert not t.patch[i, j].any()
            else:
                np.testing.assert_array_equal(t.patch[i, j], source[r, c, t.input_channels])
                np.testing.assert_allclose(
                    t.patch[i, j],
                    inputs[r, c, t.input_channels],
                    rtol=0,
                    atol=INPUT_ULPS * np.abs(inputs).max(),
                )


@pytest.fixture(scope="module")
def circle():
    return cw.sample_image("circle", seed=1)


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3", "conv4"])
def test_shapes_model_values_match_the_model(shapes, circle, layer):
    out = model_output(shapes, circle, layer)
    inputs = layer_input(shapes, circle, layer)
    source, _ = layer_input_output(shapes, circle, layer)  # what convolution_at reads
    h, w, n = out.shape
    strongest = np.unravel_index(np.argmax(out), out.shape)
    positions = [
        (0, 0, 0),
        (h - 1, w - 1, n - 1),
        (0, w - 1, 3),
        (h - 1, 0, 5),
        (h // 2, w // 3, 7),
        tuple(int(v) for v in strongest),
    ]
    for y, x, c in positions:
        t = cw.convolution_at(shapes, circle, layer, c, y, x)
        check_trace(t, out[y, x, c], inputs, source)
        assert t.activation == "relu" and t.kind == "conv2d" and t.use_bias
        assert t.layer == layer and t.position == (y, x) and t.channel == c
    # the strongest value is a real sum, not a relu zero: the arithmetic matters there
    assert out[strongest] > 0.5


def test_the_arithmetic_line(shapes, circle):
    out = model_output(shapes, circle, "conv2")
    y, x, c = (int(v) for v in np.unravel_index(np.argmax(out), out.shape))
    t = cw.convolution_at(shapes, circle, "conv2", c, y, x)

    def f(v):
        return f"{v:.2f}".replace("-", "−")

    assert t.text() == (
        f"sum {f(t.total)} + bias {f(t.bias)} = {f(t.pre_activation)} → relu → {f(t.value)}"
    )
    # a negative pre-activation: relu makes it zero, and the line says so
    neg = np.argwhere(out[..., c] == 0)
    if len(neg):
        y, x = (int(v) for v in neg[0])
        t = cw.convolution_at(shapes, circle, "conv2", c, y, x)
        assert t.pre_activation <= 0 and t.value == 0
        assert t.text().endswith("→ relu → 0.00")
        assert "−" in t.text() and "-" not in t.text()


def odd_model() -> keras.Model:
    """Strided, dilated, even and odd kernels, both paddings, depthwise, separable,
    grouped, other activations and no bias, on an odd-sized input; random weights."""
    keras.utils.set_random_seed(3)
    x = keras.Input((15, 17, 3))
    y = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="strided")(x)
    y = keras.layers.Conv2D(6, 4, padding="same", activation="tanh", name="even_same")(y)
    y = keras.layers.Conv2D(
        4, (3, 2), dilation_rate=2, use_bias=False, activation="sigmoid", name="dilated"
    )(y)
    y = keras.layers.DepthwiseConv2D(
        3, depth_multiplier=2, padding="same", activation="elu", name="depthwise"
    )(y)
    y = keras.layers.DepthwiseConv2D(2, strides=2, padding="same", name="depth_even")(y)
    y = keras.layers.SeparableConv2D(
        5, 3, padding="same", depth_multiplier=2, activation="gelu", name="separable"
    )(y)
    y = keras.layers.Conv2D(4, 2, strides=2, padding="valid", groups=1, name="even_valid")(y)
    z = keras.layers.Conv2D(6, 1, name="widen")(y)
    z = keras.layers.Conv2D(4, 3, padding="same", groups=2, name="grouped")(z)
    z = keras.layers.Conv2D(3, 3, padding="same", activation="softmax", name="softmax")(z)
    return keras.Model(x, z, name="odd")


@pytest.fixture(scope="module")
def odd():
    return odd_model()


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).uniform(0, 1, (15, 17, 3)).astype(np.float32)


ODD_LAYERS = [
    "strided",
    "even_same",
    "dilated",
    "depthwise",
    "depth_even",
    "separable",
    "even_valid",
    "grouped",
    "softmax",
]


@pytest.mark.parametrize("layer", ODD_LAYERS)
def test_every_position_of_every_kind_of_convolution(odd, noise, layer):
    before = model_state(odd)
    out = model_output(odd, noise, layer)
    inputs = layer_input(odd, noise, layer)
    read_in, read_out = layer_input_output(odd, noise, layer)
    np.testing.assert_allclose(read_in, inputs, **TOL)
    h, w, n = out.shape
    # every position the padding reaches (two from each edge: an even kernel pads two
    # after), the middle, and the first, a middle and the last channel
    rows = sorted({0, 1, h // 2, h - 2, h - 1} & set(range(h)))
    cols = sorted({0, 1, w // 2, w - 2, w - 1} & set(range(w)))
    for y in rows:
        for x in cols:
            for c in sorted({0, n // 2, n - 1}):
                t = trace_from_maps(odd, layer, read_in, read_out, c, y, x)
                check_trace(t, out[y, x, c], inputs, read_in)
    # and once through the public call
    t = cw.convolution_at(odd, noise, layer, n - 1, h - 1, 0)
    check_trace(t, out[h - 1, 0, n - 1], inputs, read_in)
    assert_same_state(before, model_state(odd))


def test_what_each_kind_reports(odd, noise):
    t = cw.convolution_at(odd, noise, "strided", 0, 1, 1)
    assert t.strides == (2, 2) and t.padding == "same" and t.input_box == (1, 1, 4, 4)
    assert t.activation == "linear" and t.text().endswith("(no activation)")
    t = cw.convolution_at(odd, noise, "dilated", 2, 0, 0)
    assert t.dilation == (2, 2) and t.padding == "valid"
    assert t.input_box == (0, 0, 5, 3) and not t.padded.any()
    assert list(t.input_rows) == [0, 2, 4] and list(t.input_cols) == [0, 2]
    assert not t.use_bias and t.bias == 0.0 and t.activation == "sigmoid"
    assert "(no bias)" in t.text() and "→ sigmoid →" in t.text()
    # an even kernel with "same" padding: TensorFlow pads 1 before and 2 after
    t = cw.convolution_at(odd, noise, "even_same", 0, 0, 0)
    assert t.input_box == (-1, -1, 3, 3)
    assert t.padded[0].all() and t.padded[:, 0].all() and not t.padded[1:, 1:].any()
    # depthwise: output channel 5 is input channel 2's second filter (multiplier 2)
    t = cw.convolution_at(odd, noise, "depthwise", 5, 2, 2)
    assert t.kind == "depthwise" and list(t.input_channels) == [2] and t.kernel.shape == (3, 3, 1)
    assert t.activation == "elu"
    t = cw.convolution_at(odd, noise, "separable", 4, 1, 1)
    assert t.kind == "separable" and t.kernel.shape == (3, 3, 8)
    # grouped: channel 3 is in the second group, which sees input channels 3..5
    t = cw.convolution_at(odd, noise, "grouped", 3, 0, 0)
    assert list(t.input_channels) == [3, 4, 5]
    t = cw.convolution_at(odd, noise, "softmax", 1, 0, 0)
    assert "softmax over the channels" in t.text()


def test_a_convolution_inside_a_nested_model(noise):
    keras.utils.set_random_seed(5)
    inner_in = keras.Input((15, 17, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c1")(inner_in)
    h = keras.layers.Conv2D(5, 3, dilation_rate=2, padding="same", name="c2")(h)
    base = keras.Model(inner_in, h, name="base")
    x = keras.Input((15, 17, 3))
    y = keras.layers.Rescaling(2.0, offset=-1.0, name="scale")(x)
    y = base(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    outer = keras.Model(x, keras.layers.Dense(3)(y))
    # a Rescaling first layer makes the engine guess 0..255 inputs: say they are [0, 1]
    outer = cw.load_model(outer, preprocessing="unit")
    flat_in = keras.Model(base.inputs[0], base.get_layer("c2").input)
    flat_out = keras.Model(base.inputs[0], base.get_layer("c2").output)
    scaled = noise[None] * 2.0 - 1.0
    inputs = np.asarray(flat_in(scaled))[0]
    out = np.asarray(flat_out(scaled))[0]
    source, _ = layer_input_output(outer, noise, "base/c2")  # what convolution_at reads
    for y_, x_, c in [(0, 0, 0), (7, 8, 4), (3, 5, 2)]:
        t = cw.convolution_at(outer, noise, "base/c2", c, y_, x_)
        check_trace(t, out[y_, x_, c], inputs, source)
    rf = cw.receptive_field(outer, "base/c2", 3, 4)
    # c2 sees rows 1..5 of c1 (dilation 2), c1 row r sees image rows 2r-1..2r+1
    assert rf.box == (1, 3, 12, 14) and rf.full_box == rf.box


def test_clear_messages(shapes, circle):
    with pytest.raises(cw.CnnvizError, match=r"'pool1' is a MaxPooling2D.*conv1, conv2"):
        cw.convolution_at(shapes, circle, "pool1", 0, 0, 0)
    with pytest.raises(cw.CnnvizError, match="'predictions' is a Dense"):
        cw.convolution_at(shapes, circle, "predictions", 0, 0, 0)
    with pytest.raises(cw.CnnvizError, match=r"channel 16 .* 16 output channels.*0\.\.15"):
        cw.convolution_at(shapes, circle, "conv1", 16, 0, 0)
    with pytest.raises(cw.CnnvizError, match=r"channel -1 .*0\.\.63"):
        cw.convolution_at(shapes, circle, "conv4", -1, 0, 0)
    with pytest.raises(cw.CnnvizError, match=r"\(y=64, x=0\) is outside the 64×64.*0\.\.63"):
        cw.convolution_at(shapes, circle, "conv1", 0, 64, 0)
    with pytest.raises(cw.CnnvizError, match=r"\(y=0, x=-1\) is outside the 8×8.*x in 0\.\.7"):
        cw.convolution_at(shapes, circle, "conv4", 0, 0, -1)
    with pytest.raises(cw.CnnvizError, match="y must be an int, got float"):
        cw.convolution_at(shapes, circle, "conv1", 0, 1.5, 0)
    with pytest.raises(cw.CnnvizError, match="channel must be an int, got bool"):
        cw.convolution_at(shapes, circle, "conv1", True, 1, 0)
    with pytest.raises(cw.LayerNotFoundError, match="conv9"):
        cw.convolution_at(shapes, circle, "conv9", 0, 0, 0)
    with pytest.raises(cw.CnnvizError, match="batch of 2"):
        cw.convolution_at(shapes, np.stack([circle, circle]), "conv1", 0, 0, 0)


# ------------------------------------------------------------------------ receptive field
def gradient_support(model, layer, y, x, image) -> np.ndarray:
    """Where the input image has a nonzero gradient of unit (y, x) (summed over channels
    of the unit and the image) of ``layer``."""
    keras_model = model.model if isinstance(model, cw.LoadedModel) else model
    sub = keras.Model(keras_model.inputs[0], keras_model.get_layer(layer).output)
    img = tf.constant(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(img)
        out = sub(img, training=False)
        # a random mix of the unit's channels: no channel is left out by chance
        weights = np.random.default_rng(0).uniform(0.5, 1.5, out.shape[-1]).astype(np.float32)
        score = tf.reduce_sum(out[0, y, x] * weights)
    grad = tape.gradient(score, img).numpy()[0]
    return np.abs(grad).sum(axis=-1) > 0


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2", "conv3", "pool3", "conv4"])
def test_gradients_of_the_shapes_model_stay_inside_the_receptive_field(shapes, circle, layer):
    h, w = shapes.model.get_layer(layer).output.shape[1:3]
    for y, x in [(0, 0), (h - 1, w - 1), (h // 2, w // 3), (1, w - 2)]:
        rf = cw.receptive_field(shapes, layer, y, x)
        support = gradient_support(shapes, layer, y, x, circle)
        if not support.any():
            continue  # a dead unit: nothing to compare
        inside = np.zeros_like(support)
        inside[rf.slices] = True
        assert not (support & ~inside).any(), (layer, y, x, rf.box, bounding_box(support))
    assert cw.receptive_field(shapes, "conv4", 0, 0).size == (42, 42)


def dense_model() -> keras.Model:
    """No zero weights, linear activations, average pooling: every pixel of the receptive
    field has a gradient, so the field must be the gradient's bounding box exactly."""
    keras.utils.set_random_seed(11)
    init = keras.initializers.RandomUniform(0.1, 1.0)  # positive: no cancellation
    conv = dict(kernel_initializer=init)
    x = keras.Input((40, 37, 2))
    y = keras.layers.ZeroPadding2D(((2, 1), (0, 3)), name="zpad")(x)
    y = keras.layers.Conv2D(3, 3, strides=2, padding="same", name="a", **conv)(y)
    y = keras.layers.AveragePooling2D(2, strides=1, name="avg")(y)
    left = keras.layers.Conv2D(3, (2, 4), dilation_rate=2, padding="same", name="b1", **conv)(y)
    right = keras.layers.Conv2D(3, 5, padding="valid", name="b2", **conv)(y)
    right = keras.layers.ZeroPadding2D(2, name="b2pad")(right)
    y = keras.layers.Add(name="add")([left, right])
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.DepthwiseConv2D(
        3, strides=2, padding="same", name="dw", **dict(depthwise_initializer=init)
    )(y)
    y = keras.layers.Cropping2D(((1, 0), (0, 1)), name="crop")(y)
    y = keras.layers.UpSampling2D(2, name="up")(y)
    y = keras.layers.Conv2D(2, 2, padding="same", name="last", **conv)(y)
    return keras.Model(x, y)


def test_the_receptive_field_is_the_gradients_bounding_box():
    model = dense_model()
    image = np.random.default_rng(2).uniform(0.2, 1.0, (40, 37, 2)).astype(np.float32)
    checked = 0
    for layer in ["a", "avg", "b1", "b2", "add", "dw", "crop", "up", "last"]:
        h, w = model.get_layer(layer).output.shape[1:3]
        for y, x in {(0, 0), (h - 1, w - 1), (h // 2, w // 2), (0, w - 1), (h - 1, 1)}:
            rf = cw.receptive_field(model, layer, y, x)
            support = gradient_support(model, layer, y, x, image)
            top, left, bottom, right = rf.box
            if bottom <= top or right <= left:  # the unit sees only the zero padding
                assert not support.any(), (layer, y, x, rf)
                continue
            assert bounding_box(support) == rf.box, (layer, y, x, rf)
            # and the exact rows and columns, gaps of the dilation included
            np.testing.assert_array_equal(np.flatnonzero(support.any(axis=1)), rf.rows)
            np.testing.assert_array_equal(np.flatnonzero(support.any(axis=0)), rf.cols)
            checked += 1
    assert checked > 30


def test_receptive_field_of_conv1_is_its_input_box(shapes, circle):
    for y, x in [(0, 0), (30, 63), (63, 63)]:
        rf = cw.receptive_field(shapes, "conv1", y, x)
        t = cw.convolution_at(shapes, circle, "conv1", 0, y, x)
        assert rf.full_box == t.input_box and rf.size == (7, 7)


def test_receptive_field_messages(shapes):
    with pytest.raises(cw.CnnvizError, match=r"'gap' outputs \(None, 64\)"):
        cw.receptive_field(shapes, "gap", 0, 0)
    with pytest.raises(cw.CnnvizError, match=r"outside the 16×16 output of 'conv3'.*0\.\.15"):
        cw.receptive_field(shapes, "conv3", 16, 0)
    lam = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Lambda(lambda t: t * 2), keras.layers.Conv2D(1, 3)]
    )
    with pytest.raises(cw.CnnvizError, match=r"through layer 'lambda.*Lambda"):
        cw.receptive_field(lam, -1, 0, 0)
