"""The attribution registry and the methods added to it, each checked against its
definition (computed here by other means), not against itself."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine.attribution.gradients import rule_twin

from .helpers import assert_same_state, model_state


@pytest.fixture(scope="module")
def images():
    batch = cw.generate_shapes(6, seed=5)
    return batch.images, batch.labels


def _logit(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The embedded model's logits, computed from its layers by hand (before softmax)."""
    h = tf.constant(x, tf.float32)
    for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4", "gap"):
        h = model.get_layer(name)(h)
    dense = model.get_layer("predictions")
    return (tf.matmul(h, dense.kernel) + dense.bias).numpy()


# ------------------------------------------------------------------------------ registry
def test_registry_has_at_least_ten_methods_each_described():
    records = cw.attribution_methods()
    assert len(records) >= 10 and len({m.name for m in records}) == len(records)
    assert [m.name for m in records] == cw.method_names()
    for m in records:
        assert (
            m.label
            and m.description
            and m.citation
            and m.kind in ("gradient", "cam", "perturbation")
        )
        for p in m.params:
            if p.kind in ("int", "float") and p.default is not None:
                assert p.check(p.default, m.name) == p.default
    assert cw.method_info("score_cam").needs_layer and cw.method_info("rise").long


def test_explain_matches_the_named_functions(shapes, images):
    img = images[0][0]
    np.testing.assert_array_equal(
        cw.explain(shapes, img, "grad_cam").heatmap, cw.grad_cam(shapes, img).heatmap
    )
    pp = cw.explain(shapes, img, "grad_cam++", target=2, layer="conv3")
    ref = cw.grad_cam(shapes, img, 2, layer="conv3", plus_plus=True)
    assert pp.method == "grad_cam++" and pp.class_index == 2 and pp.layer == "conv3"
    np.testing.assert_array_equal(pp.raw, ref.raw)
    sg = cw.explain(shapes, img, "smoothgrad", samples=5, seed=1)
    np.testing.assert_array_equal(sg.raw, cw.saliency(shapes, img, smooth=5, seed=1).raw)
    assert sg.params == {"samples": 5, "noise": 0.15, "seed": 1}


