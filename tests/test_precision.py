"""Reduced precision: the twin shares the model's weights and never changes the model,
"auto" picks reduced precision only where measured faster (simulated here), the methods
report what they ran in, and occlusion's batches are even.

The quality checks in bfloat16 (class optimization, channel images, pointing games) sit
beside their float32 versions in test_optvis.py and test_attribution.py."""

import gc
import weakref

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.attribution import methods as attribution
from cnnviz_widgets.engine.attribution import occlusion_sensitivity as occlusion_module
from cnnviz_widgets.engine.model import precision
from cnnviz_widgets.engine.optvis import probe
from cnnviz_widgets.errors import CnnvizError

from .helpers import BF16_QUALITY, assert_same_state, model_state

SMALL_PASS = precision.MIN_PASS_FLOPS


@pytest.fixture(autouse=True)
def small_passes_measured(monkeypatch):
    """The embedded model's passes are small (43 MFLOPs an image): "auto" would keep
    float32 for most of them without measuring.  The tests of what it measures and
    chooses lower the threshold; test_auto_does_not_measure_a_pass_too_small_to_gain
    checks the threshold itself."""
    monkeypatch.setattr(precision, "MIN_PASS_FLOPS", 0.0)


@pytest.fixture
def fresh():
    """The embedded model, its own copy (twins and measurements start empty)."""
    return cw.load_model("shapes")


@pytest.fixture
def images():
    return cw.generate_shapes(8, seed=3)


# ------------------------------------------------------------------------------- twin
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_the_twin_shares_the_weights_and_never_changes_the_model(fresh, images, dtype):
    model = fresh.model
    before = model_state(model)
    policies = [layer.dtype_policy.name for layer in model.layers]
    twin = precision.model_in(fresh, dtype).model
    assert twin is not model and precision.model_in(fresh, dtype).model is twin  # cached
    assert precision.precision_of(twin) == dtype and precision.precision_of(model) == "float32"
    assert {layer.compute_dtype for layer in twin.layers[1:]} == {dtype}
    assert [layer.dtype_policy.name for layer in model.layers] == policies
    assert_same_state(before, model_state(model))
    # the same variables, not copies: no extra memory, and edits of the model are seen
    assert all(a.value is b.value for a, b in zip(twin.weights, model.weights))
    x = images.images
    ref = model(x).numpy()
    out = np.asarray(twin(x), np.float32)
    assert np.abs(out - ref).max() < 0.02 and (out.argmax(1) == ref.argmax(1)).all()
    kernel = model.get_layer("predictions").kernel
    saved = kernel.numpy()
    try:
        kernel.assign(np.zeros_like(saved))
        flat = np.asarray(twin(x), np.float32)
        np.testing.assert_allclose(flat, model(x).numpy(), atol=1e-2)
        assert np.abs(flat - ref).max() > 0.1
    finally:
        kernel.assign(saved)
    assert_same_state(before, model_state(model))


def test_a_twin_does_not_keep_the_model_alive(images):
    loaded = cw.load_model("shapes")
    img = images.images[0]
    cw.occlusion(loaded, img, patch=32, stride=32, precision="bfloat16")
    cw.saliency(loaded, img, smooth=2, precision="bfloat16")
    cw.visualize(loaded, 0, steps=1, precision="bfloat16")
    assert precision.twins_of(loaded)
    ref = weakref.ref(loaded.model)
    del loaded
    gc.collect()
    assert ref() is None


