"""Activation maximization: quality on the embedded model, compiled-step behaviour, errors."""

import threading
import warnings
from itertools import zip_longest

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.optvis import objectives as objectives_module
from cnnviz_widgets.engine.optvis import step

from .helpers import BF16_QUALITY, assert_same_state, model_state


def _predict(model, images_uint8):
    return model.model.predict(images_uint8.astype("float32") / 255.0, verbose=0)


# the quality checks hold in bfloat16 too (the model's passes on its reduced-precision
# twin; scored here by the float32 model). On a CPU without bf16 instructions this runs
# emulated, about 4x slower than float32, hence slow.
PRECISIONS = ["float32", pytest.param("bfloat16", marks=[pytest.mark.slow, BF16_QUALITY])]


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_class_is_reached_and_survives_unseen_jitter_and_scale(shapes, precision):
    n = len(shapes.class_names)
    before = model_state(shapes.model)
    # default preset, one image per class
    res = cw.visualize(shapes, list(range(n)), precision=precision)
    assert res.precision == precision
    assert res.images.shape == (n, 64, 64, 3) and res.images.dtype == np.uint8
    probs = _predict(shapes, res.images)[np.arange(n), np.arange(n)]
    assert probs.min() >= 0.9, dict(zip(shapes.class_names, probs.round(3)))
    # re-score under random jitter (+-4 px) and zoom (0.9-1.1) with seeds never used in
    # the optimization
    rescoring = cw.Transforms(jitter=4, scale=(0.9, 1.1))
    x = tf.constant(res.images.astype("float32") / 255.0)
    robust = []
    for s in range(10):
        warped = rescoring(x, tf.constant([9000 + s, 77])).numpy()
        robust.append(shapes.model.predict(warped, verbose=0)[np.arange(n), np.arange(n)])
    assert np.mean(robust) >= 0.8, np.mean(robust, axis=0).round(3)
    # the objective went up: objectives are maximized
    assert (res.history[-1] > res.history[0]).all()
    assert_same_state(before, model_state(shapes.model))


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
def test_channel_images_beat_the_data_set(shapes, precision):
    """The optimized image drives its channel harder than >= 95% of 1000 data images
    (scored by the float32 model)."""
    layer = "conv4"
    probe = keras.Model(shapes.model.inputs[0], shapes.model.get_layer(layer).output)
    data = cw.generate_shapes(1000, seed=31).images
    acts = probe.predict(data, verbose=0, batch_size=250).mean(axis=(1, 2))
    live = [c for c in range(acts.shape[1]) if np.percentile(acts[:, c], 95) > 0]
    channels = live[:: max(1, len(live) // 8)][:8]  # 8 channels the data set activates
    res = cw.visualize(shapes, obj.channel(layer, channels), precision=precision)
    assert res.precision == precision
    ours = probe.predict(res.images.astype("float32") / 255.0, verbose=0).mean(axis=(1, 2))
    for i, c in enumerate(channels):
        share = (acts[:, c] < ours[i, c]).mean()
        assert share >= 0.95, f"channel {c}: beats only {share:.1%} of the data set"


def test_changing_class_or_channel_does_not_retrace(shapes):
    cw.visualize(shapes, obj.class_logit(0), steps=2)
    cw.visualize(shapes, obj.channel("conv3", 0), steps=2)
    count = optvis.step_tracing_count(shapes)
    for i in range(20):
        cw.visualize(shapes, obj.class_logit(i % 9), steps=2, lr=0.01 + i / 1000, seed=i)
        cw.visualize(shapes, obj.channel("conv3", i), steps=2)
    assert optvis.step_tracing_count(shapes) == count


@pytest.mark.slow
def test_same_seed_same_images_other_seed_other_images(shapes):
    a = cw.visualize(shapes, "circle", steps=12, seed=3)
    b = cw.visualize(shapes, "circle", steps=12, seed=3)
    c = cw.visualize(shapes, "circle", steps=12, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.history, b.history)
    assert not np.array_equal(a.images, c.images)


def test_a_run_streams_frames_and_stops_keeping_its_last_image(shapes):
    run = cw.optimize(shapes, "square", steps=200, every=4)
    frames = []
    for frame in run:
        frames.append(frame)
        if frame.step == 12:
            run.stop()
    assert [f.step for f in frames[:3]] == [4, 8, 12]
    assert frames[-1].final and frames[-1].step == 12
    assert not np.array_equal(frames[0].images, frames[2].images)  # the image changes
    res = run.result
    assert res.stopped and res.error is None and res.steps == 12
    np.testing.assert_array_equal(res.images, frames[-1].images)
    assert res.history.shape == (12, 1)


def test_batch_with_diversity_gives_different_images(shapes):
    goal = obj.class_logit("dots") + 5.0 * obj.diversity("conv3")
    res = cw.visualize(shapes, goal, batch=3, steps=32)
    assert res.images.shape[0] == 3
    assert not np.array_equal(res.images[0], res.images[1])


@pytest.mark.parametrize("preset", sorted(cw.PRESETS))
def test_presets_run(shapes, preset):
    res = cw.visualize(shapes, 2, preset=preset, steps=3)
    assert res.images.shape == (1, 64, 64, 3) and res.steps == 3


def test_logits_are_read_without_changing_the_model(shapes):
    """The class logit is the input of the softmax: softmax(our logits) == the output."""
    compiled = step.compiled_step(
        shapes, obj.class_logit(0), cw.Pixels(), cw.Transforms(), 1, (64, 64, 3)
    )
    x = cw.generate_shapes(4, seed=2).images
    pre = compiled.ext(x)
    pre = pre[0] if isinstance(pre, list) else pre
    dense = shapes.model.get_layer("predictions")
    logits = pre @ dense.kernel + dense.bias
    np.testing.assert_allclose(
        tf.nn.softmax(logits).numpy(), shapes.model.predict(x, verbose=0), rtol=1e-4, atol=1e-6
    )
    assert shapes.model.get_layer("predictions").get_config()["activation"] == "softmax"


def _tiny(softmax: str):
    keras.utils.set_random_seed(1)  # fixed weights: the test must not depend on luck
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="tanh", name="c")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if softmax == "activation":
        out = keras.layers.Dense(3, activation="softmax", name="d")(x)
    else:
        x = keras.layers.Dense(3, name="d")(x)
        out = keras.layers.Softmax(name="sm")(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize("where", ["activation", "layer"])
def test_both_softmax_positions_give_logits(where):
    model = _tiny(where)
    before = model_state(model)
    res = cw.visualize(model, obj.class_logit(1), steps=20, preset="lucid")
    assert res.history[-1, 0] > res.history[0, 0]
    # what the step reads is the logit: its softmax is the model's output
    loaded = cw.engine.model.loading.wrap_model(model)
    source = cw.engine.model.taps.logit_source(loaded)
    ext = cw.extractor(model, [source.tap], with_outputs=False)
    x = np.random.default_rng(0).random((5, 16, 16, 3)).astype("float32")
    tapped = ext(x)
    tapped = tapped[0] if isinstance(tapped, list) else tapped
    dense = model.get_layer("d") if source.dense_path else None
    logits = source.logits(tapped, dense)
    np.testing.assert_allclose(
        tf.nn.softmax(logits).numpy(), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    assert (source.dense_path is not None) == (where == "activation")
    assert_same_state(before, model_state(model))


def test_nested_layer_objective():
    base = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(6, 3, name="inner_conv")], name="base"
    )
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    nodes = [len(layer._inbound_nodes) for layer in base.layers]
    res = cw.visualize(model, obj.channel("base/inner_conv", [1, 4]), steps=16)
    assert res.images.shape == (2, 32, 32, 3)
    assert (res.history[-1] > res.history[0]).all()
    assert nodes == [len(layer._inbound_nodes) for layer in base.layers]  # nothing added


def test_bad_input_messages(shapes):
    with pytest.raises(cw.CnnvizError, match=r"class index 9 is out of range.*9 classes.*0\.\.8"):
        cw.optimize(shapes, obj.class_logit(9))
    with pytest.raises(cw.CnnvizError, match=r"unknown class name 'circel'.*circle"):
        cw.optimize(shapes, "circel")
    with pytest.raises(cw.CnnvizError, match=r"channel 64 is out of range.*64 channels"):
        cw.optimize(shapes, obj.channel("conv4", 64))
    with pytest.raises(cw.CnnvizError, match=r"no spatial axes.*neuron"):
        cw.optimize(shapes, obj.channel("predictions", 0))
    with pytest.raises(cw.LayerNotFoundError, match="conv3"):
        cw.optimize(shapes, obj.channel("conv33", 0))
    vector = keras.Sequential([keras.Input((20,)), keras.layers.Dense(3)])
    with pytest.raises(cw.CnnvizError, match=r"not an image"):
        cw.optimize(vector, obj.class_logit(0))
    with pytest.raises(cw.CnnvizError, match=r"unknown preset 'lucyd'"):
        cw.optimize(shapes, 0, preset="lucyd")


def test_nan_gradients_stop_the_run_and_keep_the_last_good_image(shapes):
    # a custom term that is fine while conv2's mean activation stays below a ceiling a bit
    # above its value on a gray image, and NaN (sqrt of a negative) once it passes it
    probe = keras.Model(shapes.model.inputs[0], shapes.model.get_layer("conv2").output)
    ceiling = float(probe(np.full((1, 64, 64, 3), 0.5, np.float32)).numpy().mean()) + 0.05

    def fragile(act):
        return -tf.sqrt(ceiling - tf.reduce_mean(act, axis=(1, 2, 3)))

    # Adam's small first steps (lucid): the robust recipe's first L2 step passes the
    # ceiling at once
    run = cw.optimize(
        shapes, obj.custom(fragile, "conv2"), preset="lucid", steps=300, every=1, lr=0.05
    )
    frames = list(run)
    res = run.result
    assert res.error and "NaN" in res.error and "last good image" in res.error
    assert 1 < res.steps < 300 and np.isfinite(res.history).all()
    # frames[-2] shows the image the last update made, whose objective is NaN: the kept
    # image is the one before it, the input of the last step with a finite objective
    np.testing.assert_array_equal(res.images, frames[-3].images)
    assert not np.array_equal(res.images, frames[-2].images)
    with pytest.warns(RuntimeWarning, match="NaN"):
        cw.visualize(shapes, obj.custom(fragile, "conv2"), preset="lucid", steps=300, lr=0.05)


def _nan_after(n: int):
    """A custom term that is 0 for the first ``n`` steps and NaN from then on, and its
    step counter (reset it before a run)."""
    calls = tf.Variable(0, trainable=False)

    def fn(image):
        count = calls.assign_add(1)
        zero = 0.0 * tf.reduce_mean(image, axis=(1, 2, 3))
        return tf.where(count > n, zero + np.nan, zero)

    return obj.custom(fn, name=f"nan_after_{n}"), calls


def test_a_non_finite_objective_keeps_the_last_image_whose_objective_was_finite(shapes):
    # step k evaluates the image after k - 1 updates; here the objective of the image after
    # 5 updates is NaN, so the kept image is the one after 4 updates (the 5th step's input)
    term, calls = _nan_after(5)
    goal = obj.class_logit(2) + term
    # lucid: a run of 4 steps takes the same first 4 steps as one of 40 (the robust
    # recipe's step size follows a schedule over the run's length)
    # (no preview: its eager step would be one more evaluation of the counting term)
    run = cw.optimize(
        shapes, goal, preset="lucid", steps=40, every=1, lr=0.05, seed=3, preview=False
    )
    frames = list(run)
    res = run.result
    assert res.error and "NaN" in res.error and "last good image" in res.error
    assert res.steps == 5 and np.isfinite(res.history).all() and res.history.shape == (5, 1)
    calls.assign(0)
    four = cw.visualize(shapes, goal, preset="lucid", steps=4, lr=0.05, seed=3)
    assert four.error is None and four.steps == 4
    np.testing.assert_array_equal(res.images, four.images)
    np.testing.assert_array_equal(frames[-1].images, four.images)
    assert not np.array_equal(res.images, frames[-2].images)  # that image's objective is NaN
    np.testing.assert_array_equal(frames[-1].values, res.history[-1])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": float("inf")}, r"learning rate \(lr\) is inf"),
        ({"lr": float("nan")}, r"learning rate \(lr\) is nan"),
        ({"tv": float("nan")}, r"tv is nan"),
        ({"lp": float("inf")}, r"lp is inf"),
        ({"blur": float("-inf")}, r"blur is -inf"),
        ({"lr": "fast"}, r"learning rate \(lr\) must be a number"),
        ({"steps": 2.5}, r"steps is a whole number"),
        ({"transforms": cw.Transforms(jitter=float("inf"))}, r"Transforms.jitter is inf"),
        ({"param": cw.Pixels(init_std=float("nan"))}, r"Pixels.init_std is nan"),
    ],
)
def test_non_finite_settings_are_refused(shapes, kwargs, message):
    with pytest.raises(cw.CnnvizError, match=message):
        cw.optimize(shapes, "circle", **kwargs)


