"""The cascading randomization test on the embedded model, for docs/attribution.md.

    .venv/bin/python scripts/randomization_table.py [--images 9]

For one generated image per shapes class, every registered method's map is redrawn while
the layers of a copy of the model are re-initialized from the top down; printed: the mean
Spearman correlation with the original map after the top layer and after all layers, and
the verdict (a map whose correlation stays above 0.5 with every layer destroyed does not
depend on what the model learned).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import cnnviz_widgets as cw

STAYS = 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=9)
    args = parser.parse_args()
    model = cw.load_model("shapes")
    batch = cw.generate_shapes(args.images, seed=21)
    names = cw.method_names()
    tops, ends = {n: [] for n in names}, {n: [] for n in names}
    for img, label in zip(batch.images, batch.labels):
        res = cw.randomization_test(model, img, names, int(label), seed=1)
        for n in names:
            tops[n].append(res.correlations[n][1])
            ends[n].append(res.correlations[n][-1])
    print(f"{len(batch.images)} images, steps: {' > '.join(res.steps)}\n")
    print("| method | after the top layer | after all layers | verdict |")
    print("|---|---|---|---|")
    for n in sorted(names, key=lambda n: -np.mean(ends[n])):
        end = float(np.mean(ends[n]))
        verdict = "stays: fails the check" if end > STAYS else "falls apart: passes"
        label = cw.method_info(n).label
        spread = float(np.std(ends[n]))
        print(f"| {label} | {np.mean(tops[n]):+.2f} | {end:+.2f} ± {spread:.2f} | {verdict} |")


if __name__ == "__main__":
    main()
