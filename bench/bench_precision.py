"""float32 against reduced precision against the peers, side by side (not a test).

    .venv/bin/python bench/bench_precision.py [--quick] [--reduced bfloat16|float16]

On VGG16 (weights=None, 224x224), every comparison interleaved (bench/interleave.py:
blocks in order A B C ..., reversed each round, >= 3 rounds, medians, the median of
per-round ratios, the load average beside each figure):

1. batched forward, batch 8, per image: float32 vs the reduced-precision twin
   (target: >= 2.5x faster where the hardware has bf16/fp16 units);
2. the optimization step (lucid preset): bare compiled float32 forward+backward, ours in
   float32, ours in reduced precision (target: >= 1.8x faster than the bare float32
   step), tf-keras-vis' ActivationMaximization and Xplique if importable;
3. Grad-CAM and vanilla saliency: ours float32 and reduced, tf-keras-vis, Xplique;
4. occlusion 14x14 (patch 32, stride 16): ours float32, "auto" and reduced, per position,
   against the bare batched float32 forward per position (the limit), Xplique if
   importable;
5. dataset ranking (top_examples of block4_conv3 over 64 images, batch 16): float32 vs
   "auto" vs reduced, beside the bare batched forward to the layer in float32 and in
   reduced precision -- the hardware's ceiling for this pass (target: "auto" >= 2.5x
   float32 where the hardware has bf16);
6. atlas visualizations (4 channels of block4_conv3, one batch, a few steps, fresh store
   each time): float32 vs "auto" vs reduced, beside a bare forward+backward pass to the
   layer in both precisions (the ceiling for its steps) (target >= 2.5x); the atlas'
   ranking is section 5's pass.

Sections 5 and 6 end with one row per figure: reduced over float32 for the bare passes
(the ceiling) beside the ranking's and the atlas'.

Section 2 also times ours with precision="auto" (target: >= 1.8x the bare float32 step);
"auto" is decided before the timing (the probe's cost is printed: a process pays it once
per model, batch and image size).

First it prints this machine's CPU, what ``hardware_precisions`` finds and what
``choose_precision`` ("auto") picks for each kind of work.  On a CPU without bf16
instructions reduced precision is emulated (slow): the figures say so.

The peers are never package dependencies: ``pip install -r bench/requirements.txt``
(tf-keras-vis); Xplique is used if importable.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import bench_optvis  # the bare step (bench/ is on sys.path when run as a script)
import keras
import numpy as np
import tensorflow as tf
from interleave import block, compare, load

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine.model.precision import model_in

CLASS = 385


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def peers():
    found = {}
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.saliency import Saliency
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore

        found["tf-keras-vis"] = (
            ActivationMaximization,
            Gradcam,
            Saliency,
            ReplaceToLinear,
            CategoricalScore,
        )
    except ImportError:
        print("tf-keras-vis: not importable (pip install -r bench/requirements.txt)")
    try:
        import xplique  # noqa: F401

        found["xplique"] = True
    except ImportError:
        print("Xplique: not importable (pip install xplique to compare)")
    return found


def forward_fn(model):
    @tf.function
    def forward(x):
        return tf.cast(model(x, training=False), tf.float32)

    return forward


def section(title: str) -> None:
    print(f"\n{title}   [load {load():.1f} at start]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewest steps and repeats")
    parser.add_argument(
        "--reduced",
        default=None,
        help="bfloat16 or float16 (default: what the hardware has, else bfloat16)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sections", default="1,2,3,4,5,6", help="which sections to run, e.g. 2,4,5,6"
    )
    args = parser.parse_args()
    want = {int(x) for x in args.sections.split(",") if x.strip()}
    keras.utils.set_random_seed(0)
    candidates, hardware = cw.hardware_precisions()
    reduced = args.reduced or (candidates[0] if candidates else "bfloat16")
    emulated = reduced not in candidates
    print(
        f"CPU: {cpu_name()}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}"
    )
    print(f"hardware_precisions: {candidates or 'none'} ({hardware})")
    print(
        f"reduced precision measured: {reduced}"
        + (" (EMULATED on this hardware: expect it slower than float32)" if emulated else "")
    )
    found = peers()
    steps = 1 if args.quick else 3
    reps = 1 if args.quick else 3
    rounds = max(3, args.rounds)

    vgg = cw.load_model("vgg16", weights=None)
    twin = model_in(vgg, reduced)
    decisions = {2: ("optimize", 1), 6: ("optimize", 4), 4: ("forward", 10), 5: ("forward", 16)}
    for work, batch in (v for k, v in decisions.items() if k in want):
        start = time.perf_counter()
        choice = cw.choose_precision(vgg, work, batch=batch, size=224)
        took = time.perf_counter() - start
        print(
            f"auto for {work} (batch {batch}): {choice.precision} - {choice.reason} "
            f"[decided in {took:.1f} s]",
            flush=True,
        )

    # shared by the sections
    f32, f16 = forward_fn(vgg.model), forward_fn(twin.model)
    index = tf.constant(CLASS)
    image = cw.sample_image("grace_hopper", size=224)
    xin = tf.constant(keras.applications.vgg16.preprocess_input(image[None] * 255.0))

    if 1 in want:
        # 1. batched forward -------------------------------------------------------------
        section("1. batched forward, VGG16 224x224, batch 8 (per image)")
        x8 = tf.constant(np.random.default_rng(0).uniform(-100, 100, (8, 224, 224, 3)), tf.float32)
        t = compare(
            {
                "float32": lambda: block(lambda: f32(x8).numpy(), reps)() / 8,
                reduced: lambda: block(lambda: f16(x8).numpy(), reps)() / 8,
            },
            rounds,
        )
        print(t.line("float32", per="image"))
        print(t.line(reduced, per="image", against="float32"))
        print(
            f"  speed-up {reduced} over float32: {1 / t.ratio(reduced, 'float32'):.2f}x "
            "(target >= 2.5x where the hardware has bf16/fp16 units)",
            flush=True,
        )

    if 2 in want:
        # 2. optimization step -------------------------------------------------------------
        section(f"2. optimization step (lucid preset), VGG16 224x224 batch 1, blocks of {steps}")
        bare = bench_optvis.bare_step_fn(vgg.model)

        def ours(precision):
            def run_block():
                run = cw.optimize(
                    vgg, obj.class_logit(CLASS), steps=steps, every=steps, precision=precision
                )
                for _ in run:
                    pass
                return run.result.seconds / steps

            return run_block

        variants = {
            "bare float32 forward+backward": block(lambda: bare(index).numpy(), steps),
            "cnnviz float32": ours("float32"),
            "cnnviz auto": ours("auto"),
            f"cnnviz {reduced}": ours(reduced),
        }
        if "tf-keras-vis" in found:
            am_cls, _, _, linear, score_cls = found["tf-keras-vis"]
            am = am_cls(vgg.model, model_modifier=linear(), clone=True)
            score = score_cls(CLASS)
            variants["tf-keras-vis ActivationMaximization"] = block(
                lambda: am(score, steps=steps), 1
            )
            variants["tf-keras-vis ActivationMaximization"] = (
                lambda f=variants["tf-keras-vis ActivationMaximization"]: f() / steps
            )
        t = compare(variants, rounds)
        ref = "bare float32 forward+backward"
        for name in variants:
            print(t.line(name, per="step", against=None if name == ref else ref))
        print(
            f"  speed-up cnnviz {reduced} over the bare float32 step: "
            f"{1 / t.ratio(f'cnnviz {reduced}', ref):.2f}x (target >= 1.8x)",
            flush=True,
        )
        print(
            f"  speed-up cnnviz auto over the bare float32 step: "
            f"{1 / t.ratio('cnnviz auto', ref):.2f}x (target >= 1.8x); over cnnviz float32: "
            f"{1 / t.ratio('cnnviz auto', 'cnnviz float32'):.2f}x",
            flush=True,
        )
        if "tf-keras-vis" in found:
            print(
                f"  tf-keras-vis / cnnviz float32: "
                f"{t.ratio('tf-keras-vis ActivationMaximization', 'cnnviz float32'):.2f}x"
            )

    if 3 in want:
        # 3. Grad-CAM and saliency ------------------------------------------------------------
        section("3. Grad-CAM (block5_conv3) and saliency, VGG16 224x224, one image")
        fwd_bwd = bench_optvis.bare_step_fn(vgg.model)
        ref = "bare float32 forward+backward"
        variants = {
            "bare float32 forward+backward": block(lambda: fwd_bwd(index).numpy(), reps),
            "cnnviz grad_cam float32": block(lambda: cw.grad_cam(vgg, image, CLASS), reps),
            f"cnnviz grad_cam {reduced}": block(
                lambda: cw.grad_cam(vgg, image, CLASS, precision=reduced), reps
            ),
            "cnnviz saliency float32": block(lambda: cw.saliency(vgg, image, CLASS), reps),
            f"cnnviz saliency {reduced}": block(
                lambda: cw.saliency(vgg, image, CLASS, precision=reduced), reps
            ),
        }
        if "tf-keras-vis" in found:
            _, gradcam_cls, saliency_cls, linear, score_cls = found["tf-keras-vis"]
            gc = gradcam_cls(vgg.model, model_modifier=linear(), clone=True)
            sal = saliency_cls(vgg.model, model_modifier=linear(), clone=True)
            score = score_cls(CLASS)
            variants["tf-keras-vis Gradcam"] = block(
                lambda: gc(score, xin, penultimate_layer="block5_conv3"), reps
            )
            variants["tf-keras-vis Saliency"] = block(lambda: sal(score, xin), reps)
        t = compare(variants, rounds)
        for name in variants:
            print(t.line(name, against=None if name == ref else ref), flush=True)

    if 4 in want:
        # 4. occlusion ------------------------------------------------------------------------
        section("4. occlusion 14x14 (patch 32, stride 16), VGG16 224x224, per position")
        x10 = tf.constant(
            np.random.default_rng(1).uniform(-100, 100, (10, 224, 224, 3)), tf.float32
        )
        variants = {
            "bare float32 batched forward (batch 10)": lambda: (
                block(lambda: f32(x10).numpy(), 1)() / 10
            ),
            "cnnviz occlusion float32": lambda: (
                block(
                    lambda: cw.occlusion(
                        vgg, image, CLASS, patch=32, stride=16, precision="float32"
                    ),
                    1,
                )()
                / 196
            ),
            "cnnviz occlusion auto": lambda: (
                block(lambda: cw.occlusion(vgg, image, CLASS, patch=32, stride=16), 1)() / 196
            ),
            f"cnnviz occlusion {reduced}": lambda: (
                block(
                    lambda: cw.occlusion(vgg, image, CLASS, patch=32, stride=16, precision=reduced),
                    1,
                )()
                / 196
            ),
        }
        if "xplique" in found:
            from xplique.attributions import Occlusion as XOcclusion

            xo = XOcclusion(vgg.model, patch_size=32, patch_stride=16, batch_size=10)
            target = tf.one_hot([CLASS], 1000)
            variants["Xplique Occlusion"] = lambda: block(lambda: xo(xin, target), 1)() / 196
        t = compare(variants, rounds)
        ref = "bare float32 batched forward (batch 10)"
        for name in variants:
            print(t.line(name, per="position", against=None if name == ref else ref), flush=True)
        print(
            "  speed-up occlusion auto over float32: "
            f"{1 / t.ratio('cnnviz occlusion auto', 'cnnviz occlusion float32'):.2f}x",
            flush=True,
        )

    summary: dict[str, float] = {}
    if 5 in want:
        # 5. dataset ranking ------------------------------------------------------------------
        n_images = 32 if args.quick else 64
        section(f"5. top_examples of block4_conv3 over {n_images} images 224x224, batch 16")
        data = np.random.default_rng(2).uniform(0, 1, (n_images, 224, 224, 3)).astype(np.float32)

        def to_layer(model):
            return forward_fn(keras.Model(model.inputs[0], model.get_layer("block4_conv3").output))

        layer_fn, layer_half = to_layer(vgg.model), to_layer(twin.model)
        prepped = [tf.constant(vgg.preprocessing(data[i : i + 16])) for i in range(0, n_images, 16)]

        def rank(precision):
            return block(
                lambda: cw.top_examples(
                    vgg, "block4_conv3", data, k=9, batch_size=16, precision=precision
                ),
                1,
            )

        bare32 = "bare float32 batched forward to the layer"
        bare16 = f"bare {reduced} batched forward to the layer"
        variants = {
            bare32: block(lambda: [layer_fn(x).numpy() for x in prepped], 1),
            bare16: block(lambda: [layer_half(x).numpy() for x in prepped], 1),
            "cnnviz top_examples float32": rank("float32"),
            "cnnviz top_examples auto": rank("auto"),
            f"cnnviz top_examples {reduced}": rank(reduced),
        }
        t = compare(variants, rounds)
        ref = "cnnviz top_examples float32"
        for name in variants:
            against = bare32 if name == bare16 else (None if name in (ref, bare32) else ref)
            print(t.line(name, against=against), flush=True)
        ceiling = summary["bare forward to the layer (batch 16)"] = 1 / t.ratio(bare16, bare32)
        summary[f"ranking {reduced}"] = 1 / t.ratio(f"cnnviz top_examples {reduced}", ref)
        summary["ranking auto"] = 1 / t.ratio("cnnviz top_examples auto", ref)
        print(
            f"  speed-up over float32: bare forward {ceiling:.2f}x "
            f"(this hardware's ceiling for the pass), ranking {reduced} "
            f"{summary[f'ranking {reduced}']:.2f}x, ranking auto {summary['ranking auto']:.2f}x "
            "(target >= 2.5x); ranking float32 / bare float32 forward "
            f"{t.ratio(ref, bare32):.2f}x, ranking {reduced} / bare {reduced} forward "
            f"{t.ratio(f'cnnviz top_examples {reduced}', bare16):.2f}x",
            flush=True,
        )

    if 6 in want:
        # 6. atlas visualizations -------------------------------------------------------------
        atlas_steps = 4 if args.quick else 8
        section(f"6. atlas of 4 channels of block4_conv3, one batch of 4, {atlas_steps} steps")
        start = time.perf_counter()
        choice = cw.choose_precision(vgg, "optimize", batch=4, size=224)
        print(
            f"  auto for the atlas' optimization (batch 4): {choice.precision} "
            f"[decided in {time.perf_counter() - start:.1f} s]",
            flush=True,
        )

        def atlas_run(precision):
            def run_block():
                with tempfile.TemporaryDirectory() as store:  # nothing reused between blocks
                    at = cw.atlas(
                        vgg,
                        "block4_conv3",
                        None,
                        channels=range(4),
                        store=store,
                        steps=atlas_steps,
                        batch=4,
                        precision=precision,
                    )
                    assert len(at.computed) == 4
                return 0.0

            return block(run_block, 1)

        def layer_gradient(model):
            """A bare compiled forward+backward pass to block4_conv3 w.r.t. the input:
            what one step of the atlas' optimization costs at least."""
            upto = keras.Model(model.inputs[0], model.get_layer("block4_conv3").output)

            @tf.function
            def step(x):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = tf.cast(upto(x, training=False), tf.float32)
                    score = tf.reduce_sum(tf.reduce_mean(y[..., :4], axis=(1, 2)))
                return tape.gradient(score, x)

            return step

        x4 = tf.constant(np.random.default_rng(3).uniform(-100, 100, (4, 224, 224, 3)), tf.float32)
        grad32, grad16 = layer_gradient(vgg.model), layer_gradient(twin.model)
        bare32 = "bare float32 forward+backward to the layer, batch 4"
        bare16 = f"bare {reduced} forward+backward to the layer, batch 4"
        variants = {
            bare32: block(lambda: grad32(x4).numpy(), atlas_steps),
            bare16: block(lambda: grad16(x4).numpy(), atlas_steps),
            "cnnviz atlas float32": atlas_run("float32"),
            "cnnviz atlas auto": atlas_run("auto"),
            f"cnnviz atlas {reduced}": atlas_run(reduced),
        }
        t = compare(variants, rounds)
        ref = "cnnviz atlas float32"
        for name in variants:
            against = bare32 if name == bare16 else (None if name in (ref, bare32) else ref)
            print(t.line(name, against=against), flush=True)
        summary["bare forward+backward to the layer (batch 4)"] = 1 / t.ratio(bare16, bare32)
        summary[f"atlas {reduced}"] = 1 / t.ratio(f"cnnviz atlas {reduced}", ref)
        summary["atlas auto"] = 1 / t.ratio("cnnviz atlas auto", ref)
        print(
            f"  speed-up over float32: bare forward+backward "
            f"{summary['bare forward+backward to the layer (batch 4)']:.2f}x (this hardware's "
            f"ceiling for a step), atlas {reduced} {summary[f'atlas {reduced}']:.2f}x, atlas "
            f"auto {summary['atlas auto']:.2f}x (target >= 2.5x)",
            flush=True,
        )
    if summary:
        print(
            f"\n{reduced} over float32, the hardware's ceiling beside ours ({cpu_name()}, "
            f"load {load():.1f}):"
        )
        for name, speedup in summary.items():
            print(f"  {name:<48} {speedup:5.2f}x")
    print(f"\ndone [load {load():.1f}]")


if __name__ == "__main__":
    main()
