"""MaCo step cost (not a test): the "maco" preset's compiled step against a bare compiled
forward+backward pass of the same model, and against the "lucid" preset's step.

    .venv/bin/python bench/bench_maco.py [--quick]

For VGG16 (weights=None, 224x224, batch 1) and the embedded shapes model (64x64, batch 1),
blocks of steps of the variants are measured INTERLEAVED (bare, maco, lucid, maco-step,
then the reverse order in the next round, ...), so they share the machine's load; each
round gives ratios, and the median of the per-round ratios is printed (target: maco / bare
<= 1.10).  "maco-step" is the compiled step alone, without the Run loop's per-step
bookkeeping, which weighs on a model as small as the embedded one.  The load average is
printed beside each figure: on a shared machine the absolute milliseconds move, the
interleaved ratios much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bench_optvis  # the bare step, shared (bench/ is on sys.path when run as a script)
import keras
import numpy as np
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:4.2f}/{five:4.2f}"


def bare_step_fn(model: keras.Model, hwc: tuple[int, int, int]):
    """A bare compiled forward+backward pass w.r.t. a [0, 1] input (bench_optvis' helper)."""
    return bench_optvis.bare_step_fn(model, hwc, scale=1.0, offset=0.0)


def bench(name: str, loaded, index: int, steps: int, rounds: int) -> None:
    hwc = tuple(int(d) for d in loaded.model.inputs[0].shape[1:])
    bare = bare_step_fn(loaded.model, hwc)
    target = tf.constant(index)

    def bare_block() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            bare(target).numpy()
        return (time.perf_counter() - start) / steps

    def preset_block(preset: str):
        def block() -> float:
            run = cw.optimize(
                loaded, obj.class_logit(index), preset=preset, steps=steps, every=steps
            )
            start = time.perf_counter()
            for _ in run:
                pass
            return (time.perf_counter() - start) / steps

        return block

    def step_only_block() -> float:
        """The maco preset's compiled step alone, without the Run's per-step bookkeeping
        (two host syncs, history): what the step itself costs."""
        run = cw.optimize(loaded, obj.class_logit(index), preset="maco", steps=steps)
        c = run._c
        c.reset(c.param.init(np.random.default_rng(0), c.batch, c.h, c.w, c.c), run.lr)
        weights = tf.constant(run._weights)
        start = time.perf_counter()
        for i in range(steps):
            scores, _ok = c.step(run._values, weights, tf.constant([0, i], tf.int32))
            scores.numpy()
        return (time.perf_counter() - start) / steps

    blocks = {
        "bare": bare_block,
        "maco": preset_block("maco"),
        "lucid": preset_block("lucid"),
        "maco-step": step_only_block,
    }
    for block in blocks.values():  # trace and warm up
        block()
    times: dict[str, list[float]] = {k: [] for k in blocks}
    ratios: dict[str, list[float]] = {
        "maco/bare": [],
        "lucid/bare": [],
        "maco/lucid": [],
        "maco-step/bare": [],
    }
    print(f"\n{name} {hwc[0]}x{hwc[1]} batch 1: {rounds} interleaved rounds of {steps} steps")
    order = list(blocks)
    for r in range(rounds):
        got = {k: blocks[k]() for k in order}
        for k, v in got.items():
            times[k].append(v)
        ratios["maco/bare"].append(got["maco"] / got["bare"])
        ratios["lucid/bare"].append(got["lucid"] / got["bare"])
        ratios["maco/lucid"].append(got["maco"] / got["lucid"])
        ratios["maco-step/bare"].append(got["maco-step"] / got["bare"])
        print(
            f"  round {r + 1} ({'-'.join(order)}): "
            + ", ".join(f"{k} {v * 1000:7.1f} ms" for k, v in got.items())
            + f"; maco/bare {ratios['maco/bare'][-1]:.3f}  [{load()}]",
            flush=True,
        )
        order.reverse()
    for k, v in times.items():
        print(f"  {k:9s} step (median): {statistics.median(v) * 1000:7.1f} ms/step   [{load()}]")
    for k, v in ratios.items():
        target = "   (target <= 1.10)" if k == "maco/bare" else ""
        print(f"  {k:14s} (median of rounds): {statistics.median(v):6.3f}{target}   [{load()}]")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    print(f"start [{load()}]")
    vgg = cw.load_model("vgg16", weights=None)
    bench("VGG16 (weights=None)", vgg, 385, *((3, 3) if args.quick else (6, 3)))
    shapes = cw.load_model("shapes")
    bench("embedded shapes model", shapes, 2, *((30, 3) if args.quick else (100, 6)))


if __name__ == "__main__":
    main()
