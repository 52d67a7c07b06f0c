import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw


@pytest.fixture(scope="session")
def vgg16():
    """VGG16 with random weights (nothing is downloaded), seeded so runs repeat."""
    keras.utils.set_random_seed(0)
    return cw.load_model("vgg16", weights=None)


@pytest.fixture(scope="session")
def shapes():
    return cw.load_model("shapes")


def model_state(model: keras.Model):
    """Everything about a model that no engine call may change."""
    return (
        [np.array(w) for w in model.weights],
        model.to_json(),
        [(w.path, w.trainable) for w in model.weights],
        [layer.trainable for layer in model.layers],
    )


def assert_same_state(before, after):
    weights_b, json_b, meta_b, trainable_b = before
    weights_a, json_a, meta_a, trainable_a = after
    assert json_a == json_b
    assert meta_a == meta_b
    assert trainable_a == trainable_b
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)
