"""The exercises' self-checks: each accepts the right answer (computed here independently of
``cw.classroom``), rejects named plausible wrong answers with a hint about that slip, and
answers garbage with a hint instead of a traceback."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import classroom as C

# what the exercise notebooks ask (scripts/make_exercises.py)
IMAGE = {"name": "cross", "seed": 3}
UNIT_2A = (10, 36, 28)  # channel, y, x: before the activation
UNITS_2B = ((7, 8, 9), 24, 40)  # after the activation: filters at one position, sums of
# both signs (relu matters, and no answer is all zeros)
UNIT_2C = (2, 0, 0)  # at the corner: zero padding
GARBAGE = [
    "abc",
    "3",
    3.5,
    [1, 2],
    np.zeros((4, 4)),
    {},
    object(),
    float("nan"),
    complex(1, 2),
    -1,
    True,
]


def conv1_output(model, images):
    sub = keras.Model(model.model.inputs[0], model.model.get_layer("conv1").output)
    return np.asarray(sub(np.asarray(images, np.float32)))


def assert_hint(result, *words):
    assert isinstance(result, C.CheckResult)
    assert not result.passed and not bool(result), str(result)
    assert result.mark in ("✗", "…")
    text = result.message.lower()  # the hint itself, not the task's title
    for word in words:
        assert word.lower() in text, (word, str(result))


# ---------------------------------------------------------------------------- results
def test_a_result_shows_itself_in_a_notebook_and_in_a_script():
    right = C.CheckResult("Task", True, "well done")
    hint = C.CheckResult("Task", False, "look <here>")
    empty = C.CheckResult("Task", False, "answer it", answered=False)
    assert str(right).startswith("✓ Task") and bool(right)
    assert str(hint).startswith("✗ Task") and "hint" in str(hint) and not hint
    assert str(empty).startswith("…")
    assert 'data-check="pass"' in right._repr_html_() and "#1a7f37" in right._repr_html_()
    assert 'data-check="hint"' in hint._repr_html_() and "#b35900" in hint._repr_html_()
    assert "&lt;here&gt;" in hint._repr_html_()  # the message is escaped
    assert 'data-check="empty"' in empty._repr_html_()


# ----------------------------------------------------------------- 1. vertical-edge filter
def edge_filter_model(kernels: np.ndarray) -> cw.LoadedModel:
    """A one-layer model whose conv1 kernels are given (7, 7, 3, n), zero bias."""
    inputs = keras.Input((64, 64, 3))
    conv = keras.layers.Conv2D(
        kernels.shape[-1], 7, padding="same", activation="relu", name="conv1"
    )
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([kernels.astype(np.float32), np.zeros(kernels.shape[-1], np.float32)])
    return cw.load_model(model, preprocessing="unit")


def test_edge_check_accepts_either_of_two_tied_filters_and_names_the_wrong_kinds():
    step = np.zeros((7, 7))
    step[:, :3], step[:, 4:] = -1.0, 1.0  # dark left, light right: a vertical-edge kernel
    kernels = np.zeros((7, 7, 3, 5))
    kernels[..., 0] = step[..., None] / 3
    kernels[..., 1] = step[..., None] / 3  # the same kernel: a tie
    kernels[..., 2] = step.T[..., None] / 3  # a horizontal-edge kernel
    kernels[..., 3] = 0.0  # a dead filter
    kernels[..., 4] = step[..., None] / 9  # vertical, but a third as strong
    model = edge_filter_model(kernels)
    assert C.check_vertical_edge_filter(0, model)
    assert C.check_vertical_edge_filter(np.int64(1), model)  # the tie counts too
    assert C.check_vertical_edge_filter([1], model)
    assert_hint(C.check_vertical_edge_filter(2, model), "horizontal")
    assert_hint(C.check_vertical_edge_filter(3, model), "hardly")
    assert_hint(C.check_vertical_edge_filter(4, model), "%")
    assert_hint(C.check_vertical_edge_filter(5, model), "0 … 4")


def test_edge_check_on_the_embedded_model(shapes):
    # the truth, measured here with a sub-model: activation on the edge, either polarity
    size = 64
    images = []
    for vertical in (True, False):
        for flip in (False, True):
            image = np.full((size, size, 3), 0.2, np.float32)
            if vertical:
                image[:, 32:] = 0.8
            else:
                image[32:] = 0.8
            images.append(1.0 - image if flip else image)
    maps = conv1_output(shapes, images)
    v = maps[:2, 16:48, 28:36].max(axis=(0, 1, 2))
    h = maps[2:, 28:36, 16:48].max(axis=(0, 1, 2))
    preference = v - h
    solution = int(preference.argmax())
    assert C.check_vertical_edge_filter(solution, shapes)
    # plausible wrong answers: the most horizontal filter, the weakest live one
    most_horizontal = int((h - v).argmax())
    assert_hint(C.check_vertical_edge_filter(most_horizontal, shapes), "horizontal")
    live = np.flatnonzero((v > 0) & (preference > 0))
    weakest = int(live[preference[live].argmin()])
    assert preference[weakest] < 0.85 * preference.max()
    assert_hint(C.check_vertical_edge_filter(weakest, shapes))


@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
def test_edge_check_survives_garbage(shapes, garbage):
    assert_hint(C.check_vertical_edge_filter(garbage, shapes))


def test_no_answer_yet_is_not_a_wrong_answer(shapes):
    result = C.check_vertical_edge_filter(None, shapes)
    assert not result and not result.answered and "no answer yet" in str(result)


def test_a_bad_model_or_layer_gets_a_message_not_a_traceback(shapes):
    assert_hint(C.check_vertical_edge_filter(1, "no-such-model"), "could not run")
    assert_hint(C.check_vertical_edge_filter(1, shapes, layer="pool1"), "conv2d")
    assert_hint(C.check_vertical_edge_filter(1, shapes, layer="conv9"), "could not run")


# ------------------------------------------------------------------ 2. one convolution
@pytest.fixture(scope="module")
def cross():
    return cw.sample_image(**IMAGE)


def by_hand(model, image, channel, y, x, flip=False, bias=True, corner=False):
    """conv1's sum + bias at (y, x), in numpy, with zero 'same' padding of 3."""
    kernel, b = model.model.get_layer("conv1").get_weights()
    k = kernel[..., channel].astype(np.float64)
    if flip:
        k = k[::-1, ::-1]
    if corner:  # the slip: the window starts at (y, x) instead of being centred on it
        window = image[y : y + 7, x : x + 7]
    else:
        window = np.pad(image, ((3, 3), (3, 3), (0, 0)))[y : y + 7, x : x + 7]
    return float((window * k).sum() + (b[channel] if bias else 0.0))


