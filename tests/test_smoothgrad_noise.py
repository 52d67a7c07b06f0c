"""SmoothGrad's noise on the paper's scale: a fraction of the input's range (display [0, 1]),
not of each image's own range."""

import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine.attribution.noise import noise_sigma


def logit_gradients(model, images, c):
    """d logit_c / d display image, per image, by hand (the logits: the final softmax
    Dense layer's kernel and bias applied to its input)."""
    ext = cw.extractor(model, ["gap"], with_outputs=False)
    dense = model.model.get_layer("predictions")
    kernel, bias = (np.asarray(w) for w in dense.get_weights())
    x = tf.constant(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = ext(model.preprocessing(x), training=False)
        pooled = out[0] if isinstance(out, list) else out
        logits = tf.matmul(pooled, kernel) + bias
        total = tf.reduce_sum(logits[:, c])
    return tape.gradient(total, x).numpy()


@pytest.fixture(scope="module")
def low_contrast():
    """A circle whose values span only 0.42..0.58: a tenth of the range."""
    img = cw.sample_image("circle", seed=3)
    return (0.42 + 0.16 * (img - img.min()) / (img.max() - img.min())).astype(np.float32)


def test_the_noise_is_a_fraction_of_the_input_range_not_of_the_image(shapes, low_contrast):
    names = [layer.name for layer in shapes.model.layers]
    assert "predictions" in names, names  # the tap the reference reads
    n, noise, seed = 6, 0.15, 5
    got = cw.saliency(shapes, low_contrast, smooth=n, noise=noise, seed=seed, precision="float32")
    assert got.noise == noise
    c = got.class_index
    draw = np.random.default_rng(seed).standard_normal((n, *low_contrast.shape))

    def reference(sigma):
        noisy = low_contrast[None] + (draw * sigma).astype(np.float32)
        return logit_gradients(shapes, noisy, c).mean(axis=0)

    paper = reference(noise_sigma(noise))
    assert noise_sigma(noise) == pytest.approx(0.15)
    scale = float(np.abs(paper).max())
    np.testing.assert_allclose(got.raw, paper, atol=2e-4 * scale)
    # the old scale (the image's own range, 0.16) is a clearly different map
    own = reference(noise * float(low_contrast.max() - low_contrast.min()))
    assert np.abs(own - paper).max() > 100 * 2e-4 * scale
