"""The keras-vis CNN-visualization tutorial's code runs with only its imports changed."""

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw

from .helpers import assert_same_state, model_state


@pytest.mark.slow
def test_tutorial_snippet_on_vgg16():
    # --- the tutorial's code; only these two import lines differ from keras-vis ---
    from keras import activations
    from keras.applications import VGG16

    from cnnviz_widgets.compat.keras_vis import utils
    from cnnviz_widgets.compat.keras_vis.visualization import visualize_activation

    model = VGG16(weights=None, include_top=True)
    layer_idx = utils.find_layer_idx(model, "predictions")
    model.layers[layer_idx].activation = activations.linear
    model = utils.apply_modifications(model)
    img = visualize_activation(model, layer_idx, filter_indices=385, max_iter=3, verbose=True)
    # ---
    assert img.shape == (224, 224, 3) and img.dtype == np.uint8
    assert model.layers[layer_idx].get_config()["activation"] == "linear"


def test_apply_modifications_returns_a_new_model_and_leaves_the_original(shapes):
    from cnnviz_widgets.compat.keras_vis import utils

    original = keras.models.clone_model(shapes.model)
    original.set_weights(shapes.model.get_weights())
    idx = utils.find_layer_idx(original, "predictions")
    before = model_state(original)
    modified_layer = keras.models.clone_model(original)  # keep `original` untouched
    modified_layer.set_weights(original.get_weights())
    modified_layer.layers[idx].activation = keras.activations.linear
    linear = utils.apply_modifications(modified_layer)
    assert linear is not modified_layer
    assert linear.layers[idx].get_config()["activation"] == "linear"
    x = cw.generate_shapes(3, seed=1).images
    logits = linear.predict(x, verbose=0)
    probs = original.predict(x, verbose=0)
    np.testing.assert_allclose(
        np.exp(logits) / np.exp(logits).sum(1, keepdims=True), probs, rtol=1e-4, atol=1e-6
    )
    assert_same_state(before, model_state(original))
    assert original.layers[idx].get_config()["activation"] == "softmax"


def test_find_layer_idx_errors_name_the_closest(shapes):
    from cnnviz_widgets.compat.keras_vis import utils

    assert utils.find_layer_idx(shapes.model, "conv1") == 1
    with pytest.raises(ValueError, match="predictions"):
        utils.find_layer_idx(shapes.model, "prediction")


def test_visualize_activation_on_a_conv_filter(shapes):
    from cnnviz_widgets.compat.keras_vis.visualization import visualize_activation

    img = visualize_activation(shapes.model, 3, filter_indices=[1, 2], max_iter=4)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
