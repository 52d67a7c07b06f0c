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
6. the cost of rendering a preview frame every step (what a live widget asks for);
7. the first image of a run on a fresh model object, in this process (the model built
   untimed): ``visualize(model, class, steps=1, precision="float32")`` against a bare
   compiled forward+backward traced and called once on another fresh model, for the
   embedded model and VGG16 (weights=None, 224x224); the first frame of a run iterated
   frame by frame (``optimize(..., every=1)``, what the class-optimization panel shows
   first: on a step not compiled yet, the first step taken eagerly before the trace)
   against the same bare pass (target <= 1.2); ``visualize`` with
   ``precision="auto"`` (the default: on hardware with fast bfloat16 it may measure the
   model first, unless ``CNNVIZ_AUTO_PRECISION=float32`` is set), and after ``warm_up``
   (what a panel that warms up when it opens gives the first click); the first round's
   figures apart (the process's first image: the model-independent parts of the step
   are traced then, once per process);
8. the time to a first image in a FRESH process (subprocesses, ours and tf-keras-vis
   alternated, order reversed each round, >= 3 rounds, medians): from launch (Python,
   TensorFlow and the package imported) and from a built model, to one optimized image.

``--part step`` (the default) runs 1-6, ``--part first-image`` 7 and 8 (about 8 minutes in
quick mode at load 6 on 2 cores; ``--models shapes`` for the embedded model only),
``--part all`` everything.  tf-keras-vis is imported from the environment; where it is
absent, ``--peers DIR`` (a ``pip install --target DIR``) is put on the path
(``CNNVIZ_PEERS`` works too).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from interleave import compare, load

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.model import precision


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


# ------------------------------------------------------------------------ first image
FIRST_CLASS = {"shapes": 0, "vgg16": 385}


def fresh_model(name: str) -> keras.Model:
    """A new model object (nothing of it compiled or cached yet)."""
    if name == "vgg16":
        return keras.applications.VGG16(weights=None)
    return cw.load_model("shapes").model


def bench_first_image(rounds: int, models=("shapes", "vgg16")) -> None:
    """7: first image on a fresh model vs a bare trace + one step, interleaved."""
    print("\nfirst image on a fresh model object (this process; model built untimed):")
    tf.get_logger().setLevel("ERROR")  # the bare step is traced anew for every model
    for name in models:
        first_image(name, FIRST_CLASS[name], rounds)


def first_image(name: str, cls: int, rounds: int) -> None:
    def ours(warm: bool = False, precision: str = "auto") -> float:
        model = fresh_model(name)
        if warm:  # what a panel does when it opens, before the user clicks
            cw.warm_up(model, cls, precision=precision)
        start = time.perf_counter()
        cw.visualize(model, cls, steps=1, precision=precision)
        seconds = time.perf_counter() - start
        del model
        gc.collect()
        return seconds

    def first_frame() -> float:
        # what a panel shows first: a run iterated frame by frame (every=1), on a step
        # not compiled yet, shows its first step taken eagerly (a preview) before tracing
        model = fresh_model(name)
        start = time.perf_counter()
        run = cw.optimize(model, cls, steps=2, every=1, precision="float32")
        frames = iter(run)
        frame = next(frames)
        seconds = time.perf_counter() - start
        # a large pass (VGG16) has no preview: its first frame is the compiled step's
        assert frame.preview == run.preview, "a small model's first frame is its preview"
        run.stop()
        for _ in frames:  # the stopped run ends at once: it keeps the preview
            pass
        del model, run, frames
        gc.collect()
        return seconds

    def bare() -> float:
        model = fresh_model(name)
        hwc = tuple(model.inputs[0].shape[1:])
        start = time.perf_counter()
        step = bare_step_fn(model, hwc, 1.0, 0.0)
        step(tf.constant(cls)).numpy()
        seconds = time.perf_counter() - start
        del model, step
        gc.collect()
        return seconds

    bare_name = "bare trace + one step"
    first = "cnnviz first image (visualize, 1 step)"
    frame1 = "cnnviz first frame of a run (panel; preview)"
    forced = os.environ.get(precision.AUTO_ENV, "")
    auto = "auto" + (f", {precision.AUTO_ENV}={forced}" if forced else "")
    t = compare(
        {
            bare_name: bare,
            first: lambda: ours(precision="float32"),
            frame1: first_frame,
            f"cnnviz first image, precision={auto}": ours,
            "cnnviz first image after warm_up": lambda: ours(warm=True, precision="float32"),
        },
        rounds,
        warm=False,  # every block builds its own fresh model: nothing to warm
    )
    print(f"  {name} ({'x'.join(map(str, fresh_model_shape(name)))}):")
    for n in t.names:
        print(t.line(n, per="image", against=bare_name))
    print(
        f"    ratio first image (float32) / bare (median of rounds): "
        f"{t.ratio(first, bare_name):.2f}"
    )
    print(
        f"    ratio first frame of a run (what a panel shows first) / bare (median of "
        f"rounds): {t.ratio(frame1, bare_name):.2f} (target <= 1.2)"
    )
    # the first round is the process's first image of each: the shared parts of the step
    # are traced then, and the budget measures the machine's speed
    print(
        "    the process's first (round 1): "
        + ", ".join(
            f"{n.replace('cnnviz first image', 'ours')} {t.seconds[n][0]:.2f} s" for n in t.names
        )
    )


