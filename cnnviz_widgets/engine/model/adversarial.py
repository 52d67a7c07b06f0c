"""Adversarial examples: the small L2 nudge of an image that changes a model's answer.

Projected gradient descent (PGD, Madry et al. 2018) in the L2 norm: starting from the
image, step along the normalised gradient of the true class's cross-entropy, project back
into the ball of radius ``eps`` around the image and into the valid pixel range [0, 1].
The embedded ``"shapes"`` model was trained on such examples
(``scripts/train_shapes_model.py``); :func:`robust_accuracy` is how its robustness is
reported, beside ``"shapes-standard"``'s.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from .outputs import select_output

__all__ = ["adversarial_examples", "l2_step", "pgd_l2", "robust_accuracy"]


def _l2(x: tf.Tensor) -> tf.Tensor:
    """Per-image L2 norm, shaped to broadcast over ``(n, h, w, c)``."""
    return tf.sqrt(tf.reduce_sum(tf.square(x), axis=(1, 2, 3), keepdims=True) + 1e-12)


def l2_step(x: tf.Tensor, delta: tf.Tensor, g: tf.Tensor, step, eps) -> tf.Tensor:
    """One move of an L2 attack's perturbation ``delta`` of images ``x``: ``step`` along
    the per-image normalized gradient ``g``, back into the ball of radius ``eps``, and
    clipped so that ``x + delta`` stays in [0, 1].  Used by :func:`pgd_l2` and by the
    training script's free adversarial training."""
    delta = delta + step * g / _l2(g)
    delta = delta * tf.minimum(1.0, eps / _l2(delta))
    return tf.clip_by_value(x + delta, 0.0, 1.0) - x


def pgd_l2(predict, x: tf.Tensor, y: tf.Tensor, eps, steps: int, step_size: float = 2.5):
    """L2 PGD on a batch, as TensorFlow ops (usable inside a ``tf.function``).

    Args:
        predict: maps images in [0, 1] to class probabilities.
        x: ``(n, h, w, c)`` images in [0, 1].
        y: ``(n,)`` integer labels (the answer the attack pushes away from).
        eps: the L2 budget per image (a float or a scalar tensor).
        steps: gradient steps (a Python int: the loop is unrolled).
        step_size: each step moves ``step_size * eps / steps``.

    Returns:
        The perturbed images; no gradient flows back to ``x``.
    """
    eps = tf.cast(eps, tf.float32)
    y = tf.cast(y, tf.int32)
    delta = tf.zeros_like(x)
    alpha = step_size * eps / steps
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            p_true = tf.gather(predict(x + delta), y, axis=1, batch_dims=1)
            loss = -tf.reduce_sum(tf.math.log(p_true + 1e-12))
        g = tape.gradient(loss, delta)
        delta = l2_step(x, delta, g, alpha, eps)
    return tf.stop_gradient(x + delta)


def _probabilities(loaded):
    model, prep = loaded.model, loaded.preprocessing
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise CnnvizError(
            "adversarial examples need a model with one image input and one class output: "
            "for a model with several outputs, choose it with output="
        )
    if loaded.output_is_softmax:
        return lambda x: model(prep(x), training=False)
    return lambda x: tf.nn.softmax(model(prep(x), training=False), axis=-1)


def adversarial_examples(
    model, images, labels, *, eps: float = 1.5, steps: int = 10, batch: int = 250, output=None
) -> np.ndarray:
    """Perturb each image within an L2 ball of radius ``eps`` to make its label less likely.

    Args:
        model: anything ``load_model`` takes (its preprocessing is applied inside).
        images: ``(n, h, w, c)`` floats in [0, 1] (display space).
        labels: ``(n,)`` the true classes.
        eps: the L2 budget per image, in [0, 1] pixel units (1.5 on a 64x64x3 image is
            about 0.014 per pixel value, RMS).
        steps: PGD steps.
        batch: images per compiled call.
        output: for a model with several outputs, the class output attacked (name or
            index: see :func:`~cnnviz_widgets.select_output`).

    Returns:
        ``(n, h, w, c)`` float32 perturbed images in [0, 1].
    """
    call = "cw.adversarial_examples(model, images, labels, output={output})"
    loaded = select_output(model, output, call=call)
    x = np.asarray(images, np.float32)
    y = np.asarray(labels).astype(np.int32).ravel()
    if x.ndim != 4 or len(x) != len(y):
        raise CnnvizError(
            f"images must be (n, height, width, channels) with one label each; got images "
            f"{x.shape} and {len(y)} labels"
        )
    if not (eps >= 0 and np.isfinite(eps)) or int(steps) < 1:
        raise CnnvizError(f"eps must be a finite number >= 0 and steps >= 1; got {eps}, {steps}")
    predict = _probabilities(loaded)
    run = tf.function(lambda a, b: pgd_l2(predict, a, b, float(eps), int(steps)))
    out = [run(x[i : i + batch], y[i : i + batch]).numpy() for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else x.copy()


def robust_accuracy(
    model, images, labels, *, eps: float = 1.5, steps: int = 10, output=None
) -> float:
    """Share of images still classified correctly after :func:`adversarial_examples`
    (``output``: as there)."""
    loaded = select_output(
        model, output, call="cw.robust_accuracy(model, images, labels, output={output})"
    )
    attacked = adversarial_examples(loaded, images, labels, eps=eps, steps=steps)
    probs = _probabilities(loaded)(tf.constant(attacked)).numpy()
    return float(np.mean(probs.argmax(1) == np.asarray(labels).ravel()))
