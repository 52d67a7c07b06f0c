"""A head that is not a classifier reports a value, not a meaningless probability."""

import math

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw


def regression_head(shapes):
    """The embedded model's conv4 features under a linear 3-value head (a regression)."""
    base = shapes.model
    x = base.get_layer("gap").output
    out = keras.layers.Dense(3, name="box")(x)
    keras.utils.set_random_seed(0)
    return keras.Model(base.inputs, out, name="shapes_regression")


@pytest.fixture(scope="module")
def image():
    return cw.sample_image("square", seed=1)


def test_grad_cam_on_a_regression_head_reports_a_value(shapes, image):
    model = regression_head(shapes)
    cam = cw.grad_cam(model, image, target=1)
    assert math.isnan(cam.probability)
    assert any("not a classifier" in n for n in cam.notes)
    assert not any("probabilities are their softmax" in n for n in cam.notes)
    expected = np.asarray(model([shapes.preprocessing(image[None])]))[0, 1]
    assert cam.score == pytest.approx(float(expected), rel=1e-4, abs=1e-5)
    text = cam.to_figure()._suptitle.get_text()
    assert "value" in text and "probability" not in text
    sal = cw.saliency(model, image, target=0)
    assert math.isnan(sal.probability)


def test_a_logits_classifier_with_class_names_keeps_its_probability(shapes, image):
    model = regression_head(shapes)
    named = cw.load_model(model, class_names=["a", "b", "c"])
    cam = cw.grad_cam(named, image, target="b")
    logits = np.asarray(model([shapes.preprocessing(image[None])]))[0]
    softmax = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert cam.probability == pytest.approx(float(softmax[1]), rel=1e-4)
    assert any("probabilities are their softmax" in n for n in cam.notes)


def test_the_embedded_classifier_is_unchanged(shapes, image):
    cam = cw.grad_cam(shapes, image)
    assert 0.0 <= cam.probability <= 1.0 and cam.notes == []