def test_a_non_finite_objective_weight_is_refused(shapes):
    with pytest.raises(cw.CnnvizError, match=r"weight of class_logit\(0\).*is inf.*finite"):
        cw.optimize(shapes, float("inf") * obj.class_logit(0))


def test_a_custom_objective_must_give_one_value_per_image(shapes):
    scalar = obj.custom(lambda image: tf.reduce_mean(image), name="scalar")
    with pytest.raises(cw.CnnvizError, match=r"'scalar' returned shape \(\).*one value per image"):
        cw.visualize(shapes, obj.class_logit([0, 1]) + scalar, steps=2)
    per_pixel = obj.custom(lambda act: tf.reduce_mean(act, axis=-1), "conv1", name="maps")
    with pytest.raises(cw.CnnvizError, match=r"'maps' returned shape \(2, 64, 64\).*\(batch,\)"):
        cw.visualize(shapes, obj.class_logit([0, 1]) + per_pixel, steps=2)
    fine = obj.custom(lambda image: tf.reduce_mean(image, axis=(1, 2, 3)), name="fine")
    res = cw.visualize(shapes, obj.class_logit([0, 1]) + fine, steps=2)
    assert res.error is None and res.history.shape == (2, 2)


def test_diversity_with_a_batch_of_one_warns(shapes):
    with pytest.warns(UserWarning, match=r"diversity\('conv2'\) with a batch of 1.*batch >= 2"):
        cw.optimize(shapes, obj.class_logit(0) + obj.diversity("conv2"), steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cw.optimize(shapes, obj.class_logit(0) + obj.diversity("conv2"), steps=1, batch=2)


def test_objectives_compose():
    a = obj.class_logit(1) + 0.5 * obj.channel("conv1", 2) - obj.total_variation()
    assert [w for w, _ in a.terms] == [1.0, 0.5, -1.0]
    assert repr(a) == "class_logit(1) + 0.5*channel('conv1', 2) - total_variation()"
    assert sum([obj.class_logit(0), obj.class_logit(1)]).batch_size() == 1
    assert obj.class_logit([0, 1, 2]).batch_size() == 3
    # structure ignores the values, so these share one compiled step
    assert obj.class_logit(1).structure() == obj.class_logit(7).structure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (2 * a).terms[0][0] == 2.0


def test_two_runs_at_once_do_not_share_variables(shapes):
    """Two panels optimizing the same model at the same time each get their own step."""
    solo = cw.visualize(shapes, "ring", steps=8, seed=5)
    a = cw.optimize(shapes, "ring", steps=8, seed=5, every=1)
    b = cw.optimize(shapes, "ring", steps=8, seed=6, every=1)
    for _ in zip_longest(a, b):  # interleave their steps (b, a new step, shows a preview)
        pass
    np.testing.assert_array_equal(a.result.images, solo.images)
    assert not np.array_equal(b.result.images, solo.images)


def test_grayscale_model_with_its_own_preprocessing():
    keras.utils.set_random_seed(2)
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(6, 5, activation="relu", name="c1")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(4, name="logits")(x))
    loaded = cw.engine.model.loading.wrap_model(model, preprocessing="tf")  # inputs in [-1, 1]
    res = cw.visualize(loaded, obj.channel("c1", [0, 3]), steps=24)
    assert res.images.shape == (2, 28, 28, 1) and res.images.dtype == np.uint8
    assert (res.history[-1] > res.history[0]).all()
    res = cw.visualize(loaded, obj.class_logit(2), steps=12, param="pixels")
    assert res.history[-1, 0] > res.history[0, 0]


