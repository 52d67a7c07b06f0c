"""Do the class pictures of the embedded model show their class?  An independent judge says.

How the judge was built (``scripts/train_judge.py``, record in ``tests/data/judge.json``,
loader in ``tests/judge.py``): a classifier of the nine shapes classes with its own
architecture (strided 3x3 stem, 3x3 convolutions with batch norm, max pooling, flattened
dense head; the embedded model has a 7x7 first layer, no batch norm and global average
pooling), its own seeds (keras 1729, generator 7_100_000 and up; the embedded model's
script uses 0..N, 10_000 and 20261128) and its own data: the procedural generator's
images, augmented afresh every epoch with 1/f colour-noise textures on the background, on
the object and over everything, extra copies of the object, channel permutations, colour
gains, grey scale, inversion, contrast, brightness, blur, gaussian noise, flips and
transposition (with the stripes labels swapped), 8-bit quantization; plus object-free
images trained towards the uniform distribution.  Deterministic: the script rebuilds the
same weights file.

Honesty: the judge is never used to train the embedded model or to choose its weights;
it only scores the final pictures, here and in ``bench/bench_pictures.py``.
"""

import inspect

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.model.embedded import shapes_metadata
from cnnviz_widgets.engine.model.shapes import CLASS_NAMES, generate_shapes
from tests.judge import build_judge, judge_count, judge_metadata, judge_probs

# optvis' own default, not a copy of its name
DEFAULT_PRESET = inspect.signature(optvis.optimize).parameters["preset"].default
JUDGE_TEST_SEED = 7_654_321  # a generator seed scripts/train_judge.py never uses


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_judge_recognizes_the_default_class_pictures(shapes, seed):
    """``cw.visualize(load_model("shapes"), range(9), seed=s)`` with every other setting at
    its default (preset "auto": the robust model's own recipe), seeds 0, 1 and 2: the
    independent judge names all 9 pictures as their class."""
    n = len(CLASS_NAMES)
    res = cw.visualize(shapes, range(n), seed=seed)
    assert DEFAULT_PRESET == "auto" and res.recipe == "robust"
    count, names = judge_count(res.images, list(range(n)))
    missed = {CLASS_NAMES[c]: names[c] for c in range(n) if names[c] != CLASS_NAMES[c]}
    assert count == n, f"judge named {count}/9 (seed {seed}); missed: {missed}"


def test_judge_is_accurate_on_fresh_generated_images():
    meta = judge_metadata()["training"]
    used = {meta["pool_seed"], meta["augmentation_seed"], judge_metadata()["held_out"]["seed"]}
    assert JUDGE_TEST_SEED not in used
    batch = generate_shapes(500, seed=JUDGE_TEST_SEED)
    pred = judge_probs(batch.images).argmax(1)
    assert np.mean(pred == batch.labels) >= 0.99


def test_judge_does_not_name_noise_confidently():
    """Pictures of nothing must not be read as a class.  On 20 images of uniform pixel
    noise (i.i.d. per pixel and channel: training had gaussian noise over objects and 1/f
    textures without objects, never this) the judge's mean top probability stays below
    0.5, at most a quarter of them get a top probability above 0.9, and its confident
    calls are not all one class."""
    rng = np.random.default_rng(2024)
    noise = rng.integers(0, 256, (20, 64, 64, 3), dtype=np.uint8)
    probs = judge_probs(noise)
    top = probs.max(1)
    assert top.mean() < 0.5, np.round(top, 2)
    assert np.sum(top > 0.9) <= 5, np.round(top, 2)
    confident = probs.argmax(1)[top > 0.9]
    assert not (len(confident) == len(noise) and len(set(confident)) == 1)


def test_judge_is_not_the_embedded_model():
    """Another architecture and other seeds (the independence the docstring claims)."""
    judge = build_judge()
    kernels = {layer.kernel_size for layer in judge.layers if hasattr(layer, "kernel_size")}
    assert kernels == {(3, 3)}
    assert any("BatchNormalization" in type(layer).__name__ for layer in judge.layers)
    assert not any("GlobalAverage" in type(layer).__name__ for layer in judge.layers)
    meta, embedded = judge_metadata()["training"], shapes_metadata()["training"]
    seed = embedded.get("seed", 0)
    assert meta["keras_seed"] != seed
    assert meta["pool_seed"] > seed + embedded.get("epochs", 100) + 10_000