def test_a_model_that_cannot_be_cloned_says_so(images):
    class Scale(keras.layers.Layer):  # no get_config for its argument: cannot be rebuilt
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def call(self, x):
            return x * self.factor

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3)(Scale(2.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    loaded = cw.load_model(model)
    with pytest.raises(CnnvizError, match="precision='float32'"):
        precision.model_in(loaded, "bfloat16")
    with pytest.raises(CnnvizError, match="precision='float32'"):  # remembered, same answer
        cw.occlusion(loaded, np.zeros((8, 8, 3), np.float32), 0, precision="bfloat16")
    assert cw.occlusion(loaded, np.zeros((8, 8, 3), np.float32), 0).precision == "float32"


# ------------------------------------------------------------------------------- auto
def test_auto_is_float32_without_fast_half_precision_hardware(fresh, monkeypatch):
    monkeypatch.setattr(precision, "hardware_precisions", lambda: ((), "no such hardware"))
    calls = []
    monkeypatch.setattr(precision, "measure", lambda *a, **k: calls.append(a) or (9.0, 0.0))
    choice = cw.choose_precision(fresh, "optimize")
    assert choice.precision == "float32" and "no such hardware" in choice.reason
    assert not calls  # nothing measured: the hardware rules it out
    res = cw.visualize(fresh, 0, steps=2)
    assert res.precision == "float32" and res.precision_reason == choice.reason
    assert not precision.twins_of(fresh)  # no twin was even built


def test_auto_does_not_measure_a_pass_too_small_to_gain(fresh, monkeypatch):
    monkeypatch.setattr(precision, "MIN_PASS_FLOPS", SMALL_PASS)
    monkeypatch.setattr(precision, "hardware_precisions", lambda: (("bfloat16",), "test CPU"))
    calls = []

    def measured(loaded, reduced, work, batch, size=None, rounds=3):
        calls.append((work, batch))
        return 2.0, 0.001

    monkeypatch.setattr(precision, "measure", measured)
    per_image = precision.forward_flops(fresh.model, (64, 64))
    assert 1e6 < per_image < SMALL_PASS  # an image is below the threshold, 64 are above
    small = cw.choose_precision(fresh, "optimize")  # one image a step
    assert small.precision == "float32" and not calls
    assert f"{per_image / 1e6:.0f} MFLOPs" in small.reason and "not measured" in small.reason
    assert not precision.twins_of(fresh)  # nothing built either
    large = cw.choose_precision(fresh, "forward", batch=64)
    assert calls == [("forward", 64)] and large.precision == "bfloat16", large.reason


@pytest.mark.parametrize(
    ("speedup", "deviation", "expected"),
    [(0.4, 0.001, "float32"), (1.1, 0.001, "float32"), (2.2, 0.2, "float32"), (2.2, 0.001, None)],
)
def test_auto_takes_reduced_precision_only_where_measured_faster_and_close(
    fresh, images, monkeypatch, speedup, deviation, expected
):
    """Simulated measurements: slower, barely faster, fast but off, fast and close."""
    monkeypatch.setattr(precision, "hardware_precisions", lambda: (("bfloat16",), "test CPU"))
    calls = []

    def measured(loaded, reduced, work, batch, size=None, rounds=3):
        calls.append((reduced, work, batch))
        return speedup, deviation

    monkeypatch.setattr(precision, "measure", measured)
    expected = expected or "bfloat16"
    choice = cw.choose_precision(fresh, "forward", batch=8)
    assert choice.precision == expected, choice.reason
    assert choice.speedup == speedup and choice.deviation == deviation
    assert f"{speedup:.1f}x" in choice.reason or f"{speedup:.2f}x" in choice.reason, choice
    cw.choose_precision(fresh, "forward", batch=8)
    assert calls == [("bfloat16", "forward", 8)]  # measured once per model, work, batch
    res = cw.occlusion(fresh, images.images[0], patch=16, stride=8)  # 8 x 8 = 64 positions
    assert res.precision == expected
    # the choice is per work: SmoothGrad's gradients are measured on their own
    smooth = cw.saliency(fresh, images.images[0], smooth=3, batch_size=3)
    assert smooth.precision == expected and ("bfloat16", "gradient", 4) in calls
    # exact methods stay float32 unless asked
    cam = cw.grad_cam(fresh, images.images[0])
    assert cam.precision == "float32"
    assert cw.saliency(fresh, images.images[0]).precision == "float32"
    assert cw.grad_cam(fresh, images.images[0], precision="bfloat16").precision == "bfloat16"


def test_auto_remembers_a_decision_for_the_same_model_as_another_object(monkeypatch):
    monkeypatch.setattr(precision, "hardware_precisions", lambda: (("bfloat16",), "test CPU"))
    calls = []

    def measured(loaded, reduced, work, batch, size=None, rounds=3):
        calls.append(loaded.model)
        return 2.2, 0.001

    monkeypatch.setattr(precision, "measure", measured)
    first = cw.choose_precision(cw.load_model("shapes"), "forward", batch=8)
    again = cw.choose_precision(cw.load_model("shapes"), "forward", batch=8)  # a new object
    assert len(calls) == 1 and again.precision == first.precision == "bfloat16"
    assert again.reason.startswith(first.reason) and "same model" in again.reason
    # other weights (one value changed) or another batch: measured again
    other = cw.load_model("shapes")
    kernel = other.model.weights[0]
    kernel.assign(kernel.numpy() + np.eye(1, kernel.numpy().size).reshape(kernel.shape))
    assert "same model" not in cw.choose_precision(other, "forward", batch=8).reason
    cw.choose_precision(cw.load_model("shapes"), "forward", batch=4)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("speedup", "reached", "expected"),
    [
        (2.0, 8.5, "bfloat16"),  # 85 % of float32's progress, twice as fast
        (2.0, 10.4, "bfloat16"),  # further than float32
        (2.0, 7.5, "float32"),  # 75 % of float32's progress: short of it
        (1.1, 10.0, "float32"),  # as good, not fast enough
        (2.0, float("nan"), "float32"),  # the reduced run went non-finite
    ],
)
def test_auto_judges_optimization_by_a_probe_of_the_result(
    fresh, monkeypatch, speedup, reached, expected
):
    """Simulated probes (from objective 0, float32 reaches 10): reduced precision is taken
    for optimization when the probe's reduced run reaches float32's objective within the
    tolerance and is fast enough, whatever its gradients' deviation (not measured), once
    per model, work and batch, and the reason says what was measured."""
    monkeypatch.setattr(precision, "hardware_precisions", lambda: (("bfloat16",), "test CPU"))
    timed = []

    def measured(loaded, reduced, work, batch, size=None, rounds=3):
        timed.append(work)
        return speedup, 0.45  # fast passes, gradients 45 % off: not what decides

    monkeypatch.setattr(precision, "measure", measured)
    calls = []

    def probed(loaded, reduced, batch, size=None):
        calls.append((reduced, batch, size))
        return probe.ProbeOutcome(reduced, speedup, 0.0, 10.0, reached, probe.PROBE_STEPS)

    monkeypatch.setattr(precision, "probe_optimization", probed)
    choice = cw.choose_precision(fresh, "optimize", size=64)
    assert choice.precision == expected, choice.reason
    assert f"{speedup:.2f}x" in choice.reason
    assert timed == ["gradient"]  # the passes are timed first
    run = cw.optimize(fresh, 0, steps=2)  # 64 px: the size this model takes
    assert run.precision is choice  # the same decision, not probed again
    if speedup < precision.MIN_SPEEDUP:  # not faster: not worth a probe
        assert not calls and "not probed" in choice.reason
        return
    assert choice.probe.objective == reached or np.isnan(reached)
    assert "scored in float32" in choice.reason
    assert f"{probe.PROBE_STEPS}-step probe" in choice.reason and f"{reached:.4g}" in choice.reason
    assert calls == [("bfloat16", 1, 64)]


def test_a_real_probe_steps_both_precisions_from_one_start(fresh, monkeypatch):
    """The probe itself (real steps, simulated timings): both runs start at the same
    objective, float32's climbs, the reduced one is scored by the float32 step, the
    compiled steps it traced are the ones a run then uses, and nothing stays busy."""
    seen = []
    real = probe.step_seconds

    def timed(p, step, values, weights, seed):
        seen.append(p)
        real(p, step, values, weights, seed)
        return {"float32": 1.0, "bfloat16": 0.4}[p]

    monkeypatch.setattr(probe, "step_seconds", timed)
    out = probe.probe_optimization(fresh, "bfloat16", batch=1)
    assert seen[:4] == ["float32", "bfloat16", "bfloat16", "float32"]  # interleaved
    # float32, the reduced one, then float32 again with other transforms (not timed)
    assert len(seen) == 3 * probe.PROBE_STEPS and out.steps == probe.PROBE_STEPS
    assert seen[-probe.PROBE_STEPS :] == ["float32"] * probe.PROBE_STEPS
    assert np.isfinite(out.float32_again) and out.float32_again != out.float32
    assert out.speedup == pytest.approx(2.5)
    assert out.float32 > out.start and np.isfinite(out.objective)
    again = probe.probe_optimization(fresh, "bfloat16", batch=1)  # deterministic start
    assert again.start == out.start and again.float32 == pytest.approx(out.float32, rel=1e-5)
    traced = optvis.step_tracing_count(fresh)
    monkeypatch.setattr(precision, "hardware_precisions", lambda: (("bfloat16",), "test CPU"))
    monkeypatch.setattr(precision, "measure", lambda *a, **k: (2.5, 0.0))  # fast passes
    res = cw.visualize(fresh, obj.class_logit(3), steps=3, precision="auto")
    assert res.precision == ("bfloat16" if out.matches else "float32"), res.precision_reason
    assert optvis.step_tracing_count(fresh) == traced  # the probe's steps, reused


def test_on_a_gpu_auto_tries_loss_scaled_float16_first(fresh, monkeypatch):
    """A GPU simulated (compute capability 8.0, timings simulated, the float16 arithmetic
    emulated on this CPU): float16 is probed first, runs loss-scaled, and is taken when its
    result matches (bfloat16 is not even tried then), else bfloat16 is probed."""
    monkeypatch.setattr(
        precision,
        "hardware_precisions",
        lambda: (("float16", "bfloat16"), "test GPU (compute capability 8.0)"),
    )
    real = probe.step_seconds
    tried = []

    def timed(p, step, values, weights, seed):
        tried.append((p, step.loss_scale))
        real(p, step, values, weights, seed)
        return {"float32": 1.0, "float16": 0.3, "bfloat16": 0.3}[p]

    monkeypatch.setattr(probe, "step_seconds", timed)
    monkeypatch.setattr(precision, "measure", lambda *a, **k: (3.3, 0.0))  # fast passes
    choice = cw.choose_precision(fresh, "optimize")
    assert tried[:2] == [("float32", 1.0), ("float16", 128.0)]  # float16 first, loss-scaled
    assert "test GPU" in choice.reason
    if choice.precision == "float16":  # its result matched: bfloat16 not even tried
        assert choice.probe.matches and not [t for t in tried if t[0] == "bfloat16"]
    else:  # it did not: bfloat16 was probed next (both said why in the reason)
        assert "float16: a " in choice.reason and ("bfloat16", 1.0) in tried


def test_a_real_measurement_on_the_embedded_model(fresh):
    """The measurement itself (not simulated): a speedup and a deviation; the deviation
    of bfloat16 on this model is small."""
    speedup, deviation = precision.measure(fresh, "bfloat16", "forward", 4, rounds=1)
    assert speedup > 0 and np.isfinite(speedup)
    assert 0 < deviation < 0.05


def test_measurements_trace_each_pass_once_and_warn_of_no_retracing(fresh, caplog):
    """Measuring several batches, both works, again and again: one trace per model (and
    twin) and work, and TensorFlow's retracing warning never comes (the tour notebook
    printed it when every measurement made a new tf.function)."""
    import logging

    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        for _ in range(3):
            for batch in (1, 2, 3, 4):
                for work in ("forward", "optimize"):
                    precision.measure(fresh, "bfloat16", work, batch, rounds=1)
    assert precision.pass_tracing_count(fresh) == 4  # float32 and bfloat16, two works
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_a_measurement_reads_every_output(images):
    """A model with two outputs is measured on both (it failed inside the measurement)."""
    x = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(x)
    pooled = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(x, [keras.layers.Dense(3)(pooled), keras.layers.Dense(1)(pooled)])
    loaded = cw.load_model(model, preprocessing="unit")
    for work in ("forward", "optimize"):
        speedup, deviation = precision.measure(loaded, "bfloat16", work, 2, rounds=1)
        assert speedup > 0 and np.isfinite(deviation) and deviation >= 0
    x = np.zeros((2, 16, 16, 3), np.float32)
    assert precision._pass(loaded, "forward")(x).shape == (2, 4)  # both outputs, side by side


def test_unknown_precision_is_refused_with_the_choices(fresh, images):
    for call in (
        lambda: cw.optimize(fresh, 0, precision="half"),
        lambda: cw.occlusion(fresh, images.images[0], precision="fp16"),
        lambda: cw.feature_maps(fresh, images.images[0], precision=16),
    ):
        with pytest.raises(CnnvizError, match=r"unknown precision .*'auto', 'float32'"):
            call()
    with pytest.raises(CnnvizError, match="work must be one of"):
        cw.choose_precision(fresh, "training")


# ------------------------------------------------------------------- methods in bf16
def test_methods_in_bfloat16_agree_with_float32_and_return_float32(shapes, images):
    img = images.images[1]
    for fn in (
        lambda p: cw.occlusion(shapes, img, precision=p),
        lambda p: cw.saliency(shapes, img, smooth=8, precision=p),
        lambda p: cw.grad_cam(shapes, img, precision=p),
    ):
        full, half = fn("float32"), fn("bfloat16")
        assert half.precision == "bfloat16" and full.precision == "float32"
        assert half.raw.dtype == np.float32 and half.heatmap.dtype == np.float32
        assert half.class_index == full.class_index
        assert abs(half.probability - full.probability) < 0.02
        top = np.abs(full.raw).max()
        assert np.abs(half.raw - full.raw).max() < 0.1 * top, half.method
    a = cw.feature_maps(shapes, img, "conv3", precision="float32")
    b = cw.feature_maps(shapes, img, "conv3", precision="bfloat16")
    assert b.maps.dtype == np.float32 and b.precision == "bfloat16"
    assert np.abs(a.maps - b.maps).max() < 0.02 * np.abs(a.maps).max()


def test_reduced_passes_keep_the_numbers_users_compare_in_float32(shapes, images):
    """Occlusion in bfloat16: the class, base score and probability are float32's (the
    same as a float32 run and as predict_top), the scores are that base minus the drops,
    and the agreement stated is what recomputing those positions in float32 gives (at
    most the largest difference over the whole map, which a float32 run measures here)."""
    for i in (1, 4):
        img = images.images[i]
        full = cw.occlusion(shapes, img, precision="float32")
        half = cw.occlusion(shapes, img, precision="bfloat16")
        top = cw.predict_top(shapes, img, k=1)
        assert half.class_index == full.class_index == top.class_index
        assert half.base_score == full.base_score and half.score == full.score
        assert half.probability == full.probability == pytest.approx(top.probabilities[0])
        np.testing.assert_allclose(half.scores, half.base_score - half.raw, atol=1e-5)
        whole = float(np.abs(half.raw - full.raw).max() / np.abs(half.raw).max())
        assert full.agreement is None
        assert 0 <= half.agreement <= whole + 1e-6 and half.agreement < 0.05, whole
        assert f"drops within {half.agreement:.1%} of the largest drop" in half.precision_reason
        assert "checked in float32 at 4 of 256 positions" in half.precision_reason
        smooth = cw.saliency(shapes, img, smooth=4, precision="bfloat16")
        assert smooth.class_index == top.class_index
        assert smooth.probability == pytest.approx(top.probabilities[0], rel=1e-6)
        cam = cw.grad_cam(shapes, img, precision="bfloat16")
        assert cam.score == pytest.approx(float(top.scores[0]), rel=1e-6)


def test_no_retracing_in_bfloat16(shapes, images):
    img = images.images
    for i in range(2):
        cw.occlusion(shapes, img[i], int(images.labels[i]), precision="bfloat16")
        cw.saliency(shapes, img[i], smooth=4, precision="bfloat16")
        cw.visualize(shapes, obj.class_logit(i), steps=1, precision="bfloat16")
        if i == 0:
            traced = (attribution.tracing_count(shapes), optvis.step_tracing_count(shapes))
    assert (attribution.tracing_count(shapes), optvis.step_tracing_count(shapes)) == traced


def test_float16_optimization_stays_finite_and_climbs(shapes):
    res = cw.visualize(shapes, obj.class_logit(2), steps=24, precision="float16")
    assert res.precision == "float16" and res.error is None
    assert np.isfinite(res.history).all() and res.history[-1, 0] > res.history[0, 0]


def test_layer_objects_of_the_users_model_work_on_the_twin(shapes):
    layer = shapes.model.get_layer("conv3")
    res = cw.visualize(shapes, obj.channel(layer, 3), steps=4, precision="bfloat16")
    assert res.history.shape == (4, 1) and res.precision == "bfloat16"


# ------------------------------------------------------------------ occlusion batches
def test_occlusion_batches_are_even_and_padding_changes_nothing(shapes, images, monkeypatch):
    assert attribution._even_batch(16, 10) == 8  # 8 + 8, not 10 + 6
    assert attribution._even_batch(196, 10) == 10  # 20 passes (200 images, 4 padding)
    assert attribution._even_batch(49, 10) == 10
    assert attribution._even_batch(9, 128) == 9
    sizes = []
    real = occlusion_module._occlusion_fns

    def spy(loaded):
        fns = real(loaded)

        class Spy:
            notes = fns.notes

            def occlude(self, image, fill, y0, *rest):
                sizes.append(len(y0))
                return fns.occlude(image, fill, y0, *rest)

        return Spy()

    monkeypatch.setattr(occlusion_module, "_occlusion_fns", spy)
    img = images.images[2]
    # float32 asked for: "auto" measures each batch shape on its own and may run one in
    # bfloat16 (it did on a CPU with fast bfloat16), which is not what is compared here
    f32 = dict(patch=8, stride=16, precision="float32")
    ref = cw.occlusion(shapes, img, 1, batch_size=1, **f32)  # 4 x 4, one each
    sizes.clear()
    got = cw.occlusion(shapes, img, 1, batch_size=10, **f32)
    assert sizes == [8, 8]
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-5)
    sizes.clear()
    odd = cw.occlusion(shapes, img, 1, batch_size=7, **f32)  # 16 = 6 + 6 + 6
    assert sizes == [6, 6, 6]
    np.testing.assert_allclose(odd.scores, ref.scores, rtol=1e-5, atol=1e-5)


