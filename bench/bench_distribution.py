"""How well does cw.distribution_check tell generated shapes images from others?  Figures,
not tests; one run, no timing.

    .venv/bin/python bench/bench_distribution.py

Prints, per kind of image, the measures of engine/model/distribution.py (``border``,
``one_object``: percentiles) and the share flagged as unlike the training images, for:
1,000 generated shapes images (seed 123, not the training seeds), 120 square crops of the
two photos matplotlib ships (grace_hopper.jpg, Minduka_Present_Blue_Pack.png) resized to
64x64, the same crops pasted on a plain slightly noisy background, uniform and Gaussian
noise, 1/f ("pink") noise, clean two-colour ramps and plain colours.  SHAPES_THRESHOLDS
come from here (docs/benchmarks.md, "Out-of-distribution check").
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib.cbook
import matplotlib.image
import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model import distribution


def photo(name: str) -> np.ndarray:
    image = matplotlib.image.imread(matplotlib.cbook.get_sample_data(name, asfileobj=False))
    image = image[..., :3].astype(np.float32)
    return image / 255.0 if image.max() > 1 else image


def crops(image, n, rng):
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.uniform(0.3, 1.0) * min(h, w))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out.append(cw.fit_image(image[y : y + side, x : x + side], 64, 64, 3, warn=False)[0])
    return out


def pasted(photos, rng):
    out = []
    for p in photos:
        bg = np.ones((64, 64, 3)) * rng.uniform(0, 1, 3) + rng.normal(0, 0.02, (64, 64, 3))
        side = int(rng.integers(24, 44))
        y, x = rng.integers(4, 60 - side, 2)
        bg[y : y + side, x : x + side] = cw.fit_image(p, side, side, 3, warn=False)[0]
        out.append(np.clip(bg, 0, 1))
    return out


def pink(n, rng):
    f = np.fft.fftfreq(64)
    radius = np.hypot(*np.meshgrid(f, f))
    radius[0, 0] = 1.0
    out = []
    for _ in range(n):
        spectrum = np.fft.fft2(rng.normal(size=(64, 64, 3)), axes=(0, 1))
        z = np.fft.ifft2(spectrum / radius[..., None] ** rng.uniform(0.8, 1.5), axes=(0, 1)).real
        out.append((z - z.min()) / (z.max() - z.min()))
    return out


def main() -> None:
    rng = np.random.default_rng(5)
    _yy, xx = np.mgrid[0:64, 0:64] / 63.0
    photos = crops(photo("grace_hopper.jpg"), 60, rng)
    photos += crops(photo("Minduka_Present_Blue_Pack.png"), 60, rng)
    kinds = {
        "generated shapes (1000)": list(cw.generate_shapes(1000, seed=123).images),
        "photo crops (120)": photos,
        "photo crops on a plain background (120)": pasted(photos, rng),
        "uniform noise (40)": [rng.uniform(0, 1, (64, 64, 3)) for _ in range(40)],
        "Gaussian noise (40)": [
            np.clip(rng.normal(0.5, 0.2, (64, 64, 3)), 0, 1) for _ in range(40)
        ],
        "1/f noise (40)": pink(40, rng),
        "two-colour ramps, no noise (40)": [
            rng.uniform(0, 1, 3) * (1 - xx[..., None]) + rng.uniform(0, 1, 3) * xx[..., None]
            for _ in range(40)
        ],
        "plain colours (40)": [np.ones((64, 64, 3)) * rng.uniform(0, 1, 3) for _ in range(40)],
    }
    t = distribution.SHAPES_THRESHOLDS
    print(f"thresholds: {t}")
    for kind, images in kinds.items():
        m = [distribution.shapes_measures(np.asarray(im, np.float32)) for im in images]
        border = np.array([x["border"] for x in m])
        one = np.array([x["one_object"] for x in m])
        flagged = np.mean((border > t["border"]) | (one > t["one_object"]))
        q = [0, 1, 50, 99, 100]
        print(
            f"{kind:42s} flagged {flagged:6.1%}  border {np.percentile(border, q).round(3)}  "
            f"one_object {np.percentile(one, q).round(3)}"
        )


if __name__ == "__main__":
    main()