def test_the_exercise_units_still_teach_what_they_say(shapes, cross):
    """Task 2b's unit has a negative sum (relu matters) and every slip the hints name gives
    a value the check can tell from the truth; with other weights, pick other units."""
    out = conv1_output(shapes, cross[None])[0]
    channels, y2, x2 = UNITS_2B
    units_2b = [(c, y2, x2) for c in channels]
    for channel, y, x in (UNIT_2A, *units_2b, UNIT_2C):
        z = by_hand(shapes, cross, channel, y, x)
        assert np.isclose(max(z, 0.0), out[y, x, channel], atol=1e-4)  # the model agrees
        for slip in (dict(flip=True), dict(bias=False)):
            # three times the check's rounding tolerance
            assert abs(by_hand(shapes, cross, channel, y, x, **slip) - z) > 0.02, slip
    sums = [by_hand(shapes, cross, *unit) for unit in units_2b]
    assert min(sums) < -0.05 and max(sums) > 0.05
    assert by_hand(shapes, cross, *UNIT_2A) > 0.05
    # no answer can be guessed: none is 0, none is another task's answer
    answers = [by_hand(shapes, cross, *UNIT_2A), by_hand(shapes, cross, *UNIT_2C)]
    answers += [max(z, 0.0) for z in sums if z > 0]
    assert all(abs(a) > 0.05 for a in answers)
    assert len({round(a, 2) for a in answers}) == len(answers)


