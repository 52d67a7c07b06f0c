"""Class-optimization speed and memory figures (not tests), all measured in one run.

    .venv/bin/pip install -r bench/requirements.txt   # tf-keras-vis, for the comparison
    .venv/bin/python bench/bench_optvis.py [--quick]

Prints:
Comparisons are interleaved (bench/interleave.py: order reversed each round, >= 3 rounds,
medians of per-round ratios, load average beside each figure).

1. step cost on VGG16 (weights=None, 224x224, batch 1): our compiled step (default
   "lucid" preset: Fourier image, decorrelated colour, pad/jitter/scale/rotate, Adam)
   divided by a bare compiled forward+backward pass of the same model (target <= 1.10);
2. tf-keras-vis' ActivationMaximization for the same number of steps divided by ours
   (target >= 1.6), if tf-keras-vis is installed;
3. the embedded model, all nine classes in one batch, 256 steps (target <= 30 s);
4. tracing count across 20 runs with different class indices (target: no new traces);
5. resident memory over 50 consecutive runs (target: <= 5 % growth);
6. the cost of rendering a preview frame every step (what a live widget asks for).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from interleave import compare

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bare_step_fn(model, hwc=(224, 224, 3), scale: float = 255.0, offset: float = -128.0):
    """A bare compiled forward+backward pass w.r.t. the input (plus a trivial update), on a
    random input ``uniform * scale + offset`` (default: caffe-preprocessed VGG range)."""
    x = tf.Variable(tf.random.uniform((1, *hwc)) * scale + offset)

    @tf.function
    def step(index):
        with tf.GradientTape() as tape:
            out = model(x, training=False)
            score = tf.gather(out[0], index)
        g = tape.gradient(score, x)
        x.assign_add(0.01 * g)
        return score

    return step


def per_step(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps


def bench_vgg(steps: int, rounds: int, compare_peers: bool) -> None:
    vgg = cw.load_model("vgg16", weights=None)
    bare = bare_step_fn(vgg.model)
    index = tf.constant(385)
    bare(index).numpy()  # trace

    def ours_block():
        run = cw.optimize(vgg, obj.class_logit(385), steps=steps, every=steps)
        start = time.perf_counter()
        for _ in run:
            pass
        return (time.perf_counter() - start) / steps

    variants = {
        "bare compiled forward+backward": lambda: per_step(lambda: bare(index).numpy(), steps),
        "cnnviz step (lucid preset)": ours_block,
    }
    tkv = None
    if compare_peers:
        try:
            from tf_keras_vis.activation_maximization import ActivationMaximization
            from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
            from tf_keras_vis.utils.scores import CategoricalScore
        except ImportError:
            print("  tf-keras-vis not installed: pip install -r bench/requirements.txt")
        else:
            # tf-keras-vis replaces the softmax on a copy of the model (clone=True)
            am = ActivationMaximization(vgg.model, model_modifier=ReplaceToLinear(), clone=True)
            score = CategoricalScore(385)
            tkv = "tf-keras-vis ActivationMaximization"
            variants[tkv] = lambda: per_step(lambda: am(score, steps=steps), 1) / steps
    t = compare(variants, rounds)
    bare_name, ours = list(variants)[:2]
    print(f"VGG16 224x224 batch 1, {len(t.seconds[ours])} interleaved rounds of {steps} steps:")
    for name in variants:
        print(t.line(name, per="step", against=None if name == bare_name else bare_name))
    print(
        f"  ratio ours / bare (median of rounds): {t.ratio(ours, bare_name):.3f} (target <= 1.10)"
    )
    if tkv:
        print(
            f"  ratio tf-keras-vis / ours (median of rounds): {t.ratio(tkv, ours):.3f} "
            "(target >= 1.6)"
        )


def bench_shapes(memory_runs: int) -> None:
    shapes = cw.load_model("shapes")
    n = len(shapes.class_names)
    cw.visualize(shapes, list(range(n)), steps=2)  # trace
    start = time.perf_counter()
    res = cw.visualize(shapes, list(range(n)), steps=256)
    seconds = time.perf_counter() - start
    probs = shapes.model.predict(res.images / 255.0, verbose=0)[np.arange(n), np.arange(n)]
    print(
        f"\nembedded model, all {n} classes in one batch, 256 steps: {seconds:.1f} s "
        f"(target <= 30 s); min class probability {probs.min():.3f}"
    )

    cw.visualize(shapes, obj.class_logit(0), steps=2)  # first (and only) trace of this step
    count = optvis.step_tracing_count(shapes)
    for i in range(20):
        cw.visualize(shapes, obj.class_logit(i % n), steps=2, seed=i, lr=0.01 + i / 1000)
    print(
        f"traces of the compiled steps across 20 runs with different classes, seeds and "
        f"learning rates: {optvis.step_tracing_count(shapes) - count} new (target 0)"
    )

    for i in range(5):
        cw.visualize(shapes, list(range(n)), steps=16, seed=i)
    before = rss_mb()
    for i in range(memory_runs):
        cw.visualize(shapes, list(range(n)), steps=16, seed=i)
    after = rss_mb()
    print(
        f"resident memory over {memory_runs} runs: {before:.0f} MB -> {after:.0f} MB "
        f"({(after / before - 1) * 100:+.1f} %, target <= 5 %)"
    )

    def timed_run(every):
        run = cw.optimize(shapes, list(range(n)), steps=128, every=every)
        start = time.perf_counter()
        for _frame in run:
            pass
        return time.perf_counter() - start

    t = compare(
        {
            "no frames": lambda: timed_run(128),
            "every step": lambda: timed_run(1),
            "every 4 steps": lambda: timed_run(4),
        },
        5,
    )
    print("preview frames (9 images), 128 steps, interleaved:")
    for name in t.names:
        print(
            t.line(
                name,
                per="run",
                scale=1.0,
                unit="s",
                against=None if name == "no frames" else "no frames",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    parser.add_argument("--no-compare", action="store_true", help="skip tf-keras-vis")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    steps, rounds = (5, 3) if args.quick else (20, 3)
    bench_vgg(steps, rounds, compare_peers=not args.no_compare)
    bench_shapes(memory_runs=10 if args.quick else 50)


if __name__ == "__main__":
    main()