def test_check_settings_is_the_one_check_of_run_settings():
    p = cw.PRESETS["keras-vis"]
    assert optvis.check_settings("keras-vis") == {
        "tv": p.tv, "lp": p.lp, "blur": p.blur, "steps": p.steps, "lr": p.lr,
    }  # fmt: skip
    assert optvis.check_settings("lucid", steps=3, lr=0.5)["steps"] == 3
    for kwargs, message in (
        ({"lr": 0}, "learning rate must be > 0"),
        ({"tv": -1}, "tv is a penalty weight"),
        ({"blur": float("inf")}, "blur is inf"),
        ({"steps": 2.5}, "whole number of steps"),
        ({"steps": -1}, "steps must be at least 0"),
    ):
        with pytest.raises(cw.CnnvizError, match=message):
            optvis.check_settings("lucid", **kwargs)
    assert optvis.check_settings("lucid", steps=0)["steps"] == 0  # the engine runs 0 steps
    with pytest.raises(cw.CnnvizError, match="steps must be at least 1, got 0"):
        optvis.check_settings("lucid", steps=0, min_steps=1)  # a panel's run needs one


def test_the_pre_activation_score_gives_grappler_no_leaky_relu(shapes):
    """A channel of a ReLU layer scores a leaky ReLU (slope 0.05) of the value before the
    ReLU. Written as tf.nn.leaky_relu, the step held LeakyRelu and LeakyReluGrad, which
    grappler's remapper (oneDNN builds) tried to fuse with the pre-activation's add and
    failed on, printing an error for every channel objective. The traced step has neither
    op, and the score has leaky_relu's values and gradients (slope 0.05 at zero too)."""
    run = cw.optimize(shapes, obj.channel("conv3", 3), steps=1, precision="float32")
    for _ in run:
        pass
    traced = run._c.step.get_concrete_function(
        run._values, tf.constant(run._weights), tf.constant([run.seed, 0], tf.int32)
    )
    kinds = {op.type for op in traced.graph.get_operations()}
    assert "Conv2D" in kinds  # the pre-activation is computed in this graph
    assert not {"LeakyRelu", "LeakyReluGrad"} & kinds, sorted(kinds)
    assert run._c.tracing_count() == 1  # the graph inspected is the one that ran
    x = tf.constant([-3.0, -0.5, 0.0, 1e-8, 0.25, 4.0])
    acts = {("conv3", "pre"): x}
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = objectives_module._unit_values(
            objectives_module.Context(image=None, acts=acts, logits=None), "conv3"
        )
        theirs = tf.nn.leaky_relu(x, alpha=0.05)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(theirs, x).numpy())


