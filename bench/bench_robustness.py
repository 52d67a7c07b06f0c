"""Robustness of the two embedded models (not a test): clean and attacked accuracy.

    .venv/bin/python bench/bench_robustness.py [--n 1000] [--figure docs/conv1_filters.png]

On ``--n`` held-out generated images (the training script's held-out seed), prints each
model's accuracy clean and under L2 PGD attacks: the one ``"shapes-robust"`` was trained with
(2 steps at eps 1.5), a stronger one (20 steps at the same budget) and one at twice the
budget (20 steps at eps 3.0).  Also prints conv1's filter selectivity (how many kernels a
grating, Gabor or colour blob explains to at least half of their energy) and dead filters;
``--figure`` draws both models' conv1 montages side by side for the README.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets.engine.layers.filters import kernel_array
from cnnviz_widgets.engine.layers.selectivity import kernel_selectivity
from cnnviz_widgets.engine.model.adversarial import robust_accuracy

HELD_OUT_SEED = 20261128
ATTACKS = ((1.5, 2), (1.5, 20), (3.0, 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--figure", default=None, help="write the conv1 montages here (PNG)")
    args = parser.parse_args()
    data = cw.generate_shapes(args.n, seed=HELD_OUT_SEED)
    header = ["model", "clean"] + [f"PGD-{s} eps {e:g}" for e, s in ATTACKS]
    header += ["clear conv1", "dead conv1"]
    print(" | ".join(header))
    for name in ("shapes-robust", "shapes-standard"):
        start = time.perf_counter()
        loaded = cw.load_model(name)
        model = loaded.model
        clean = np.mean(model.predict(data.images, verbose=0).argmax(1) == data.labels)
        row = [name, f"{clean:.3f}"]
        for eps, steps in ATTACKS:
            acc = robust_accuracy(loaded, data.images, data.labels, eps=eps, steps=steps)
            row.append(f"{acc:.3f}")
        prefs = kernel_selectivity(kernel_array(model.get_layer("conv1")))
        conv1 = keras.Model(model.inputs, model.get_layer("conv1").output)
        acts = conv1.predict(data.images[:300], verbose=0)
        dead = int(np.sum(acts.max((0, 1, 2)) <= 0))
        row += [f"{sum(p.clear for p in prefs)}/{len(prefs)}", str(dead)]
        print(" | ".join(row), f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.figure:
        draw_figure(args.figure)


def draw_figure(path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), dpi=120)
    for ax, name in zip(axes, ("shapes-robust", "shapes-standard")):
        loaded = cw.load_model(name)
        montage = cw.filter_montage(loaded, "conv1", columns=8, scale=12, padding=2)
        prefs = kernel_selectivity(kernel_array(loaded.model.get_layer("conv1")))
        ax.imshow(montage.image)
        ax.set_title(
            f'"{name}": conv1, {sum(p.clear for p in prefs)} of {len(prefs)} filters clear',
            fontsize=9,
        )
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, facecolor="white")
    print("wrote", path)


if __name__ == "__main__":
    main()
