"""Faithfulness metrics and the randomization test: against Quantus (the field's metrics
library, a test dependency only) on the same images, maps and settings, and against
their definitions computed by hand."""

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.attribution.metrics import _baseline, saliency_map

from .helpers import assert_same_state, model_state

quantus = pytest.importorskip("quantus")


@pytest.fixture(scope="module")
def data(shapes):
    batch = cw.generate_shapes(6, seed=7)
    results = [
        cw.explain(shapes, img, m, target=int(label))
        for img, label, m in zip(
            batch.images, batch.labels, ["integrated_gradients", "grad_cam", "rise"] * 2
        )
    ]
    return batch, results


def _untied(results):
    """The maps the curves rank by, with ties broken by a tiny fixed jitter (Quantus
    sorts with numpy's unstable argsort, so tied pixels may go in another order)."""
    maps = np.stack([saliency_map(r) for r in results]).astype(np.float64)
    jitter = np.random.default_rng(0).random(maps.shape)
    return maps + jitter * 1e-7 * maps.max(axis=(1, 2), keepdims=True)


def test_deletion_equals_quantus_pixel_flipping(shapes, data):
    batch, results = data
    maps = _untied(results)
    # Quantus flips channel entries: 128 per step on a 64x64x3 image, so every third of
    # its steps has removed whole pixels (128 more), the points of our 32-step curve
    metric = quantus.PixelFlipping(
        features_in_step=128, perturb_baseline=0.0, normalise=False, disable_warnings=True
    )
    q = np.asarray(
        metric(
            model=shapes.model, x_batch=batch.images, y_batch=batch.labels,
            a_batch=maps[:, None].astype(np.float32), channel_first=False, softmax=True,
        )
    )  # fmt: skip
    for i, img in enumerate(batch.images):
        curve = cw.deletion(shapes, img, maps[i], int(batch.labels[i]), steps=32, baseline="zero")
        np.testing.assert_allclose(curve.scores[1:], q[i][2::3], atol=1e-5)
        assert curve.kind == "deletion" and curve.fractions[0] == 0 and curve.fractions[-1] == 1


def test_insertion_by_hand(shapes, data):
    _, results = data
    r = results[1]
    for baseline in ("blur", "mean", "zero"):
        curve = cw.insertion(shapes, None, r, steps=8, baseline=baseline)
        base = _baseline(r.image, baseline)
        order = np.argsort(-saliency_map(r).ravel(), kind="stable")
        xs = []
        for f in curve.fractions:
            keep = np.zeros(r.image.shape[:2], bool).ravel()
            keep[order[: round(f * keep.size)]] = True
            xs.append(np.where(keep.reshape(r.image.shape[:2])[..., None], r.image, base))
        probs = shapes.model.predict(np.stack(xs), verbose=0)[:, r.class_index]
        np.testing.assert_allclose(curve.scores, probs, atol=1e-5)
        assert curve.auc == pytest.approx(np.trapezoid(probs, curve.fractions), abs=1e-5)


def test_pointing_game_and_relevance_mass_equal_quantus(data):
    batch, results = data
    heat = np.stack([r.heatmap for r in results])
    masks = batch.masks[:, None].astype(np.float32)
    kw = dict(x_batch=batch.images, y_batch=batch.labels, a_batch=heat[:, None], s_batch=masks)
    kw.update(channel_first=False, model=None)
    game = quantus.PointingGame(normalise=False, disable_warnings=True)(**kw)
    mass = quantus.RelevanceMassAccuracy(normalise=False, disable_warnings=True)(**kw)
    ours = [cw.pointing_game(r, m) for r, m in zip(results, batch.masks)]
    assert ours == [bool(g) for g in game]
    np.testing.assert_allclose(
        [cw.relevance_mass(r, m) for r, m in zip(results, batch.masks)], mass, rtol=1e-5
    )
    assert cw.pointing_game(np.eye(4), np.eye(4)[::-1]) is False
    assert cw.pointing_game(np.diag([0, 0, 1, 0]), np.eye(4))
    assert cw.pointing_game(np.diag([0, 0, 1, 0]), np.eye(4)[::-1], tolerance=1)


def test_mu_fidelity_by_hand(shapes, data):
    _, results = data
    r = results[0]
    value = cw.mu_fidelity(shapes, None, r, grid=8, subset=0.3, samples=40, seed=5)
    rng = np.random.default_rng(5)
    cells = (rng.random((40, 8, 8)) < 0.3).astype(np.float32)
    masks = np.kron(cells, np.ones((8, 8), np.float32))  # 64 px, 8 cells: 8 px each
    heat = saliency_map(r)
    from tests.test_attribution_methods import _logit

    full = _logit(shapes.model, r.image[None])[0, r.class_index]
    hidden = _logit(shapes.model, r.image[None] * (1 - masks[..., None]))[:, r.class_index]
    expected = np.corrcoef((masks * heat).sum(axis=(1, 2)), full - hidden)[0, 1]
    assert value == pytest.approx(expected, abs=1e-4)
    assert -1 <= value <= 1


def test_metric_bad_input(shapes, data):
    _, results = data
    with pytest.raises(cw.CnnvizError, match="unknown baseline 'grey'"):
        cw.deletion(shapes, None, results[0], baseline="grey")
    with pytest.raises(cw.CnnvizError, match=r"steps must be in \[1, 4096\]"):
        cw.insertion(shapes, None, results[0], steps=0)
    with pytest.raises(cw.CnnvizError, match=r"the map is \(3, 3\)"):
        cw.deletion(shapes, results[0].image, np.ones((3, 3)))


# ------------------------------------------------------------------- randomization test
def test_randomization_works_on_a_copy_and_saliency_falls_apart(data):
    batch, _ = data
    loaded = cw.load_model("shapes")
    before = model_state(loaded.model)
    res = cw.randomization_test(loaded, batch.images[0], ["saliency", "grad_cam"], seed=1)
    assert_same_state(before, model_state(loaded.model))
    assert res.steps == ["original", "predictions", "conv4", "conv3", "conv2", "conv1"]
    for name in res.methods:
        c = res.correlations[name]
        assert c.shape == (6,) and c[0] == 1.0 and len(res.maps[name]) == 6
    assert res.final("saliency") < 0.5  # the gradient depends on the learned weights
    assert "saliency" in res.table()
    # the maps it started from are the user's model's maps
    np.testing.assert_allclose(
        res.maps["grad_cam"][0], cw.grad_cam(loaded, batch.images[0]).heatmap, atol=1e-6
    )


def test_randomization_refuses_shared_layers_and_unknown_layers(data):
    batch, _ = data
    shared = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="twice")
    inputs = keras.Input((64, 64, 3))
    x = shared(shared(inputs))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, out)
    with pytest.raises(cw.CnnvizError, match="used more than once \\(twice\\)"):
        cw.randomization_test(model, batch.images[0], ["saliency"])
    with pytest.raises(cw.CnnvizError, match="cannot randomize 'gap'"):
        cw.randomization_test("shapes", batch.images[0], ["saliency"], layers=["gap"])


def test_spearman_equals_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    from cnnviz_widgets.engine.attribution.randomization import spearman

    rng = np.random.default_rng(3)
    for _ in range(5):
        a = np.round(rng.random((16, 16)), 1)  # many ties
        b = np.maximum(a + rng.normal(0, 0.3, a.shape), 0)  # ReLU'd: ties at 0
        assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert spearman(np.ones((4, 4)), rng.random((4, 4))) == 0.0