def test_exit_waits_for_warm_ups_a_bounded_time_in_all(shapes, monkeypatch):
    """At exit, warm-ups still running get EXIT_WAIT seconds in all (not each: a tour that
    opened several panels kept JupyterLab from stopping for over a minute), and a warm-up
    asked for after the exit began compiles nothing."""
    from cnnviz_widgets.engine.optvis import run as run_module

    timeouts = []

    class Slow:  # a warm-up thread that takes its whole timeout
        def join(self, timeout=None):
            timeouts.append(timeout)
            now[0] += timeout

    now = [0.0]
    monkeypatch.setattr(run_module.time, "monotonic", lambda: now[0])
    threads = [Slow() for _ in range(4)]
    monkeypatch.setattr(run_module, "_WARMING", threads)
    monkeypatch.setattr(run_module, "_EXITING", threading.Event())
    run_module._finish_warm_ups()
    assert sum(timeouts) == run_module.EXIT_WAIT and timeouts[1:] == [0.0] * 3
    assert run_module._EXITING.is_set()
    monkeypatch.undo()
    exiting = threading.Event()
    exiting.set()
    monkeypatch.setattr(run_module, "_EXITING", exiting)
    assert run_module._warm(shapes, 0, {"steps": 2, "batch": 3, "size": 40}) == 0.0


