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

import sys
from pathlib import Path

import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model import distribution

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.unlike_images import crops, pasted, photo, pink


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
        measures = {k: np.array([x[k] for x in m]) for k in t}
        flagged = np.mean(np.any([measures[k] > t[k] for k in t], axis=0))
        q = [0, 1, 50, 99, 100]
        spread = "  ".join(f"{k} {np.percentile(v, q).round(3)}" for k, v in measures.items())
        print(f"{kind:42s} flagged {flagged:6.1%}  {spread}")


if __name__ == "__main__":
    main()
