"""The recipe follows the model (preset="auto"), the robust recipe's seeds and L2 steps,
and runs stuck on a plateau."""

import warnings
from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model.shapes import CLASS_NAMES
from cnnviz_widgets.engine.optvis import recipes, step
from cnnviz_widgets.engine.optvis.seeds import SeedStatistics, _downsample, align_objects

# the classes scripts/shapes_metadata.py turns to a common orientation (TURNED)
TURNED = [CLASS_NAMES.index(name) for name in ("square", "triangle", "cross")]


def _tiny(name="tiny_user_model", unreachable: int | None = None):
    """A small user model (softmax output); class ``unreachable`` has a logit of -60
    whatever the image (so its probability cannot rise: a plateau)."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, out, name=name)
    if unreachable is not None:
        kernel, bias = model.get_layer("probs").get_weights()
        kernel[:, unreachable] = 0.0
        bias[unreachable] = -60.0
        model.get_layer("probs").set_weights([kernel, bias])
    return model


def test_auto_follows_the_model(shapes):
    res = cw.visualize(shapes, [0, 1], steps=2)
    assert res.recipe == "robust"
    assert "declares it in its metadata" in res.recipe_reason
    standard = cw.visualize(cw.load_model("shapes-standard"), 0, steps=2)
    assert standard.recipe == "lucid" and "declares no recipe" in standard.recipe_reason
    user = cw.visualize(_tiny(), 0, steps=2)
    assert user.recipe == "lucid" and "declares no recipe" in user.recipe_reason
    asked = cw.visualize(shapes, 0, preset="lucid", steps=2)
    assert asked.recipe == "lucid" and asked.recipe_reason == "asked for: preset='lucid'"


def test_register_recipe_by_object_and_by_name():
    model = _tiny("registered_model")
    try:
        cw.register_recipe(model, "robust", reason="trained with PGD")
        res = cw.visualize(model, [0, 1], steps=2)
        assert res.recipe == "robust"
        # no seed statistics registered or shipped: it starts from noise, and says so
        assert (
            res.recipe_reason
            == "trained with PGD; the model has no seed statistics, so it starts from noise"
        )
        cw.unregister_recipe(model)
        assert cw.visualize(model, 0, steps=2).recipe == "lucid"
        cw.register_recipe("registered_model", "keras-vis")
        res = cw.visualize(model, 0, steps=2)
        assert res.recipe == "keras-vis" and "register_recipe" in res.recipe_reason
        # the object's registration comes before the name's
        cw.register_recipe(model, "maco")
        assert cw.visualize(model, 0, steps=2).recipe == "maco"
    finally:
        cw.unregister_recipe(model)
        cw.unregister_recipe("registered_model")


def test_register_recipe_refuses_bad_input():
    with pytest.raises(cw.CnnvizError, match="not 'auto'"):
        cw.register_recipe("x", "auto")
    with pytest.raises(cw.CnnvizError, match="unknown preset 'robsut'"):
        cw.register_recipe("x", "robsut")
    with pytest.raises(cw.CnnvizError, match=r"keras\.Model, a LoadedModel or a model name"):
        cw.register_recipe(42, "robust")
    with pytest.raises(cw.CnnvizError, match="seeds must be a SeedStatistics"):
        cw.register_recipe("x", "robust", seeds={"means": []})


def test_registered_seeds_are_where_the_run_starts():
    model = _tiny("seeded_model")
    images = np.zeros((30, 16, 16, 3), np.float32)
    labels = np.repeat([0, 1, 2], 10)
    images[labels == 1] = 1.0  # class 1: white images; the others black
    images += np.random.default_rng(0).uniform(0, 0.05, images.shape).astype(np.float32)
    seeds = cw.seed_statistics(images, labels, 3, resolution=4, rank=2)
    try:
        cw.register_recipe(model, "robust", seeds=seeds)
        start = cw.visualize(model, [0, 1], steps=0).images.astype(np.float32) / 255.0
    finally:
        cw.unregister_recipe(model)
    assert start[0].mean() < 0.1 and start[1].mean() > 0.9


def test_shipped_seed_statistics_describe_fresh_training_images(shapes):
    """The class means and principal variances in the metadata match those of images the
    generator draws now (another seed than the one they were measured on), each moved so
    its object is at the centre (squares, triangles, crosses also turned), as
    scripts/shapes_metadata.py measures them."""
    stats = recipes.seeds_of(shapes)
    assert isinstance(stats, SeedStatistics) and stats.n_classes == len(CLASS_NAMES)
    data = cw.generate_shapes(2700, seed=4242)
    aligned = align_objects(data.images, data.masks, np.isin(data.labels, TURNED))
    low = _downsample(aligned, stats.resolution).reshape(len(data.images), -1)
    for k in range(stats.n_classes):
        x = low[data.labels == k]
        err = np.abs(x.mean(axis=0) - stats.means[k]).mean()
        assert err < 0.03, CLASS_NAMES[k]
        # the variance of fresh images along each stored direction: the stored variance
        comps = stats.components[k]
        stored = (comps**2).sum(axis=1)
        fresh = (((x - stats.means[k]) @ (comps / np.sqrt(stored)[:, None]).T) ** 2).mean(0)
        assert 0.7 < fresh.sum() / stored.sum() < 1.3, CLASS_NAMES[k]
    again = SeedStatistics.from_json(stats.to_json())
    np.testing.assert_allclose(again.means, stats.means, atol=1e-3)
    with pytest.raises(cw.CnnvizError, match="do not fit"):
        SeedStatistics.from_json({**stats.to_json(), "resolution": 7})


def _square(theta: float, cx: float, cy: float, size: int = 48, r: float = 9.0):
    """An image of a red square turned by ``theta`` at ``(cx, cy)`` on a green ramp, and
    its mask."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = xx - cx, yy - cy
    u = np.cos(theta) * x + np.sin(theta) * y
    v = -np.sin(theta) * x + np.cos(theta) * y
    d = np.maximum(np.abs(u), np.abs(v)) - r
    alpha = np.clip(0.5 - d, 0, 1)[..., None]
    ramp = np.stack([0 * xx, 0.3 + 0.4 * xx / size, 0 * xx], -1)
    return ramp * (1 - alpha) + np.array([0.9, 0.1, 0.1]) * alpha, d < 0


