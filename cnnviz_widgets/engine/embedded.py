"""The embedded "shapes" CNN: architecture, shipped weights and class names.

The weights in ``cnnviz_widgets/data/shapes_cnn.weights.h5`` are reproduced by
``python scripts/train_shapes_model.py``.
"""

from __future__ import annotations

import json
from importlib import resources

import keras

from .shapes import CLASS_NAMES, DEFAULT_SIZE

WEIGHTS_FILE = "shapes_cnn.weights.h5"
META_FILE = "shapes_cnn.json"


def build_shapes_cnn(size: int = DEFAULT_SIZE, n_classes: int = len(CLASS_NAMES)) -> keras.Model:
    """The embedded model's architecture (untrained).

    Large 7x7 first-layer kernels so the filter gallery shows readable edge and colour
    detectors; global average pooling before the classifier so class activation maps stay
    spatial; softmax as the last layer's activation.
    """
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(
        16,
        7,
        padding="same",
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(1e-3),
        name="conv1",
    )(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.MaxPooling2D(2, name="pool3")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="shapes_cnn")


def shapes_metadata() -> dict:
    """Metadata shipped with the weights: class names, input range, training record."""
    text = resources.files("cnnviz_widgets.data").joinpath(META_FILE).read_text()
    return json.loads(text)


def load_shapes_cnn() -> keras.Model:
    """A fresh copy of the embedded model with the shipped weights."""
    model = build_shapes_cnn()
    with resources.as_file(resources.files("cnnviz_widgets.data").joinpath(WEIGHTS_FILE)) as p:
        model.load_weights(str(p))
    return model
