"""The two embedded models: "shapes-robust" (adversarially trained) and "shapes-standard".

Same architecture, same generator, same classes; what differs is how they were trained,
and so what their first-layer filters and their gradients look like.  ``"shapes"``
loads the robust one (``embedded.DEFAULT_VARIANT``).
"""

import math

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.layers.filters import kernel_array
from cnnviz_widgets.engine.layers.selectivity import CLEAR_ENERGY, kernel_selectivity, v1_bank
from cnnviz_widgets.engine.model.adversarial import adversarial_examples, robust_accuracy
from cnnviz_widgets.engine.model.embedded import (
    DEFAULT_VARIANT,
    SmoothColourKernels,
    build_shapes_cnn,
    shapes_metadata,
)
from cnnviz_widgets.engine.model.shapes import generate_shapes
from cnnviz_widgets.errors import CnnvizError


@pytest.fixture(scope="module")
def standard():
    return cw.load_model("shapes-standard")


@pytest.fixture(scope="module")
def robust():
    return cw.load_model("shapes-robust")


@pytest.fixture(scope="module")
def held_out():
    return generate_shapes(300, seed=777_001)


def test_both_variants_load_with_their_names(shapes, robust, standard):
    assert robust.name == "shapes-robust" and standard.name == "shapes-standard"
    assert cw.load_model("Shapes_Standard").name == "shapes-standard"
    assert [lay.name for lay in robust.model.layers] == [lay.name for lay in standard.model.layers]
    a = robust.model.get_layer("conv1").kernel.numpy()
    b = standard.model.get_layer("conv1").kernel.numpy()
    c = shapes.model.get_layer("conv1").kernel.numpy()
    assert a.shape == b.shape and not np.allclose(a, b)
    np.testing.assert_array_equal(c, a if DEFAULT_VARIANT == "robust" else b)
    assert "robust" in robust.source and "standard" in standard.source
    assert shapes_metadata("robust")["training"]["adversarial"]["eps"] > 0
    assert "adversarial" not in shapes_metadata("standard")["training"]


def _dead_and_clear(loaded, images):
    conv1 = keras.Model(loaded.model.inputs, loaded.model.get_layer("conv1").output)
    acts = conv1(loaded.preprocessing(images)).numpy()
    dead = [i for i in range(acts.shape[-1]) if acts[..., i].max() <= 0]
    prefs = kernel_selectivity(kernel_array(loaded.model.get_layer("conv1")))
    return dead, prefs


def test_robust_conv1_filters_are_edges_bars_and_blobs(robust, held_out):
    """No dead filter (each responds somewhere on 300 images) and a majority whose best
    grating, Gabor or colour-blob template explains at least half of the kernel's energy
    (random 7x7x3 kernels: 0.11 at the 99th percentile).

    Disclosed: the robust model's conv1 started from ``selectivity.v1_bank`` (edges, bars and
    colour blobs, no random draw) and was trained under ``SmoothColourKernels(4, 0.5)``;
    training kept the patterns (the next test checks how far each one moved)."""
    dead, prefs = _dead_and_clear(robust, held_out.images)
    assert not dead, f"dead conv1 filters: {dead}"
    clear = [p.index for p in prefs if p.clear]
    assert len(clear) > len(prefs) / 2, [(p.index, round(p.energy, 2)) for p in prefs]


def test_robust_conv1_start_is_disclosed_and_the_kernels_were_trained(robust):
    """The metadata says where conv1 started and how far training took each kernel from
    there (cosine); both agree with the shipped weights, and training did move them (none is
    its starting kernel, a few moved well away), so the filters are the network's own."""
    meta = shapes_metadata("robust")["training"]
    assert meta["conv1_init"] == "bank"
    kernel = kernel_array(robust.model.get_layer("conv1"))
    start = v1_bank(*kernel.shape[:2], kernel.shape[-1])  # the cosine is to the bank itself
    a, b = kernel.reshape(-1, kernel.shape[-1]), start.reshape(-1, kernel.shape[-1])
    cos = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
    np.testing.assert_allclose(cos, meta["conv1_cosine_to_start"], atol=2e-3)
    assert cos.max() < 0.995 and cos.min() < 0.9
    # the standard model's conv1 has nothing to do with the bank
    assert shapes_metadata("standard")["training"].get("conv1_init", "he") == "he"


def test_standard_conv1_filters_read_as_noise(standard, held_out):
    """The same measure on the texture-biased model: the lesson's contrast (and proof that
    the measure above can fail)."""
    dead, prefs = _dead_and_clear(standard, held_out.images)
    assert sum(p.clear for p in prefs) <= len(prefs) / 4
    assert dead  # some filters never fire


