"""Robustness transforms: random pad, jitter, scale and rotation as TensorFlow ops.

They run inside the compiled step (no round trip to the host): a pad, then ONE projective
warp per image that combines translation (jitter), zoom and rotation, then a centre crop
back to the model's input size.  Randomness is stateless, drawn from ``(seed, step)``, so a
run is repeatable.  An image that still drives the model after random warps is one the
model really responds to, not an adversarial pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from ..errors import CnnvizError


@dataclass(frozen=True)
class Transforms:
    """Which random transforms to apply at every step.

    Attributes:
        pad: pixels of padding on each side before warping (the border can show when the
            image is zoomed out or rotated).
        jitter: largest random shift, in pixels, in x and in y.
        scale: range of the random zoom factor, e.g. ``(0.9, 1.1)``; ``(1, 1)`` for none.
        rotate: largest random rotation in degrees.
        fill: how the pad is filled: ``"reflect"`` or ``"constant"`` (mid-gray).
    """

    pad: int = 0
    jitter: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    fill: str = "reflect"

    def __post_init__(self):
        if self.pad < 0 or self.jitter < 0 or self.rotate < 0:
            raise CnnvizError("transforms: pad, jitter and rotate must be >= 0")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise CnnvizError(
                f"transforms: scale must be (low, high) with 0 < low <= high, got {self.scale}"
            )
        if self.fill not in ("reflect", "constant"):
            raise CnnvizError(
                f"transforms: fill must be 'reflect' or 'constant', got {self.fill!r}"
            )

    @property
    def identity(self) -> bool:
        return self.pad == 0 and self.jitter == 0 and self.scale == (1.0, 1.0) and self.rotate == 0

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Apply to a batch ``(B, H, W, C)``; ``seed`` is an int32 tensor of shape (2,)."""
        if self.identity:
            return images
        return random_warp(images, seed, self)


NONE = Transforms()


def _uniform(seed, salt: int, shape, lo: float, hi: float) -> tf.Tensor:
    s = tf.stack([seed[0], seed[1] * 4 + salt])
    return tf.random.stateless_uniform(shape, seed=s, minval=lo, maxval=hi)


def random_warp(images: tf.Tensor, seed: tf.Tensor, t: Transforms) -> tf.Tensor:
    """Pad, warp each image with its own random shift/zoom/rotation, crop back."""
    h, w = images.shape[1], images.shape[2]
    b = tf.shape(images)[0]
    p = int(t.pad)
    if p:
        mode = "REFLECT" if t.fill == "reflect" else "CONSTANT"
        images = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode=mode, constant_values=0.5)
    ph, pw = h + 2 * p, w + 2 * p
    seed = tf.cast(seed, tf.int32)
    dx = _uniform(seed, 0, [b], -t.jitter, t.jitter) if t.jitter else tf.zeros([b])
    dy = _uniform(seed, 1, [b], -t.jitter, t.jitter) if t.jitter else tf.zeros([b])
    lo, hi = t.scale
    zoom = _uniform(seed, 2, [b], lo, hi) if hi > lo else tf.fill([b], float(lo))
    theta = (
        _uniform(seed, 3, [b], -t.rotate, t.rotate) * (math.pi / 180.0)
        if t.rotate
        else tf.zeros([b])
    )
    # The warp maps each OUTPUT pixel (x, y) to the input pixel it samples:
    # input = R(-theta) (output - c) / zoom + c - shift, with c the centre.
    cos, sin = tf.cos(theta) / zoom, tf.sin(theta) / zoom
    cx, cy = (pw - 1) / 2.0, (ph - 1) / 2.0
    a0, a1 = cos, sin
    b0, b1 = -sin, cos
    a2 = cx - a0 * cx - a1 * cy - dx
    b2 = cy - b0 * cx - b1 * cy - dy
    zeros = tf.zeros([b])
    matrix = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=matrix,
        output_shape=tf.constant([ph, pw]),
        fill_value=0.5,
        interpolation="BILINEAR",
        fill_mode="REFLECT" if t.fill == "reflect" else "CONSTANT",
    )
    return warped[:, p : p + h, p : p + w, :] if p else warped
