"""Shared geometry of the convolution layers: which layers are convolutions, how TensorFlow
pads ``"same"``, and integer arguments checked with a message."""

from __future__ import annotations

import numbers

import keras

from ...errors import CnnvizError

__all__ = ["CONV_LAYER_TYPES", "as_int", "pad_before"]

CONV_LAYER_TYPES: tuple[type, ...] = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)
"""The layers :func:`convolution_at` explains."""


def as_int(value, what: str) -> int:
    """``value`` as an ``int``; a bool, float or other type raises naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise CnnvizError(f"{what} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def pad_before(n: int, k: int, s: int, d: int, padding: str) -> int:
    """Rows (or columns) of zeros before the input, as TensorFlow pads ``"same"``."""
    if padding == "valid":
        return 0
    out = -(-n // s)
    return max((out - 1) * s + (k - 1) * d + 1 - n, 0) // 2
