"""Sample images that need no network: matplotlib's bundled photo and generated shapes."""

from __future__ import annotations

import matplotlib.cbook
import matplotlib.image
import numpy as np

from ...errors import CnnvizError
from .shapes import CLASS_NAMES, sample

SAMPLE_NAMES: tuple[str, ...] = ("grace_hopper", *CLASS_NAMES)
"""Names accepted by :func:`sample_image`."""


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(h, w, c)`` float image in [0, 1] to ``(height, width)`` (bilinear)."""
    from PIL import Image  # a dependency of matplotlib

    height, width = size
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=False)
    channels = [
        np.asarray(
            Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def sample_image(
    name: str = "grace_hopper", size: int | tuple[int, int] | None = None, seed: int = 0
) -> np.ndarray:
    """An RGB float32 image in [0, 1], available offline.

    Args:
        name: ``"grace_hopper"`` (the photo bundled with matplotlib) or a shapes class
            (``"circle"``, ``"checkerboard"``, ...; generated with ``seed``).
        size: resize to ``(height, width)`` (or a square side).  Default: native size
            (Grace Hopper 600x512, shapes 64x64).
        seed: the generator seed for shapes images.
    """
    if name == "grace_hopper":
        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        image = matplotlib.image.imread(path).astype(np.float32)
        image = image[..., :3] / (255.0 if image.max() > 1.0 else 1.0)
    elif name in CLASS_NAMES:
        image = sample(name, seed=seed)[0]
    else:
        raise CnnvizError(f"unknown sample image {name!r}: use one of {', '.join(SAMPLE_NAMES)}")
    if size is not None:
        image = resize(image, (size, size) if isinstance(size, int) else tuple(size))
    return image
