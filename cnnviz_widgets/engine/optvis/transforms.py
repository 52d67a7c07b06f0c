"""Robustness transforms: random pad, jitter, scale, rotation, crop and noise as TF ops.

They run inside the compiled step (no round trip to the host): a pad, then ONE projective
warp per image that combines translation (jitter), zoom, rotation and a random crop, then a
centre crop back to the model's input size, then (optionally) Gaussian noise.  Randomness
is stateless, drawn from ``(seed, step)``, so a run is repeatable.  An image that still
drives the model after random warps is one the model really responds to, not an
adversarial pattern.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from ...errors import CnnvizError


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
        crop: range of the side of a random crop, as a fraction of the image's side (same
            aspect), e.g. ``(0.5, 1.0)``; the crop lies inside the image (placed uniformly at
            random) and is resized to the full size, as MaCo does.  ``(1, 1)`` for none.
        noise: standard deviation of Gaussian noise added to the transformed image (in the
            ``[0, 1]`` display scale, before the model's preprocessing).
    """

    pad: int = 0
    jitter: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    rotate: float = 0.0
    fill: str = "reflect"
    crop: tuple[float, float] = (1.0, 1.0)
    noise: float = 0.0

    def __post_init__(self):
        if self.pad < 0 or self.jitter < 0 or self.rotate < 0:
            raise CnnvizError("transforms: pad, jitter and rotate must be >= 0")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise CnnvizError(
                f"transforms: scale must be (low, high) with 0 < low <= high, got {self.scale}"
            )
        lo, hi = self.crop
        if not 0 < lo <= hi <= 1:
            raise CnnvizError(
                f"transforms: crop must be (low, high) with 0 < low <= high <= 1 (fractions "
                f"of the image side), got {self.crop}"
            )
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise CnnvizError(f"transforms: noise must be >= 0, got {self.noise}")
        if self.fill not in ("reflect", "constant"):
            raise CnnvizError(
                f"transforms: fill must be 'reflect' or 'constant', got {self.fill!r}"
            )

    @property
    def warps(self) -> bool:
        """Some geometric transform is asked for (a warp runs)."""
        return not (
            self.pad == 0
            and self.jitter == 0
            and tuple(self.scale) == (1.0, 1.0)
            and self.rotate == 0
            and tuple(self.crop) == (1.0, 1.0)
        )

    @property
    def identity(self) -> bool:
        return not self.warps and self.noise == 0

    def __call__(self, images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """Apply to a batch ``(B, H, W, C)``; ``seed`` is an int32 tensor of shape (2,)."""
        if self.identity:
            return images
        stream = _Streams(seed)
        if self.warps:
            images = _warp(images, stream, self)
        if self.noise:
            images = images + tf.random.stateless_normal(
                tf.shape(images), seed=stream(7), stddev=self.noise, dtype=images.dtype
            )
        return images


NONE = Transforms()


class _Streams:
    """The stateless seeds of the random streams at one ``(seed, step)``.

    ``stream(salt)`` is the seed of stream ``salt`` (0..7).  Streams 0-3 (shift, zoom,
    rotation) are ``(seed, 4 * step + salt)``, as they always were, so runs repeat across
    versions; 4-7 (crop, noise) use ``-seed - 1``, which no (non-negative) run seed has.
    The seed is split once, not sliced per stream: fewer traced ops (time to a first
    image), the same values.
    """

    def __init__(self, seed):
        self.seed, self.step4 = tf.unstack(tf.cast(seed, tf.int32) * tf.constant([1, 4]))
        self._other = None

    def __call__(self, salt: int) -> tf.Tensor:
        if salt < 4:
            first = self.seed
        else:
            if self._other is None:
                self._other = -self.seed - 1
            first = self._other
        return tf.stack([first, self.step4 + salt % 4])


def _uniform(stream: _Streams, salt: int, shape, lo: float, hi: float) -> tf.Tensor:
    return tf.random.stateless_uniform(shape, seed=stream(salt), minval=lo, maxval=hi)


def random_warp(images: tf.Tensor, seed: tf.Tensor, t: Transforms) -> tf.Tensor:
    """Pad, warp each image with its own random shift/zoom/rotation/crop, crop back."""
    return _warp(images, _Streams(seed), t)


def _warp(images: tf.Tensor, seed: _Streams, t: Transforms) -> tf.Tensor:
    h, w = images.shape[1], images.shape[2]
    b = tf.shape(images)[0]
    p = int(t.pad)
    if p:
        mode = "REFLECT" if t.fill == "reflect" else "CONSTANT"
        images = tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode=mode, constant_values=0.5)
    ph, pw = h + 2 * p, w + 2 * p
    dx = _uniform(seed, 0, [b], -t.jitter, t.jitter) if t.jitter else tf.zeros([b])
    dy = _uniform(seed, 1, [b], -t.jitter, t.jitter) if t.jitter else tf.zeros([b])
    lo, hi = t.scale
    zoom = _uniform(seed, 2, [b], lo, hi) if hi > lo else tf.fill([b], float(lo))
    theta = (
        _uniform(seed, 3, [b], -t.rotate, t.rotate) * (math.pi / 180.0)
        if t.rotate
        else tf.zeros([b])
    )
    clo, chi = t.crop
    if (clo, chi) != (1.0, 1.0):
        # a crop of `side` times the image's size, inside the image: its
        # centre moves at most (1 - side) / 2 of the image from the centre, in x and in y
        side = _uniform(seed, 4, [b], clo, chi) if chi > clo else tf.fill([b], float(clo))
        ox = _uniform(seed, 5, [b], -1.0, 1.0) * (1.0 - side) * (w - 1) / 2.0
        oy = _uniform(seed, 6, [b], -1.0, 1.0) * (1.0 - side) * (h - 1) / 2.0
        zoom = zoom / side
        dx, dy = dx - ox, dy - oy
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