def fresh_model_shape(name: str) -> tuple:
    return (224, 224, 3) if name == "vgg16" else (64, 64, 3)


def child(tool: str, name: str, steps: int, launched: float) -> None:
    """One fresh-process measure (run by bench_fresh_process): prints one JSON line.
    ``launched``: the parent's ``time.time()`` just before it started this process."""
    t0 = time.perf_counter()
    cls = FIRST_CLASS[name]
    model = fresh_model(name)
    t1 = time.perf_counter()
    if tool == "cnnviz":
        first = cw.visualize(model, cls, steps=1).image
        t2 = time.perf_counter()
        launch = time.time() - launched
        cw.visualize(model, cls, steps=steps)
    else:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore

        # tf-keras-vis reads logits from a clone with the softmax replaced (clone=True)
        am = ActivationMaximization(model, model_modifier=ReplaceToLinear(), clone=True)
        first = np.asarray(am(CategoricalScore(cls), steps=1))[0]
        t2 = time.perf_counter()
        launch = time.time() - launched
        am(CategoricalScore(cls), steps=steps)
    t3 = time.perf_counter()
    assert first.shape[:2] == fresh_model_shape(name)[:2], first.shape
    print(json.dumps({"launch": launch, "build": t1 - t0, "first": t2 - t1, "more": t3 - t2}))


def peers_importable(peers: str | None) -> bool:
    """tf-keras-vis can be imported: from the environment, or else from ``peers`` (a
    ``pip install --target`` directory), which is then put on ``sys.path``."""
    try:
        import tf_keras_vis  # noqa: F401
    except ImportError:
        if not (peers and os.path.isdir(os.path.join(peers, "tf_keras_vis"))):
            return False
        sys.path.append(peers)
    return True


def bench_fresh_process(
    rounds: int, steps: int, peers: str | None, compare: bool, models=("shapes", "vgg16")
) -> None:
    """8: time to a first image in a fresh process, ours vs tf-keras-vis, alternated."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    tools = ["cnnviz"]
    if compare and peers_importable(peers):
        tools.append("tf-keras-vis")
        if peers:  # the children find it where this process did
            env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), peers) if p)
    elif compare:
        print("  tf-keras-vis not importable: pip install -r bench/requirements.txt")
    print(
        f"\nfresh process to a first image ({rounds} rounds, tools alternated, order reversed "
        f"each round; 'launch' = from starting Python, imports included; then {steps} more "
        "steps in the same process):"
    )
    for name in models:
        rows: dict[str, list[dict]] = {t: [] for t in tools}
        for r in range(max(3, rounds)):
            for tool in tools if r % 2 == 0 else tools[::-1]:
                argv = ["--child", tool, name, str(steps), repr(time.time())]
                out = subprocess.run(
                    [sys.executable, __file__, *argv],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if out.returncode != 0:
                    raise RuntimeError(f"{tool} {name} failed:\n{out.stderr[-2000:]}")
                got = json.loads(out.stdout.strip().splitlines()[-1])
                got["load"] = load()
                rows[tool].append(got)

        def med(tool: str, key: str, rows=rows) -> float:
            return statistics.median(x[key] for x in rows[tool])

        print(f"  {name}:")
        for tool in tools:
            loads = [x["load"] for x in rows[tool]]
            print(
                f"    {tool:<13} launch to first image {med(tool, 'launch'):6.1f} s, built "
                f"model to first image {med(tool, 'first'):6.2f} s, {steps} more steps "
                f"{med(tool, 'more'):6.2f} s   (load {min(loads):.1f}-{max(loads):.1f}, "
                f"{len(loads)} rounds)"
            )
        if len(tools) == 2:
            a, b = rows["tf-keras-vis"], rows["cnnviz"]
            for key, what in (("launch", "launch to first image"), ("first", "model to first")):
                ratio = statistics.median(x[key] / y[key] for x, y in zip(a, b))
                print(f"    tf-keras-vis / ours, {what} (median of rounds): {ratio:.2f}")
            ratio = statistics.median(x["more"] / y["more"] for x, y in zip(a, b))
            print(f"    tf-keras-vis / ours, {steps} more steps (median of rounds): {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    parser.add_argument("--no-compare", action="store_true", help="skip tf-keras-vis")
    parser.add_argument("--part", choices=("step", "first-image", "all"), default="step")
    parser.add_argument("--peers", help="a pip --target directory holding tf-keras-vis")
    parser.add_argument(
        "--models", default="shapes,vgg16", help="first-image models: shapes, vgg16 or both"
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]), float(args.child[3]))
        return
    keras.utils.set_random_seed(0)
    steps, rounds = (5, 3) if args.quick else (20, 3)
    peers = None if args.no_compare else (args.peers or os.environ.get("CNNVIZ_PEERS"))
    if peers:
        peers_importable(peers)
    if args.part in ("step", "all"):
        bench_vgg(steps, rounds, compare_peers=not args.no_compare)
        bench_shapes(memory_runs=10 if args.quick else 50)
    if args.part in ("first-image", "all"):
        models = tuple(m for m in args.models.split(",") if m)
        bench_first_image(rounds=3 if args.quick else 5, models=models)
        bench_fresh_process(
            rounds=3 if args.quick else 5,
            steps=steps,
            peers=peers,
            compare=not args.no_compare,
            models=models,
        )


if __name__ == "__main__":
    main()
