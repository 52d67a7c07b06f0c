"""What the embedded models' metadata says beyond the training record: the recipe a
variant declares for ``preset="auto"`` and the class-conditional seed statistics of the
training images.  Used by ``train_shapes_model.py`` (at the end of a training) and by
``add_seed_statistics.py`` (for the shipped weights, without retraining)."""

from __future__ import annotations

import json
from pathlib import Path

from cnnviz_widgets.engine.model.shapes import CLASS_NAMES, generate_shapes
from cnnviz_widgets.engine.optvis.seeds import seed_statistics

SEED_IMAGES = 4500  # images measured for the class-conditional seeds (500 a class)
SEED_RESOLUTION = 10  # the seeds' Gaussians live at 10x10 (about a sixth of the input's side)
SEED_RANK = 12  # principal directions kept per class
TURNED = ("square", "triangle", "cross")  # the classes the generator draws at any angle


def training_seeds(seed: int = 0) -> dict:
    """The class-conditional seed statistics of the training distribution, for the
    metadata's ``"seeds"``: a Gaussian per class at 10x10 (mean + 12 principal directions +
    isotropic rest) of ``SEED_IMAGES`` images of the first training epoch's generator
    seed (``seed + 1``), each image first moved so its object is at the centre, and the
    classes the generator turns at random (``TURNED``) turned to a common orientation.
    Where the ``"robust"`` preset starts (Santurkar et al. 2019)."""
    data = generate_shapes(SEED_IMAGES, seed=seed + 1)
    turned = [CLASS_NAMES.index(name) for name in TURNED]
    stats = seed_statistics(
        data.images,
        data.labels,
        len(CLASS_NAMES),
        resolution=SEED_RESOLUTION,
        rank=SEED_RANK,
        masks=data.masks,
        turn=turned,
        source=f"generate_shapes({SEED_IMAGES}, seed={seed + 1}): the first training "
        f"epoch's generator seed; each object moved to the centre ({', '.join(TURNED)} "
        f"also turned to a common orientation); {SEED_RESOLUTION}x{SEED_RESOLUTION} "
        f"area-downsampled, per-class mean + {SEED_RANK} principal directions + isotropic "
        "rest (scripts/shapes_metadata.py training_seeds)",
    )
    return stats.to_json()


def write_meta(path: Path, meta: dict) -> None:
    """The metadata as indented JSON, with the (long) seed statistics on one line."""
    seeds = meta.get("seeds")
    text = json.dumps({**meta, "seeds": "@SEEDS@"} if seeds else meta, indent=2) + "\n"
    if seeds:
        text = text.replace('"@SEEDS@"', json.dumps(seeds, separators=(",", ":")))
    path.write_text(text)


RECIPES = {
    "robust": {
        "preset": "robust",
        "reason": "adversarially trained (L2 PGD): its input gradients are perceptually "
        "aligned, so plain L2 pixel steps from a class-conditional seed draw the class "
        "(Santurkar et al. 2019)",
    },
}
"""What each variant's metadata declares as its optimization recipe (``preset="auto"``)."""
