"""Write the class-conditional seed statistics (and the declared recipe) into the shipped
metadata of the existing embedded weights, without retraining them.

    python scripts/add_seed_statistics.py

The statistics describe the training images (the procedural generator), not the weights,
so they are the same computation ``scripts/train_shapes_model.py`` now runs at the end of
a training (``shapes_metadata.training_seeds``); the robust variant also gets its ``"recipe"``
(``RECIPES``).  Every other key of the metadata is kept as it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from shapes_metadata import RECIPES, training_seeds, write_meta  # noqa: E402

from cnnviz_widgets.engine.model.embedded import VARIANTS, meta_file  # noqa: E402


def main() -> None:
    for variant in VARIANTS:
        path = ROOT / "cnnviz_widgets" / "data" / meta_file(variant)
        meta = json.loads(path.read_text())
        seed = int(meta.get("training", {}).get("seed", 0))
        if variant in RECIPES:
            meta["recipe"] = RECIPES[variant]
        meta["seeds"] = training_seeds(seed)
        write_meta(path, meta)
        print(f"{path}: seeds from {meta['seeds']['source'][:40]}..., recipe {meta.get('recipe')}")


if __name__ == "__main__":
    main()