def test_float16_gradients_are_loss_scaled(shapes, images):
    """SmoothGrad's and the measurement's float16 backward passes scale the score up and
    the gradient back down: the same map as without scaling where nothing underflows, and
    the scale is 1 for bfloat16 and float32."""
    half = precision.model_in(shapes, "float16")
    assert precision.loss_scale(half) == precision.LOSS_SCALE
    assert precision.loss_scale(precision.model_in(shapes, "bfloat16")) == 1.0
    assert precision.loss_scale(shapes) == 1.0
    img = images.images[2]
    full = cw.saliency(shapes, img, smooth=4, precision="float32")
    f16 = cw.saliency(shapes, img, smooth=4, precision="float16")
    assert f16.precision == "float16" and np.isfinite(f16.raw).all()
    assert np.abs(f16.raw - full.raw).max() < 0.05 * np.abs(full.raw).max()


# ------------------------------------------------------------ ranking and atlas
RANK_TIES = 2.0**-7
"""Two float32 scores of one unit closer than this fraction of the unit's largest score
count as tied for a bfloat16 ranking: two steps of bfloat16's resolution (8 significant
bits, 2**-8 = 0.39 %), as its error accumulates over the layers (the scores of a bfloat16
ranking of conv2 and conv4 were off by up to 0.6 % of the unit's largest score)."""