def test_align_objects_centres_an_object_and_turns_it_on_request():
    cases = [(0.1, 14.0, 20.0), (0.6, 30.0, 16.0), (1.3, 22.0, 31.0), (0.0, 23.5, 23.5)]
    images, masks = map(np.array, zip(*[_square(*c) for c in cases]))
    turned = align_objects(images, masks, True)
    for other in turned[1:]:  # the same square, wherever it was and however turned
        assert np.abs(other - turned[0])[..., 0].mean() < 0.01
    # a square stands on a corner: its widest row is its centre's, as wide as a diagonal
    red = turned[0][..., 0] > 0.5
    assert abs(red[23].sum() - 2 * 9 * np.sqrt(2)) <= 2 and red[13].sum() < red[23].sum() / 2
    moved = align_objects(images, masks, False)  # moved, not turned
    for m in moved:
        assert m[22:26, 22:26, 0].min() > 0.8  # the object is at the centre
    assert np.abs(moved[1] - moved[2])[..., 0].mean() > 0.02  # still turned differently
    empty = align_objects(images[:1], np.zeros_like(masks[:1]), True)
    np.testing.assert_allclose(empty, images[:1], atol=1e-5)  # no object: unchanged
    with pytest.raises(cw.CnnvizError, match="do not fit"):
        align_objects(images, masks[:, :10])
    with pytest.raises(cw.CnnvizError, match="turn needs the objects' masks"):
        cw.seed_statistics(images, np.zeros(4, int), 1, rank=2, turn=[0])


def test_seed_statistics_with_masks_draw_one_centred_object():
    """Objects anywhere: without masks a seed's mean is a faint blur, with them it is the
    object, centred, as strong as the objects are."""
    rng = np.random.default_rng(0)
    cases = [(rng.uniform(0, 1.5), *rng.uniform(12, 36, 2)) for _ in range(40)]
    images, masks = map(np.array, zip(*[_square(*c) for c in cases]))
    labels = np.zeros(40, int)
    blur = cw.seed_statistics(images, labels, 1, resolution=8, rank=4)
    one = cw.seed_statistics(images, labels, 1, resolution=8, rank=4, masks=masks, turn=[0])
    centre = lambda s: s.means[0].reshape(8, 8, 3)[3:5, 3:5, 0].mean()  # noqa: E731
    assert centre(one) > 0.85 and centre(blur) < 0.6


def test_seed_directions_are_stored_as_8_bit_integers_within_their_scale():
    rng = np.random.default_rng(1)
    comps = rng.normal(0, 0.1, (2, 3, 12))
    stats = SeedStatistics(2, 3, rng.uniform(0, 1, (2, 12)), comps, np.array([0.01, 0.02]))
    data = stats.to_json()
    assert set(data["components"]) == {"int8_base64", "shape", "scale"}
    again = SeedStatistics.from_json(data).components
    err = np.abs(again - comps).max(axis=-1) / np.abs(comps).max(axis=-1)
    assert (err <= 0.5 / 127 + 1e-6).all()
    # a file written with decimals (before) still loads
    legacy = {**data, "components": np.round(comps, 3).tolist()}
    np.testing.assert_allclose(SeedStatistics.from_json(legacy).components, comps, atol=6e-4)
    broken = {**data, "components": {**data["components"], "int8_base64": "not base64!"}}
    with pytest.raises(cw.CnnvizError, match="unreadable"):
        SeedStatistics.from_json(broken)
    short = {**data, "components": {**data["components"], "shape": [2, 3, 13]}}
    with pytest.raises(cw.CnnvizError, match="unreadable"):
        SeedStatistics.from_json(short)