def test_pre_activation_check(shapes, cross):
    c, y, x = UNIT_2A
    z = by_hand(shapes, cross, c, y, x)
    assert C.check_pre_activation(z, shapes, cross, c, y, x)
    assert C.check_pre_activation(round(z, 2), shapes, cross, c, y, x)  # rounded is fine
    assert C.check_pre_activation(np.float32(z), shapes, cross, channel=c, y=y, x=x)
    no_bias = by_hand(shapes, cross, c, y, x, bias=False)
    assert_hint(C.check_pre_activation(no_bias, shapes, cross, c, y, x), "adds one more")
    flipped = by_hand(shapes, cross, c, y, x, flip=True)
    assert_hint(C.check_pre_activation(flipped, shapes, cross, c, y, x), "flip")
    assert_hint(C.check_pre_activation(-z, shapes, cross, c, y, x), "sign")
    products = np.full(3, z / 3)  # forgot to add up
    assert_hint(C.check_pre_activation(products, shapes, cross, c, y, x), "add")


def test_output_vector_check(shapes, cross):
    channels, y, x = UNITS_2B
    sums = [by_hand(shapes, cross, c, y, x) for c in channels]
    right = [max(z, 0.0) for z in sums]
    assert C.check_output_vector(right, shapes, cross, channels, y, x)
    assert C.check_output_vector(np.round(right, 2), shapes, cross, channels=channels, y=y, x=x)
    negative = channels[int(np.argmin(sums))]
    result = C.check_output_vector(sums, shapes, cross, channels, y, x)  # relu forgotten
    assert_hint(result, "before the activation")
    assert f"filter {negative}" in result.message
    assert_hint(C.check_output_vector([0.0] * len(channels), shapes, cross, channels, y, x))
    assert_hint(C.check_output_vector(right[::-1], shapes, cross, channels, y, x))
    assert_hint(C.check_output_vector(right[:2], shapes, cross, channels, y, x), "3 numbers")
    assert_hint(C.check_output_vector(sum(right), shapes, cross, channels, y, x), "a list")
    empty = C.check_output_vector(None, shapes, cross, channels, y, x)
    assert not empty and not empty.answered


@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
def test_output_vector_check_survives_garbage(shapes, cross, garbage):
    assert_hint(C.check_output_vector(garbage, shapes, cross, *UNITS_2B))


def test_value_check_wants_the_activation(shapes, cross):
    c, y, x = (8, 24, 40)  # a unit whose sum is negative
    z = by_hand(shapes, cross, c, y, x)
    assert C.check_convolution_value(max(z, 0.0), shapes, cross, c, y, x)
    assert_hint(C.check_convolution_value(z, shapes, cross, c, y, x), "before the activation")
    assert_hint(
        C.check_convolution_value(max(by_hand(shapes, cross, c, y, x, flip=True), 0), shapes,
                                  cross, c, y, x)
    )  # fmt: skip


def test_corner_check_wants_zero_padding(shapes, cross):
    c, y, x = UNIT_2C
    assert C.check_pre_activation(by_hand(shapes, cross, c, y, x), shapes, cross, c, y, x)
    slipped = by_hand(shapes, cross, c, y, x, corner=True)
    assert_hint(C.check_pre_activation(slipped, shapes, cross, c, y, x), "centred")
    edge = np.pad(cross, ((3, 3), (3, 3), (0, 0)), mode="edge")[:7, :7]
    kernel, b = shapes.model.get_layer("conv1").get_weights()
    repeated = float((edge * kernel[..., c]).sum() + b[c])
    assert_hint(C.check_pre_activation(repeated, shapes, cross, c, y, x), "zeros")


