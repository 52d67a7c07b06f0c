"""The embedded "shapes" CNNs: one architecture, two shipped sets of weights.

``"robust"`` (``load_model("shapes-robust")``) was trained on adversarial examples, so its
gradients point along the shapes and class optimization draws them; ``"standard"``
(``load_model("shapes-standard")``) was trained on clean images only and draws textures.
Both are reproduced by ``python scripts/train_shapes_model.py --variant robust|standard``.
``load_model("shapes")`` loads :data:`DEFAULT_VARIANT`.
"""

from __future__ import annotations

import json
from importlib import resources

import keras
import numpy as np

from .shapes import CLASS_NAMES, DEFAULT_SIZE

VARIANTS: tuple[str, ...] = ("robust", "standard")

DEFAULT_VARIANT = "robust"
"""What ``load_model("shapes")`` loads: the robust model, whose class images show their
shapes and whose first-layer filters are edges, bars and colour blobs.  The standard one
stays available as ``"shapes-standard"`` for side-by-side lessons."""


def weights_file(variant: str = DEFAULT_VARIANT) -> str:
    """The weights file of a variant, inside ``cnnviz_widgets/data``."""
    return f"shapes_{_check(variant)}.weights.h5"


def meta_file(variant: str = DEFAULT_VARIANT) -> str:
    """The metadata file of a variant (class names, preprocessing, training record)."""
    return f"shapes_{_check(variant)}.json"


def _check(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown shapes variant {variant!r}: use one of {VARIANTS}")
    return variant


@keras.saving.register_keras_serializable(package="cnnviz_widgets")
class KernelSmoothness(keras.regularizers.Regularizer):
    """Penalty on a kernel's roughness: ``smooth`` times the summed squared difference between
    horizontally and vertically neighbouring taps (every input channel, every filter), plus
    ``l2`` times the summed squared taps.

    An option of ``scripts/train_shapes_model.py`` (``--smooth``) for a first layer whose 7x7
    kernels read as edges, bars and colour blobs.  Unlike a plain L2 penalty it costs nothing
    for a smooth kernel of any size, so it does not shrink a filter the network stopped using
    to nothing.  No shipped model uses it yet (see the script's docstring for what it cost).
    """

    def __init__(self, smooth: float = 3e-3, l2: float = 1e-4) -> None:
        self.smooth = float(smooth)
        self.l2 = float(l2)

    def __call__(self, kernel):
        dy = kernel[1:] - kernel[:-1]
        dx = kernel[:, 1:] - kernel[:, :-1]
        rough = keras.ops.sum(dy * dy) + keras.ops.sum(dx * dx)
        return self.smooth * rough + self.l2 * keras.ops.sum(kernel * kernel)

    def get_config(self) -> dict:
        return {"smooth": self.smooth, "l2": self.l2}


def low_frequency_projector(size: int, frequencies: int) -> np.ndarray:
    """``(size, size)`` matrix projecting a line of ``size`` taps onto its ``frequencies``
    lowest cosine (DCT-II) components: smooth profiles pass unchanged, fine ripples go."""
    taps = np.arange(size)
    basis = np.cos(np.pi * (taps[None, :] + 0.5) * np.arange(frequencies)[:, None] / size)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    return (basis.T @ basis).astype(np.float32)


@keras.saving.register_keras_serializable(package="cnnviz_widgets")
class SmoothColourKernels(keras.constraints.Constraint):
    """Keeps each filter of a first layer one colour times one smooth spatial pattern.

    Applied after every weight update (Keras applies a layer's ``kernel_constraint`` after
    each optimizer step), it projects each filter ``k[y, x, c]``:

    1. onto its ``frequencies`` x ``frequencies`` lowest 2-D cosine components (each
       channel; with 4 of 7 a 7x7 kernel keeps periods down to about 4.7 pixels),
    2. onto its best colour-separable approximation ``s * p[y, x] * q[c]`` (the leading
       singular pair of the ``(kh * kw, channels)`` matrix),
    3. and scales a filter whose norm fell under ``min_norm`` back up to it, so that a filter
       the network stopped using keeps a pattern a teacher can look at.

    An option of ``scripts/train_shapes_model.py`` (``--smooth-colour``).  Random kernels
    projected this way are still almost never "clear" by
    :func:`~cnnviz_widgets.kernel_selectivity` (``docs/benchmarks.md``, "Embedded models"),
    so a clear filter is something training found, not something the projection made.  Only
    used in training: the shipped model is the plain architecture without it.
    """

    def __init__(self, frequencies: int = 4, min_norm: float = 0.0) -> None:
        self.frequencies = int(frequencies)
        self.min_norm = float(min_norm)

    def __call__(self, w):
        kh, kw, c, n = (int(d) for d in w.shape)
        py = keras.ops.convert_to_tensor(low_frequency_projector(kh, min(self.frequencies, kh)))
        px = keras.ops.convert_to_tensor(low_frequency_projector(kw, min(self.frequencies, kw)))
        w = keras.ops.einsum("ya,xb,abcf->yxcf", py, px, w)
        if c > 1:
            m = keras.ops.transpose(keras.ops.reshape(w, (kh * kw, c, n)), (2, 0, 1))
            u, s, vt = keras.ops.svd(m, full_matrices=False)
            top = s[:, None, :1] * u[:, :, :1] * vt[:, :1, :]  # (n, kh*kw, c)
            w = keras.ops.reshape(keras.ops.transpose(top, (1, 2, 0)), (kh, kw, c, n))
        if self.min_norm > 0:
            norms = keras.ops.sqrt(keras.ops.sum(w * w, axis=(0, 1, 2)))
            w = w * keras.ops.maximum(1.0, self.min_norm / (norms + 1e-12))
        return w

    def get_config(self) -> dict:
        return {"frequencies": self.frequencies, "min_norm": self.min_norm}


def build_shapes_cnn(
    size: int = DEFAULT_SIZE,
    n_classes: int = len(CLASS_NAMES),
    conv1_regularizer: keras.regularizers.Regularizer | None = None,
    conv1_constraint: keras.constraints.Constraint | None = None,
) -> keras.Model:
    """The embedded model's architecture (untrained).

    Large 7x7 first-layer kernels so the filter gallery shows readable edge and colour
    detectors; global average pooling before the classifier so class activation maps stay
    spatial; softmax as the last layer's activation.  ``conv1_regularizer`` is the first
    layer's training penalty (it shows in ``get_config()``); both shipped variants were
    trained with the default, L2 1e-3.  ``conv1_constraint`` is applied after each training
    update (:class:`SmoothColourKernels`); loading weights does not need it.
    """
    regularizer = conv1_regularizer or keras.regularizers.L2(1e-3)
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(
        16,
        7,
        padding="same",
        activation="relu",
        kernel_regularizer=regularizer,
        kernel_constraint=conv1_constraint,
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


def shapes_metadata(variant: str = DEFAULT_VARIANT) -> dict:
    """Metadata shipped with the weights: class names, input range, training record."""
    text = resources.files("cnnviz_widgets.data").joinpath(meta_file(variant)).read_text()
    return json.loads(text)


def load_shapes_cnn(variant: str = DEFAULT_VARIANT) -> keras.Model:
    """A fresh copy of the embedded model with the shipped weights of ``variant``."""
    model = build_shapes_cnn()
    data = resources.files("cnnviz_widgets.data")
    with resources.as_file(data.joinpath(weights_file(variant))) as p:
        model.load_weights(str(p))
    return model
