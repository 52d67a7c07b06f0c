"""The independent judge: a classifier of the shapes classes that is NOT the embedded model.

It answers "does this picture show a circle?" for the activation-maximization pictures
(tests/test_pictures.py, bench/bench_pictures.py).  Built by ``scripts/train_judge.py``
(a different architecture, seeds and data pipeline from ``scripts/train_shapes_model.py``;
see that script and ``tests/data/judge.json``); its weights stay in ``tests/data`` and are
never shipped in the package, never used to train the embedded model or to choose its
weights.

    from tests.judge import load_judge, judge_count
    count, names = judge_count(result.images, list(range(9)))
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import keras
import numpy as np

from cnnviz_widgets.engine.model.shapes import CLASS_NAMES

DATA = Path(__file__).resolve().parent / "data"
WEIGHTS = DATA / "judge.weights.h5"
META = DATA / "judge.json"
SIZE = 64


def build_judge(n_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """The judge's architecture (untrained).

    Plain VGG-like CNN, on purpose unlike the embedded model (7x7 first layer, no batch
    norm, global average pooling): a strided 3x3 stem, 3x3 convolutions with batch norm,
    max pooling, and a flattened (position-aware) dense head with dropout.
    """
    layers = keras.layers

    def conv(x, filters, name, strides=1):
        x = layers.Conv2D(
            filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
        )(x)
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(name=f"{name}_relu")(x)

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = conv(inputs, 24, "stem", strides=2)  # 32x32
    x = conv(x, 32, "b1a")
    x = layers.MaxPooling2D(2, name="b1_pool")(x)  # 16x16
    x = conv(x, 48, "b2a")
    x = conv(x, 48, "b2b")
    x = layers.MaxPooling2D(2, name="b2_pool")(x)  # 8x8
    x = conv(x, 96, "b3a")
    x = layers.MaxPooling2D(2, name="b3_pool")(x)  # 4x4
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="judge_probs")(x)
    return keras.Model(inputs, outputs, name="judge")


@lru_cache(maxsize=1)
def load_judge() -> keras.Model:
    """The trained judge (cached: one copy per process)."""
    if not WEIGHTS.exists():
        raise FileNotFoundError(f"{WEIGHTS} is missing: run python scripts/train_judge.py")
    model = build_judge()
    model.load_weights(str(WEIGHTS))
    return model


def judge_metadata() -> dict:
    """How the judge was built (written by scripts/train_judge.py)."""
    return json.loads(META.read_text())


def judge_probs(images) -> np.ndarray:
    """``(n, 9)`` class probabilities for uint8 (0..255) or float (0..1) RGB images."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.ndim != 4 or x.shape[1:] != (SIZE, SIZE, 3):
        raise ValueError(f"the judge takes (n, {SIZE}, {SIZE}, 3) images, got {x.shape}")
    return np.asarray(load_judge().predict(x, batch_size=64, verbose=0))


def judge_count(images_uint8, labels) -> tuple[int, list[str]]:
    """How many images the judge names as their intended class.

    Returns ``(count, predicted_names)``: the number of images whose most probable class
    is the label, and the judge's class name for every image.
    """
    labels = np.asarray(labels, dtype=int)
    probs = judge_probs(images_uint8)
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} images but {len(labels)} labels")
    pred = probs.argmax(1)
    return int(np.sum(pred == labels)), [CLASS_NAMES[i] for i in pred]