def test_kernel_selectivity_on_known_kernels():
    y, x = np.mgrid[0:7, 0:7] - 3.0
    vertical_edge = np.tanh(x)[..., None] * np.ones(3) / math.sqrt(3)
    blob = np.exp(-(x * x + y * y) / 4)[..., None] * np.array([1.0, 0, 0])
    noise = np.random.default_rng(0).standard_normal((7, 7, 3))
    kernels = np.stack([vertical_edge, blob, noise, np.zeros((7, 7, 3))], -1)
    edge, red, rand, zero = kernel_selectivity(kernels)
    assert edge.clear and edge.kind == "orientation" and edge.orientation == 90
    assert red.clear and red.kind == "colour" and red.colour == "red"
    assert not rand.clear and rand.energy < CLEAR_ENERGY
    assert zero.dead and not zero.clear
    with pytest.raises(CnnvizError, match="kernel_array"):
        kernel_selectivity(np.zeros((7, 7, 3)))


def test_smooth_colour_constraint_projects_and_does_not_make_noise_clear():
    """The training constraint: one colour times a smooth pattern, a norm floor, idempotent;
    and random kernels passed through it stay unclear (so a clear trained filter is the
    training's doing, not the projection's)."""
    project = SmoothColourKernels(frequencies=4, min_norm=0.5)
    rng = np.random.default_rng(3)
    raw = rng.standard_normal((7, 7, 3, 200)).astype("float32")
    raw[..., 0] *= 1e-3  # a filter shrunk to almost nothing is scaled back to the floor
    k = np.asarray(project(raw))
    np.testing.assert_allclose(np.asarray(project(k)), k, atol=1e-4)
    for f in range(5):
        singular = np.linalg.svd(k[..., f].reshape(49, 3), compute_uv=False)
        assert singular[1] < 1e-4 * singular[0]  # one colour direction
    taps = np.arange(7) + 0.5
    ripples = np.stack([np.cos(np.pi * taps * f / 7) for f in (4, 5, 6)])  # finer cosines
    assert np.abs(np.einsum("fy,yxcn->fxcn", ripples, k)).max() < 1e-4
    assert np.abs(np.einsum("fx,yxcn->yfcn", ripples, k)).max() < 1e-4
    assert np.abs(np.einsum("fy,yxcn->fxcn", ripples, raw)).max() > 1  # there were some
    norms = np.linalg.norm(k.reshape(-1, 200), axis=0)
    assert norms.min() >= 0.5 - 1e-4 and abs(norms[0] - 0.5) < 1e-3
    energies = np.array([p.energy for p in kernel_selectivity(k)])
    assert np.mean(energies >= CLEAR_ENERGY) <= 0.03, np.quantile(energies, [0.5, 0.99])
    # training-only: the constraint is part of a layer when asked, never of the shipped model
    trained = build_shapes_cnn(conv1_constraint=project)
    assert isinstance(trained.get_layer("conv1").kernel.constraint, SmoothColourKernels)
    assert cw.load_model("shapes-robust").model.get_layer("conv1").kernel.constraint is None


def test_adversarial_examples_stay_in_the_ball_and_hurt_the_standard_model(standard, held_out):
    x, y = held_out.images[:60], held_out.labels[:60]
    adv = adversarial_examples(standard, x, y, eps=1.0, steps=10)
    norms = np.sqrt(((adv - x) ** 2).sum((1, 2, 3)))
    assert adv.shape == x.shape and adv.min() >= 0 and adv.max() <= 1
    assert norms.max() <= 1.0 + 1e-4
    clean = standard.model(x).numpy()[np.arange(60), y]
    attacked = standard.model(adv).numpy()[np.arange(60), y]
    assert attacked.mean() < clean.mean() - 0.2
    with pytest.raises(CnnvizError, match="one label each"):
        adversarial_examples(standard, x, y[:3])
    with pytest.raises(CnnvizError, match="eps"):
        adversarial_examples(standard, x, y, eps=float("inf"))


def test_robust_model_resists_the_attack_it_was_trained_with(robust, standard, held_out):
    """PGD at the training budget with more steps than in training, on images training never
    drew (bench/bench_robustness.py, 1000 images, PGD-20: 0.854 against 0.139)."""
    eps = shapes_metadata("robust")["training"]["adversarial"]["eps"]
    x, y = held_out.images[:200], held_out.labels[:200]
    hard = robust_accuracy(robust, x, y, eps=eps, steps=10)
    plain = robust_accuracy(standard, x, y, eps=eps, steps=10)
    assert hard >= 0.7 and hard > plain + 0.4, (hard, plain)