@pytest.mark.parametrize("strides, dilation", [(2, 1), (1, 2)])
def test_pre_activation_on_strided_and_dilated_convolutions(strides, dilation):
    keras.utils.set_random_seed(1)
    inputs = keras.Input((15, 15, 2))
    conv = keras.layers.Conv2D(
        3,
        3,
        strides=strides,
        dilation_rate=dilation,
        padding="same",
        activation="relu",
        name="conv1",
    )
    model = cw.load_model(keras.Model(inputs, conv(inputs)), preprocessing="unit")
    image = np.random.default_rng(0).random((15, 15, 2)).astype(np.float32)
    kernel, bias = conv.get_weights()
    out = np.asarray(model.model(image[None]))[0]
    # TensorFlow's "same": the total padding, the smaller half on top / left
    size = out.shape[0]
    pad = max((size - 1) * strides + (3 - 1) * dilation + 1 - 15, 0)
    padded = np.pad(image, ((pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    for y, x in [(0, 0), (size - 1, size - 1), (size // 2, 1)]:
        rows = y * strides + dilation * np.arange(3)
        cols = x * strides + dilation * np.arange(3)
        z = float((padded[np.ix_(rows, cols)] * kernel[..., 1]).sum() + bias[1])
        assert np.isclose(max(z, 0), out[y, x, 1], atol=1e-5)
        assert C.check_pre_activation(z, model, image, 1, y, x), (y, x)
        assert C.check_convolution_value(max(z, 0), model, image, 1, y, x)


@pytest.mark.parametrize("garbage", [*GARBAGE, np.array([[1.0]]) * np.inf], ids=repr)
def test_convolution_checks_survive_garbage(shapes, cross, garbage):
    assert_hint(C.check_pre_activation(garbage, shapes, cross, *UNIT_2A))
    assert_hint(C.check_convolution_value(garbage, shapes, cross, *UNIT_2A))


def test_convolution_check_with_a_wrong_task_says_so(shapes, cross):
    assert_hint(C.check_pre_activation(1.0, shapes, cross, 99, 0, 0), "outside")
    assert_hint(C.check_pre_activation(1.0, shapes, cross[:10], 0, 0, 0), "input shape")
    assert_hint(C.check_pre_activation(1.0, shapes, "cat.png", 0, 0, 0), "could not run")


# ---------------------------------------------------------------------- 3. receptive field
def window_by_arithmetic(model, layer_names, y, x, size=64):
    """Input rows and columns under unit (y, x), walking the layers' configs downwards."""
    out = []
    for first in (y, x):
        last = first
        for name in reversed(layer_names):
            config = model.model.get_layer(name).get_config()
            k = (config.get("kernel_size") or config.get("pool_size"))[0]
            s = config["strides"][0]
            p = (k - 1) // 2 if config["padding"] == "same" else 0
            first, last = first * s - p, last * s - p + k - 1
        out.append(range(max(first, 0), min(last, size - 1) + 1))
    return tuple(out)


BELOW_CONV3 = ["conv1", "pool1", "conv2", "pool2", "conv3"]


@pytest.mark.parametrize("unit", [(5, 6), (0, 0), (15, 15), (8, 3)])
def test_the_gradient_truth_is_the_arithmetic_window(shapes, unit):
    rows, cols = window_by_arithmetic(shapes, BELOW_CONV3, *unit)
    expected = np.zeros((64, 64), bool)
    expected[np.ix_(rows, cols)] = True
    np.testing.assert_array_equal(C.receptive_field_mask(shapes, "conv3", *unit), expected)


def test_receptive_field_check(shapes):
    rows, cols = window_by_arithmetic(shapes, BELOW_CONV3, 5, 6)
    assert (rows, cols) == (range(11, 33), range(15, 37))
    assert C.check_receptive_field((rows, cols), shapes, "conv3", 5, 6)
    assert C.check_receptive_field([slice(11, 33), slice(15, 37)], shapes, "conv3", 5, 6)
    assert C.check_receptive_field((list(rows), np.array(cols)), shapes, "conv3", 5, 6)
    mask = np.zeros((64, 64, 3), np.uint8)
    mask[11:33, 15:37] = 1
    assert C.check_receptive_field(mask, shapes, "conv3", 5, 6)
    corner = window_by_arithmetic(shapes, BELOW_CONV3, 0, 0)
    assert C.check_receptive_field(corner, shapes, "conv3", 0, 0)
    # plausible wrong answers, each with its hint
    only_conv1 = (range(17, 24), range(21, 28))  # one 7x7 kernel around the centre
    assert_hint(C.check_receptive_field(only_conv1, shapes, "conv3", 5, 6), "too small")
    one_short = (range(12, 33), range(15, 37))  # off by one at the top
    assert_hint(C.check_receptive_field(one_short, shapes, "conv3", 5, 6), "top (too short)")
    shifted = (range(11, 33), range(14, 36))  # the centre one column off
    assert_hint(C.check_receptive_field(shifted, shapes, "conv3", 5, 6), "shifted")
    unclipped = (range(-9, 13), range(-9, 13))  # not stopped at the border
    assert_hint(C.check_receptive_field(unclipped, shapes, "conv3", 0, 0), "border")
    holes = mask[..., 0].astype(bool)
    holes[20, 20] = holes[25, 30] = False  # one image's gradient: a ReLU was off there
    assert_hint(C.check_receptive_field(holes, shapes, "conv3", 5, 6), "holes")


@pytest.mark.parametrize(
    "garbage", [*GARBAGE, (range(3), "abc"), (1.5, 2.5), np.zeros((10, 10)), ()], ids=repr
)
def test_receptive_field_check_survives_garbage(shapes, garbage):
    assert_hint(C.check_receptive_field(garbage, shapes, "conv3", 5, 6))


# ------------------------------------------------------------------- 4. two models
@pytest.fixture(scope="module")
def two_models():
    return {"robust": cw.load_model("shapes-robust"), "standard": cw.load_model("shapes-standard")}


def roughness(model):
    k = model.model.get_layer("conv1").get_weights()[0].astype(np.float64)
    jumps = ((np.diff(k, axis=0) ** 2).sum(axis=(0, 1, 2))) + (
        (np.diff(k, axis=1) ** 2).sum(axis=(0, 1, 2))
    )
    energy = (k**2).sum(axis=(0, 1, 2))
    live = energy > 1e-6 * energy.max()
    return float((jumps[live] / energy[live]).mean())


def test_smoother_filters_check(two_models):
    rough = {name: roughness(m) for name, m in two_models.items()}
    solution = min(rough, key=rough.get)
    other = max(rough, key=rough.get)
    assert abs(rough[solution] - rough[other]) > 0.02  # the weights do differ
    assert C.check_smoother_filters(solution, two_models)
    assert C.check_smoother_filters(f"shapes-{solution}", two_models)
    assert C.check_smoother_filters(two_models[solution], two_models)  # the model itself
    assert_hint(C.check_smoother_filters(other, two_models), "neighbouring taps")
    assert_hint(C.check_smoother_filters(two_models[other], two_models))
    assert_hint(C.check_smoother_filters("both", two_models), "'robust', 'standard'")
    assert np.isclose(C.filter_roughness(two_models[solution]), rough[solution])


def test_two_equal_models_are_too_close_to_call(two_models):
    same = {"a": two_models["robust"], "b": two_models["robust"]}
    assert C.check_smoother_filters("a", same) and C.check_smoother_filters("b", same)
    assert "too close to call" in str(C.check_smoother_filters("a", same))


@pytest.mark.parametrize("garbage", [*GARBAGE, "", "shapes"], ids=repr)
def test_model_checks_survive_garbage(two_models, garbage):
    assert_hint(C.check_smoother_filters(garbage, two_models))
    assert_hint(C.check_object_saliency(garbage, two_models))  # unread before measuring


def test_model_checks_need_the_models_as_a_dict(two_models):
    assert_hint(C.check_smoother_filters("robust", list(two_models.values())), "dict")


@pytest.mark.slow
def test_object_saliency_check(two_models):
    batch = cw.generate_shapes(18, seed=5)
    share = {}
    for name, m in two_models.items():
        shares = []
        for image, mask, label in zip(batch.images, batch.masks, batch.labels):
            grad = np.abs(cw.saliency(m, image, int(label)).raw).max(axis=-1)
            shares.append(grad[mask].sum() / grad.sum())
        share[name] = float(np.mean(shares))
    solution = max(share, key=share.get)
    other = min(share, key=share.get)
    assert C.check_object_saliency(solution, two_models)
    if share[solution] - share[other] > 0.02:
        assert_hint(C.check_object_saliency(other, two_models), "mask")
    assert_hint(C.check_object_saliency("nobody", two_models))
    assert np.isclose(C.object_saliency_share(two_models[solution]), share[solution])
