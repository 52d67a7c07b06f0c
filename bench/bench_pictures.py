"""Do the class pictures show their class?  An independent judge counts (not a test).

    .venv/bin/python bench/bench_pictures.py [--out /tmp/pictures]
    .venv/bin/python bench/bench_pictures.py --default-call [--seeds 0 1 2]
    .venv/bin/python bench/bench_pictures.py --default-call --figure docs/class_images.png

``--default-call``: the call a user makes, ``cw.visualize(load_model(name), range(9),
seed=s)`` with every other setting at its default (``preset="auto"``: the model's own
recipe), on the robust (``"shapes"``) and the standard model, for each seed: the judge's
count, the model's own probabilities, the recipe and the seconds; and the robust model's
time to its 9 pictures against the same call from one seed draw (``seed_draws=1``) and
the default call before issue 25 (``preset="lucid"``, 256 steps), timed interleaved
(bench/interleave.py, compiled steps warm).  ``--figure`` then draws the README figure:
the default call's pictures of both models (first seed) side by side.  For the robust
model it also prints the judge's count on each run's start (its chosen seeds, 0 steps):
what the seed alone shows; ``--start-figure`` draws start and end (first seed).

Without it: for every preset in ``optvis.PRESETS`` (read at run time, so new presets
appear here by themselves) and for both embedded models, ``load_model("shapes-robust")`` and
``load_model("shapes-standard")`` (a missing one is skipped with a note), runs
``cw.visualize(model, list(range(9)), preset=name, steps=128, seed=0)`` (one batch of 9)
and prints:

* how many of the 9 pictures the judge names as their class (``tests/judge.py``, trained
  by ``scripts/train_judge.py``: another architecture, other seeds, augmented data; never
  used to train or choose the embedded model);
* the classes it missed and what it called them (with its probability);
* the embedded model's own probability for each picture's class (float32 predict).

Saves one montage PNG per model and preset into ``--out`` for people to look at.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets.engine import optvis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.judge import judge_probs  # noqa: E402

MODELS = ("shapes-robust", "shapes-standard")
STEPS = 128
SEED = 0


def load(name: str):
    try:
        return cw.load_model(name)
    except cw.ModelSourceError as e:
        print(f"note: skipping {name!r}: load_model says: {str(e).splitlines()[0][:120]}")
        return None


def run(model, preset: str, steps: int | None, seed: int) -> dict:
    n = len(model.class_names)
    labels = np.arange(n)
    t = time.time()
    res = cw.visualize(model, list(labels), preset=preset, steps=steps, seed=seed)
    seconds = time.time() - t
    own = model.model.predict(res.images.astype(np.float32) / 255.0, verbose=0)
    probs = judge_probs(res.images)
    pred = probs.argmax(1)
    return {
        "images": res.images,
        "own_p": own[labels, labels],
        "judge_pred": pred,
        "judge_p": probs[np.arange(n), pred],
        "count": int(np.sum(pred == labels)),
        "seconds": seconds,
        "recipe": res.recipe,
        "steps": res.steps,
        "restarted": res.restarted,
        "stuck": res.stuck,
    }


def save_montage(path: Path, images: np.ndarray, titles: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(1.6 * len(images), 2.1))
    for ax, img, title in zip(axes, images, titles):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_figure(
    path: Path, rows: list[tuple[str, str, dict]], names: list[str], steps: int, seed: int
) -> None:
    """Rows = (model, preset) pairs, 9 columns with the class names as titles; under a
    picture the judge names a different class, its name in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(names)
    fig, axes = plt.subplots(
        len(rows), n, figsize=(1.25 * n + 1.3, 1.6 * len(rows) + 0.3), squeeze=False
    )
    for r, (model_name, preset, out) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(out["images"][c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(names[c].replace("_", "\n"), fontsize=8)
            if out["judge_pred"][c] != c:
                ax.set_xlabel(names[out["judge_pred"][c]], fontsize=6, color="#b00")
        axes[r, 0].set_ylabel(
            f"{model_name}\n{preset}\njudge {out['count']}/{n}",
            fontsize=7,
            rotation=0,
            ha="right",
            va="center",
        )
    call = (
        f"cw.visualize(model, list(range({n})), seed={seed}) (defaults)"
        if steps is None
        else f"cw.visualize(model, list(range({n})), preset, steps={steps}, seed={seed})"
    )
    fig.suptitle(
        f"{call}; red: what the independent judge (tests/judge.py) calls a picture it "
        "does not recognize",
        fontsize=7,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def default_call(args) -> None:
    """The user's call at its defaults, per model and seed; the time against the old one."""
    from interleave import block, compare

    rows, starts, first = [], [], []
    for model_name in ("shapes", "shapes-standard"):
        model = load(model_name)
        if model is None:
            continue
        names = list(model.class_names)
        total = 0
        for seed in args.seeds:
            out = run(model, "auto", None, seed)
            total += out["count"]
            missed = [f"{names[c]}->{names[p]}" for c, p in enumerate(out["judge_pred"]) if p != c]
            print(
                f"{model_name:<16} seed {seed}: recipe {out['recipe']}, {out['steps']} steps, "
                f"judge {out['count']}/{len(names)}, own p min {out['own_p'].min():.3f}, "
                f"restarted {out['restarted']}, stuck {out['stuck']}; "
                f"missed: {', '.join(missed) or '-'}",
                flush=True,
            )
            save_montage(
                args.out / f"default_{model_name}_seed{seed}.png",
                out["images"],
                [f"{names[c]}\nown {out['own_p'][c]:.2f}" for c in range(len(names))],
            )
            if seed == args.seeds[0]:
                rows.append((model_name, out["recipe"], out))
            if model_name == "shapes":  # where the run starts: the chosen seeds, 0 steps
                start = run(model, "auto", 0, seed)
                starts.append(start["count"])
                print(
                    f"{'':<16} seed {seed}, its start (0 steps): judge {start['count']}/"
                    f"{len(names)}, own p min {start['own_p'].min():.3f}",
                    flush=True,
                )
                if seed == args.seeds[0]:
                    first = [
                        ("shapes", "start\n(0 steps)", start),
                        ("shapes", "after\n128 steps", out),
                    ]
        print(f"{model_name:<16} judge total {total}/{len(names) * len(args.seeds)}")
        if model_name == "shapes":
            print(f"{'':<16} its starts: judge total {sum(starts)}/{len(names) * len(starts)}")
    robust = cw.load_model("shapes")
    classes = list(range(len(robust.class_names)))
    one_draw = replace(optvis.PRESETS["robust"], seed_draws=1)
    timings = compare(
        {
            "default call (auto)": block(lambda: cw.visualize(robust, classes, seed=0)),
            # the same call starting from its first seed draw, as before seed_draws
            "one seed draw (seed_draws=1)": block(
                lambda: cw.visualize(robust, classes, seed=0, preset=one_draw)
            ),
            "previous default (lucid, 256 steps)": block(
                lambda: cw.visualize(robust, classes, preset="lucid", steps=256, seed=0)
            ),
        },
        rounds=args.rounds,
    )
    base = "previous default (lucid, 256 steps)"
    print("time to the 9 pictures of load_model('shapes'), seed 0:")
    for name in timings.names:
        print(timings.line(name, per="9 pictures", scale=1.0, unit="s", against=base))
    if args.figure and rows:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        save_figure(args.figure, rows, list(cw.SHAPES_CLASS_NAMES), None, args.seeds[0])
        print(f"figure: {args.figure}")
    if args.start_figure and first:
        args.start_figure.parent.mkdir(parents=True, exist_ok=True)
        save_figure(args.start_figure, first, list(cw.SHAPES_CLASS_NAMES), None, args.seeds[0])
        print(f"start figure: {args.start_figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/pictures"))
    parser.add_argument("--default-call", action="store_true", help="see the docstring")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (interleaved)")
    parser.add_argument("--figure", type=Path, help="also draw the README figure here")
    parser.add_argument(
        "--start-figure", type=Path, help="also draw the robust model's start and end here"
    )
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="default: both")
    parser.add_argument("--presets", nargs="+", help="default: every preset in optvis.PRESETS")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.default_call:
        default_call(args)
        return

    presets = args.presets or list(optvis.PRESETS)
    print(f"presets: {', '.join(presets)}; {args.steps} steps, seed {args.seed}")
    header = f"{'model':<16} {'preset':<13} {'judge':>5}  {'own p (min)':>11}  missed"
    print(header)
    print("-" * len(header))
    rows = []
    for model_name in args.models:
        model = load(model_name)
        if model is None:
            continue
        names = list(model.class_names)
        for preset in presets:
            out = run(model, preset, args.steps, args.seed)
            missed = [
                f"{names[c]}->{names[p]} ({q:.2f})"
                for c, (p, q) in enumerate(zip(out["judge_pred"], out["judge_p"]))
                if p != c
            ]
            print(
                f"{model_name:<16} {preset:<13} {out['count']:>3}/{len(names)}  "
                f"{out['own_p'].min():>11.3f}  {', '.join(missed) or '-'}"
            )
            own = " ".join(f"{v:.2f}" for v in out["own_p"])
            print(f"{'':<31}own p per class: {own}")
            titles = [
                f"{names[c]}\nown {out['own_p'][c]:.2f}\njudge: {names[p]}"
                for c, p in enumerate(out["judge_pred"])
            ]
            save_montage(args.out / f"{model_name}_{preset}.png", out["images"], titles)
            rows.append((model_name, preset, out))
    print(f"montages in {args.out}")
    if args.figure and rows:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        save_figure(args.figure, rows, list(cw.SHAPES_CLASS_NAMES), args.steps, args.seed)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