@pytest.mark.parametrize("layer", ["conv2", "conv4"])
def test_a_bfloat16_ranking_agrees_with_float32_except_for_near_ties(shapes, layer):
    """Every image a bfloat16 ranking keeps is in float32's top k, or scores (in float32)
    within RANK_TIES of float32's k-th; and its order is float32's up to such ties."""
    data = cw.generate_shapes(600, seed=21)
    k = 9
    half = cw.top_examples(shapes, layer, data, k=k, precision="bfloat16")
    full = cw.top_examples(shapes, layer, data, k=k, precision="float32")
    assert half.precision == "bfloat16" and full.precision == "float32"
    ext = cw.extractor(shapes, [cw.Tap(layer)], with_outputs=False)
    out = ext(shapes.preprocessing(data.images.astype(np.float32)), training=False)
    exact = np.asarray(out[0] if isinstance(out, list) else out).mean(axis=(1, 2))  # (N, C)
    same = 0
    for r, unit in enumerate(half.units):
        col = exact[:, unit]
        top = np.abs(col).max()
        if top == 0:
            continue
        tie = RANK_TIES * top
        kth = np.sort(col)[::-1][k - 1]
        kept = col[half.indices[r]]
        assert kept.min() >= kth - tie, (unit, kth - kept.min(), tie)
        assert (np.diff(kept) <= tie).all(), unit  # best first, up to ties
        same += set(half.indices[r]) == set(full.indices[r])
    assert same >= 0.8 * len(half.units)  # and most units keep exactly float32's images