@pytest.mark.parametrize(
    "call, message",
    [
        (dict(method="gradcam"), "unknown attribution method 'gradcam': use one of saliency"),
        (dict(method="rise", masks=5), "rise: masks must be in [10, 20000], got 5"),
        (dict(method="integrated_gradients", steps=2.5), "steps is a whole number in [2, 1024]"),
        (dict(method="rise", keep=1.5), "keep must be in [0.05, 0.95]"),
        (dict(method="occlusion", fill="pink"), "fill must be one of 'mean', 'blur'"),
        (dict(method="saliency", steps=4), "saliency takes no parameter 'steps'"),
        (dict(method="score_cam", layer="gap"), "needs a layer with a spatial output"),
    ],
)
def test_bad_calls_name_the_problem(shapes, images, call, message):
    with pytest.raises(cw.CnnvizError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cw.explain(shapes, images[0][0], **call)


def test_cam_methods_on_a_model_without_a_spatial_layer():
    inputs = keras.Input((8, 8, 3))
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
    flat = keras.Model(inputs, out)
    img = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    for name in ("score_cam", "layer_cam", "guided_grad_cam"):
        with pytest.raises(cw.CnnvizError, match="2-D spatial"):
            cw.explain(flat, img, name)
    assert cw.explain(flat, img, "integrated_gradients", steps=8).heatmap.shape == (8, 8)


# --------------------------------------------------------------------- gradient family
def test_integrated_gradients_completeness_within_one_percent(shapes, images):
    for img in images[0][:4]:
        for baseline in ("black", "blur"):
            r = cw.explain(shapes, img, "integrated_gradients", steps=64, baseline=baseline)
            base = np.zeros_like(img) if baseline == "black" else None
            if base is None:  # the blurred baseline: recover it from the attributions' path
                from cnnviz_widgets.engine.attribution.shared import fill_image

                base = fill_image(img, "blur", 8)[0]
            c = r.class_index
            gap = _logit(shapes.model, img[None])[0, c] - _logit(shapes.model, base[None])[0, c]
            assert abs(r.raw.sum() - gap) <= 0.01 * abs(gap), (baseline, r.raw.sum(), gap)


def _hand_gradient(model, img, c):
    x = tf.constant(img[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        score = tf.constant(0.0)
        h = x
        for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4", "gap"):
            h = model.get_layer(name)(h)
        dense = model.get_layer("predictions")
        score = (tf.matmul(h, dense.kernel) + dense.bias)[0, c]
    return tape.gradient(score, x)[0].numpy()


def test_gradient_x_input_vargrad_and_squaregrad_by_definition(shapes, images):
    img = images[0][1]
    gi = cw.explain(shapes, img, "gradient_x_input")
    g = _hand_gradient(shapes.model, img, gi.class_index)
    np.testing.assert_allclose(gi.raw, g * img, rtol=1e-4, atol=1e-6)
    kw = dict(samples=12, noise=0.2, seed=4)
    mean = cw.explain(shapes, img, "smoothgrad", **kw).raw  # the mean noisy gradient
    var = cw.explain(shapes, img, "vargrad", **kw).raw
    square = cw.explain(shapes, img, "squaregrad", **kw).raw
    scale = float(np.abs(square).max())
    np.testing.assert_allclose(square, var + mean**2, atol=1e-4 * scale)
    assert (var >= 0).all() and var.max() > 0


def _guided_by_hand(model, img, c):
    """Guided backprop on the embedded model, written out layer by layer with its own
    ReLU rule (the model's convolutions are called without their activation)."""

    @tf.custom_gradient
    def relu(x):
        def grad(dy):
            return tf.where((x > 0) & (dy > 0), dy, tf.zeros_like(dy))

        return tf.maximum(x, 0.0), grad

    x = tf.constant(img[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        h = x
        for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4"):
            layer = model.get_layer(name)
            if isinstance(layer, keras.layers.Conv2D):
                h = tf.nn.conv2d(h, layer.kernel, 1, "SAME") + layer.bias
                h = relu(h)
            else:
                h = layer(h)
        h = tf.reduce_mean(h, axis=(1, 2))
        dense = model.get_layer("predictions")
        score = (tf.matmul(h, dense.kernel) + dense.bias)[0, c]
    return tape.gradient(score, x)[0].numpy()


def test_guided_backprop_by_definition_and_the_model_untouched(images):
    loaded = cw.load_model("shapes")  # its own copy: graph nodes are compared too
    model = loaded.model
    assert all(model.get_layer(n).get_config()["padding"] == "same" for n in ("conv1", "conv4"))
    before = model_state(model)
    activations = {layer.name: getattr(layer, "activation", None) for layer in model.layers}
    nodes = {layer.name: len(layer._inbound_nodes) for layer in model.layers}
    img = images[0][2]
    gb = cw.explain(loaded, img, "guided_backprop")
    ref = _guided_by_hand(model, img, gb.class_index)
    np.testing.assert_allclose(gb.raw, ref, rtol=1e-3, atol=1e-6 * np.abs(ref).max())
    plain = _hand_gradient(model, img, gb.class_index)
    assert not np.allclose(gb.raw, plain, atol=1e-3 * np.abs(plain).max())  # the rule acts
    ggc = cw.explain(loaded, img, "guided_grad_cam")
    cam = cw.grad_cam(loaded, img).heatmap
    np.testing.assert_allclose(ggc.raw, ref * cam[..., None], rtol=1e-3, atol=1e-6)
    cw.explain(loaded, img, "deconvnet")
    assert_same_state(before, model_state(model))
    assert {layer.name: getattr(layer, "activation", None) for layer in model.layers} == activations
    assert {layer.name: len(layer._inbound_nodes) for layer in model.layers} == nodes
    twin, count = rule_twin(loaded, "guided")
    assert count == 4 and twin.model is not model
    assert all(a is not b for a, b in zip(twin.model.layers, model.layers))


# -------------------------------------------------------------------------- CAM family
def _conv4(model, img, c):
    x = tf.constant(img[None])
    with tf.GradientTape() as tape:
        h = x
        for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "conv4"):
            h = model.get_layer(name)(h)
        tape.watch(h)
        dense = model.get_layer("predictions")
        score = (tf.matmul(tf.reduce_mean(h, axis=(1, 2)), dense.kernel) + dense.bias)[0, c]
    return h[0].numpy(), tape.gradient(score, h)[0].numpy()


def test_layer_cam_equals_its_elementwise_definition_on_conv4(shapes, images):
    for img, label in zip(*images):
        r = cw.explain(shapes, img, "layer_cam", target=int(label), layer="conv4")
        a, g = _conv4(shapes.model, img, int(label))
        ref = np.zeros(a.shape[:2], np.float64)
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                for k in range(a.shape[2]):
                    ref[i, j] += max(g[i, j, k], 0.0) * a[i, j, k]
        np.testing.assert_allclose(r.raw, ref, rtol=1e-4, atol=1e-6 * abs(ref).max())
        assert r.layer == "conv4" and r.heatmap.max() == pytest.approx(1.0)


def test_score_cam_batched_equals_a_plain_loop_over_channels(shapes, images):
    img, label = images[0][3], int(images[1][3])
    r = cw.explain(shapes, img, "score_cam", target=label, batch_size=7, precision="float32")
    a, _ = _conv4(shapes.model, img, label)
    weights = []
    for k in range(a.shape[-1]):  # one channel, one masked image, one prediction
        up = tf.image.resize(a[None, :, :, k : k + 1], (64, 64), method="bilinear")[0, ..., 0]
        up = up.numpy()
        span = up.max() - up.min()
        mask = (up - up.min()) / span if span > 0 else np.zeros_like(up)
        probs = shapes.model(img[None] * mask[None, ..., None], training=False).numpy()
        weights.append(probs[0, label])
    ref = a @ np.array(weights)
    np.testing.assert_allclose(r.weights, weights, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.raw, ref, rtol=1e-4, atol=1e-6)


def test_methods_inside_a_nested_model(images):
    flat = cw.load_model("shapes").model
    base = keras.Model(flat.input, flat.get_layer("conv4").output, name="base")
    outer = keras.Sequential(
        [keras.Input((64, 64, 3)), base, flat.get_layer("gap"), flat.get_layer("predictions")]
    )
    img = images[0][0]
    nested = cw.explain(outer, img, "score_cam", precision="float32")
    ref = cw.explain(flat, img, "score_cam", precision="float32")
    assert nested.layer == "base/conv4"
    np.testing.assert_allclose(nested.raw, ref.raw, rtol=1e-4, atol=1e-6)
    for name, kw in [("guided_backprop", {}), ("layer_cam", {"layer": "conv3"})]:
        ref = cw.explain(flat, img, name, **kw)
        kw = {"layer": "base/conv3"} if kw else {}
        nested = cw.explain(outer, img, name, **kw)
        np.testing.assert_allclose(
            nested.raw, ref.raw, rtol=1e-4, atol=1e-6 * np.abs(ref.raw).max()
        )


# --------------------------------------------------------------------------------- RISE
def test_rise_same_seed_same_map_whatever_the_batch(shapes, images):
    img = images[0][4]
    a = cw.explain(shapes, img, "rise", masks=120, seed=3, precision="float32")
    b = cw.explain(shapes, img, "rise", masks=120, seed=3, batch_size=50, precision="float32")
    c = cw.explain(shapes, img, "rise", masks=120, seed=4, precision="float32")
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-5)
    assert not np.allclose(a.raw, c.raw)


def test_rise_is_the_weighted_mean_of_its_masks(shapes, images):
    from cnnviz_widgets.engine.attribution.perturbation import _rise_fns, rise_masks

    img = images[0][0]
    r = cw.explain(shapes, img, "rise", masks=40, cells=5, seed=2, precision="float32")
    grids, shifts = rise_masks(40, (64, 64), 5, 0.5, 2)
    masks = _rise_fns(shapes, 5).masks(grids, shifts).numpy()
    assert masks.shape == (40, 64, 64) and 0 <= masks.min() and masks.max() <= 1
    probs = shapes.model(img[None] * masks[..., None], training=False).numpy()[:, r.class_index]
    np.testing.assert_allclose(r.raw, np.tensordot(probs, masks, 1) / (40 * 0.5), rtol=1e-4)


# ------------------------------------------------------------------------------- jobs
def test_a_long_method_as_a_job_reports_and_stops(shapes, images):
    job = cw.attribution_job(shapes, images[0][0], "rise", masks=600, batch_size=100)
    seen = [p.done for p in job]
    assert seen[-1] == 600 and job.result.method == "rise" and len(seen) >= 6
    job = cw.attribution_job(shapes, images[0][0], "rise", masks=600, batch_size=100)
    for p in job:
        if p.done >= 100:
            job.stop()
    assert job.stopped and job.result is None and job.error is None
    with pytest.raises(cw.CnnvizError, match="masks must be"):
        cw.attribution_job(shapes, images[0][0], "rise", masks=0)  # checked before it runs


def test_forward_heavy_methods_take_a_precision(shapes, images):
    img = images[0][1]
    for name, kw in [("score_cam", {}), ("rise", {"masks": 200})]:
        exact = cw.explain(shapes, img, name, precision="float32", **kw)
        fast = cw.explain(shapes, img, name, precision="bfloat16", **kw)
        assert (exact.precision, fast.precision) == ("float32", "bfloat16")
        assert np.corrcoef(exact.heatmap.ravel(), fast.heatmap.ravel())[0, 1] > 0.99
    with pytest.raises(cw.CnnvizError, match="unknown precision 'fp8'"):
        cw.explain(shapes, img, "rise", precision="fp8")
