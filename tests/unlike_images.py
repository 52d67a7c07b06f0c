"""Images unlike the embedded models' training images, for the out-of-distribution check's
test (tests/test_distribution.py) and its figures (bench/bench_distribution.py): crops of
the photos matplotlib ships, the same crops on a plain background, 1/f noise."""

from __future__ import annotations

import matplotlib.cbook
import matplotlib.image
import numpy as np

import cnnviz_widgets as cw


def photo(name: str) -> np.ndarray:
    """One of matplotlib's sample photos as a float [0, 1] RGB array."""
    image = matplotlib.image.imread(matplotlib.cbook.get_sample_data(name, asfileobj=False))
    image = image[..., :3].astype(np.float32)
    return image / 255.0 if image.max() > 1 else image


def crops(image: np.ndarray, n: int, rng) -> list[np.ndarray]:
    """Square crops of 30 % to all of the photo's short side, resized to 64x64."""
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.uniform(0.3, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out.append(cw.fit_image(image[y : y + side, x : x + side], 64, 64, 3, warn=False)[0])
    return out


def pink(n: int, rng) -> list[np.ndarray]:
    """Noise with a natural image's 1/f spectrum (smooth blobs at every scale)."""
    f = np.fft.fftfreq(64)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1.0
    out = []
    for _ in range(n):
        spectrum = np.fft.fft2(rng.normal(size=(64, 64, 3)), axes=(0, 1))
        z = np.fft.ifft2(spectrum / radius[..., None] ** rng.uniform(0.8, 1.5), axes=(0, 1)).real
        out.append(((z - z.min()) / (z.max() - z.min())).astype(np.float32))
    return out


def pasted(photos: list[np.ndarray], rng) -> list[np.ndarray]:
    """A photo crop on a plain, slightly noisy background (a product photo): the border
    alone looks like training."""
    out = []
    for photo in photos:
        bg = np.ones((64, 64, 3)) * rng.uniform(0, 1, 3) + rng.normal(0, 0.02, (64, 64, 3))
        side = int(rng.integers(24, 44))
        y, x = rng.integers(4, 60 - side, 2)
        bg[y : y + side, x : x + side] = cw.fit_image(photo, side, side, 3, warn=False)[0]
        out.append(np.clip(bg, 0, 1).astype(np.float32))
    return out