def _log_p(model, images, classes):
    probs = model.model.predict(images, verbose=0)
    return np.log(probs[np.arange(len(classes)), classes] + 1e-12)


def test_a_class_picture_starts_from_the_draw_its_model_scores_highest(shapes):
    """``seed_draws``: the run starts from the best of its draws for each class by the
    model's own log-probability (its first draw is the one-draw run's start, so it can
    only gain); channel pictures, with no class to score, draw once."""
    classes = np.arange(9)
    one = replace(cw.PRESETS["robust"], seed_draws=1)
    many = replace(cw.PRESETS["robust"], seed_draws=16)
    assert cw.PRESETS["robust"].seed_draws == 16
    first = cw.visualize(shapes, classes, steps=0, seed=3, preset=one).images
    best = cw.visualize(shapes, classes, steps=0, seed=3, preset=many).images
    gain = _log_p(shapes, best / 255.0, classes) - _log_p(shapes, first / 255.0, classes)
    assert (gain >= -1e-3).all() and (gain > 0.01).sum() >= 3, gain
    unit = cw.objectives.channel("conv2", [0, 1, 2])
    a = cw.visualize(shapes, unit, steps=0, seed=3, preset=one).images
    b = cw.visualize(shapes, unit, steps=0, seed=3, preset=many).images
    np.testing.assert_array_equal(a, b)
    with pytest.raises(cw.CnnvizError, match="seed_draws must be an int >= 1"):
        replace(cw.PRESETS["robust"], seed_draws=0)


def test_robust_recipe_stays_near_its_seed_in_one_compiled_step(shapes):
    """The image starts from the class seed, stays within the preset's L2 radius of it and
    in [0, 1]; another class or seed reuses the traced step."""
    p = cw.PRESETS["robust"]
    start = cw.visualize(shapes, [2, 3], steps=0, seed=5).images.astype(np.float32) / 255.0
    before = step.step_tracing_count(shapes)
    res = cw.visualize(shapes, [2, 3], steps=20, seed=5)
    end = res.images.astype(np.float32) / 255.0
    rms = np.sqrt(((end - start) ** 2).mean(axis=(1, 2, 3)))
    assert (rms > 0.2 * p.radius).all(), rms  # it moved
    assert (rms <= p.radius + 1.0 / 255).all(), rms  # within the ball (+ uint8 rounding)
    assert step.step_tracing_count(shapes) <= before + 1
    traced = step.step_tracing_count(shapes)
    cw.visualize(shapes, [7, 8], steps=3, seed=9)
    assert step.step_tracing_count(shapes) == traced


def test_a_run_on_a_plateau_restarts_and_says_when_it_stays_stuck():
    model = _tiny("plateau_model", unreachable=1)
    with pytest.warns(RuntimeWarning, match=r"image\(s\) \[1\] stayed on a plateau"):
        res = cw.visualize(model, [0, 1, 2], steps=40, seed=0)
    assert res.restarted == [1] and res.stuck == [1]
    assert "even after a restart" in res.stuck_message()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = cw.visualize(model, [0, 2], steps=40, seed=0)
    assert ok.stuck == []


@pytest.mark.slow
def test_the_standard_models_plateau_is_escaped():
    """lucid, 128 steps, on the standard model: cross and checkerboard start on a plateau
    (probability ~0.001 a quarter in); the restart reaches them."""
    m = cw.load_model("shapes-standard")
    res = cw.visualize(m, list(range(9)), steps=128, seed=0)
    assert res.recipe == "lucid"
    assert {4, 7} <= set(res.restarted), res.restarted
    x = tf.constant(res.images.astype(np.float32) / 255.0)
    p = m.model.predict(x, verbose=0)[np.arange(9), np.arange(9)]
    assert p[[4, 7]].min() >= 0.9, p.round(3)
    assert res.stuck == []


def test_check_settings_resolves_auto_for_a_model(shapes):
    assert cw.check_settings("auto", model=shapes)["lr"] == cw.PRESETS["robust"].lr
    assert cw.check_settings("auto")["lr"] == cw.PRESETS["lucid"].lr


def test_the_atlas_follows_the_models_recipe(shapes, tmp_path):
    atlas = cw.open_atlas(shapes, "conv2", store=tmp_path)
    assert atlas._plan.preset == "robust"
    assert atlas._plan.vis_settings["preset"] == "robust"
    assert "metadata" in atlas._plan.recipe_reason