def test_a_channel_off_everywhere_still_beats_its_best_example(shapes):
    """conv2 channel 25 of the embedded model fires on about 1% of generated images, and
    hardly (best mean activation ~5e-4 of 1,000). The mean of its leaky score gave a flat
    picture, off everywhere (pre-activation -0.05..-0.08), below that best example; while a
    channel is off everywhere the score also lifts its strongest position, and the unit
    pictures (preset "auto", as the atlas draws them) now fire and beat every generated image."""
    layer, unit = "conv2", 25
    probe = keras.Model(shapes.model.inputs[0], shapes.model.get_layer(layer).output)
    data = cw.generate_shapes(1000, seed=31).images
    best = probe.predict(data, verbose=0, batch_size=250)[..., unit].mean(axis=(1, 2)).max()
    assert best > 0  # a live unit: some image makes it fire
    # four pictures from four starts (before: one of them off everywhere, two below best)
    res = cw.visualize(shapes, obj.channel(layer, [unit] * 4), preset="auto", seed=0)
    pictures = res.images.astype(np.float32) / 255.0
    ours = probe.predict(pictures, verbose=0)[..., unit].mean(axis=(1, 2))
    assert np.all(ours > 0), (ours, best)
    assert np.sum(ours > best) >= 3, (ours, best)