@BF16_QUALITY
def test_a_bfloat16_atlas_is_as_good_as_float32s(shapes, tmp_path):
    """An atlas made in bfloat16: each unit's image excites its channel (scored in
    float32) beyond 95 % of the data set's images, as float32's do, about as strongly,
    and the examples are float32's up to near ties; each stored unit says its precision."""
    data = cw.generate_shapes(400, seed=8)
    settings = dict(channels=range(8), steps=128, batch=8, seed=1, k=6)
    half = cw.atlas(shapes, "conv4", data, store=tmp_path / "a", precision="bfloat16", **settings)
    full = cw.atlas(shapes, "conv4", data, store=tmp_path / "b", precision="float32", **settings)
    assert any("visualizations: bfloat16" in n for n in half.notes), half.notes
    assert any("dataset examples: bfloat16" in n for n in half.notes), half.notes
    assert half.vis_store.load(3)["meta"]["precision"] == "bfloat16"
    assert full.vis_store.load(3)["meta"]["precision"] == "float32"
    ext = cw.extractor(shapes, [cw.Tap("conv4")], with_outputs=False)

    def strength(images):
        out = ext(shapes.preprocessing(np.asarray(images, np.float32) / 255.0), training=False)
        return np.asarray(out[0] if isinstance(out, list) else out).mean(axis=(1, 2))

    seen = strength(np.rint(data.images * 255))
    ratios = []
    for c in range(8):
        ours = strength(half.image(c)[None])[0, c]
        theirs = strength(full.image(c)[None])[0, c]
        assert (seen[:, c] < ours).mean() >= 0.95, c
        ratios.append(ours / theirs)
        exact = seen[:, c]
        kept = exact[half.unit(c).example_indices]
        assert kept.min() >= np.sort(exact)[::-1][5] - RANK_TIES * np.abs(exact).max()
    assert np.median(ratios) > 0.8, ratios
