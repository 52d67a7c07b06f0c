"""What the attribution modules share: how many images go through the model per pass, and
the images that hide pixels (a fill, a blur)."""

from __future__ import annotations

import math

import numpy as np

from ...errors import CnnvizError

__all__ = ["FILLS", "batch_for", "blur", "even_batch", "fill_image"]


def batch_for(img: np.ndarray, limit: int = 128) -> int:
    """Images per forward batch: about 2^19 pixels (224 px: 10; 64 px: 128)."""
    return int(max(1, min(limit, (1 << 19) // max(1, img.shape[0] * img.shape[1]))))


def even_batch(n: int, limit: int) -> int:
    """The batch that spreads ``n`` items evenly over the fewest passes of at most
    ``limit`` (16 items, limit 10: 8 per pass, not 10 + 6)."""
    passes = -(-int(n) // max(1, int(limit)))
    return max(1, -(-int(n) // max(1, passes)))


FILLS = ("mean", "blur", "black", "gray", "white")


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (separable, reflected edges) of an (H, W, C) image."""
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        out = sum(
            k[i] * np.take(p, np.arange(i, i + out.shape[axis]), axis=axis) for i in range(len(k))
        )
    return out.astype(np.float32)


def fill_image(img: np.ndarray, fill, patch: int) -> tuple[np.ndarray, str]:
    """The image that hides pixels: ``fill`` a name of :data:`FILLS` (``"blur"``: blurred
    with sigma ``patch / 2``), one value or one per channel; and its name."""
    if isinstance(fill, str):
        if fill == "mean":
            return np.broadcast_to(img.mean(axis=(0, 1)), img.shape).copy(), fill
        if fill == "blur":
            return blur(img, max(1.0, patch / 2.0)), fill
        if fill in ("black", "gray", "white"):
            value = {"black": 0.0, "gray": 0.5, "white": 1.0}[fill]
            return np.full(img.shape, value, np.float32), fill
        raise CnnvizError(
            f"unknown fill {fill!r}: use one of {', '.join(FILLS)}, a value in [0, 1] or "
            "one value per channel"
        )
    value = np.asarray(fill, np.float32)
    if value.ndim == 0 or value.shape == (img.shape[-1],):
        return np.broadcast_to(value, img.shape).copy(), str(np.round(value, 3).tolist())
    raise CnnvizError(
        f"fill {fill!r}: give a name ({', '.join(FILLS)}), one value, or {img.shape[-1]} values"
    )