def test_the_channel_score_is_the_mean_once_the_channel_fires():
    """The added term is min(0, strongest position): zero, with no gradient, as soon as one
    position is above zero (channels that fire keep the plain mean's pictures); while the
    channel is off everywhere, it lifts the strongest position above the others."""
    rng = np.random.default_rng(0)
    one = rng.uniform(-1.0, -0.1, (1, 4, 4, 2)).astype(np.float32)
    one[0, 1, 2, 0] = 0.3  # channel 0 fires at one position, channel 1 nowhere
    x = tf.constant(np.concatenate([one, one]))  # image 0 scores channel 0, image 1 channel 1
    term = objectives_module.Channel("conv3", [0, 1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        ctx = objectives_module.Context(image=None, acts={("conv3", "pre"): x})
        score = term.score(ctx, {"index": tf.constant([0, 1], tf.int32)}, "conv3")
    grad, score = tape.gradient(score, x).numpy(), score.numpy()
    leaky = np.maximum(0.05 * one[0], one[0])
    np.testing.assert_allclose(score[0], leaky[..., 0].mean(), rtol=1e-6)
    np.testing.assert_allclose(score[1], leaky[..., 1].mean() + leaky[..., 1].max(), rtol=1e-6)
    fires, off = grad[0, ..., 0], grad[1, ..., 1]
    np.testing.assert_allclose(np.sort(fires.ravel()), [0.05 / 16] * 15 + [1 / 16], rtol=1e-5)
    strongest = np.unravel_index(one[0, ..., 1].argmax(), (4, 4))
    np.testing.assert_allclose(off[strongest], 0.05 / 16 + 0.05, rtol=1e-5)
    assert np.sort(off.ravel())[-2] == pytest.approx(0.05 / 16)
