"""Attribution speed figures (not tests), all measured in one run.

    .venv/bin/python bench/bench_attribution.py [--quick]

Prints:
1. Grad-CAM on VGG16 (weights=None, 224x224, the default layer block5_conv3) per call,
   divided by one bare compiled forward+backward pass (gradient of a class score with
   respect to the input) of the same model (target <= 1.3);
2. occlusion on VGG16 with 14x14 patch positions (patch 32, stride 16) per position, as a
   multiple of the bare batched forward pass per image (the limit; target <= 1.05), for
   a few batch limits;

The VGG16 figures are interleaved (bench/interleave.py: order reversed each round, >= 3
rounds, medians of per-round ratios, load average beside each figure).
3. the embedded model (64x64): milliseconds per image for every method;
4. tracing counts: the second round of calls (other images, other classes) adds none.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from interleave import block, compare

import cnnviz_widgets as cw
from cnnviz_widgets.engine.attribution import methods as attribution


def bare_fns(model, size: int):
    """A compiled forward pass and a compiled forward+backward pass w.r.t. the input."""
    x = tf.constant(np.random.default_rng(0).uniform(-100, 100, (1, size, size, 3)), tf.float32)

    @tf.function
    def forward(x):
        return model(x, training=False)

    @tf.function
    def forward_backward(x, index):
        with tf.GradientTape() as tape:
            tape.watch(x)
            score = tf.gather(model(x, training=False)[0], index)
        return tape.gradient(score, x)

    index = tf.constant(385)
    forward(x).numpy()
    forward_backward(x, index).numpy()
    return (lambda: forward(x).numpy()), (lambda: forward_backward(x, index).numpy())


def bench_vgg(repeats: int, occlusion_batches: list[int], rounds: int) -> None:
    keras.utils.set_random_seed(0)
    vgg = cw.load_model("vgg16", weights=None)
    image = cw.sample_image("grace_hopper", size=224)
    forward, forward_backward = bare_fns(vgg.model, 224)
    layer = cw.default_cam_layer(vgg)
    variants = {
        "compiled forward pass": block(forward, repeats),
        "compiled forward+backward (input)": block(forward_backward, repeats),
        f"grad_cam ({layer})": block(lambda: cw.grad_cam(vgg, image, 385), repeats),
        "grad_cam plus_plus=True": block(
            lambda: cw.grad_cam(vgg, image, 385, plus_plus=True), repeats
        ),
        "saliency (vanilla)": block(lambda: cw.saliency(vgg, image, 385), repeats),
        "feature_maps block5_conv1 (512)": block(
            lambda: cw.feature_maps(vgg, image, "block5_conv1"), repeats
        ),
        "predict_top": block(lambda: cw.predict_top(vgg, image), repeats),
    }
    t = compare(variants, rounds)
    print("VGG16 (weights=None), 224x224, batch 1, this machine (interleaved rounds):")
    fb, fwd = "compiled forward+backward (input)", "compiled forward pass"
    for name in variants:
        against = fwd if name in ("feature_maps block5_conv1 (512)", "predict_top") else fb
        print(t.line(name, against=None if name in (fb, fwd) else against))
    print(
        f"  grad_cam / forward+backward: {t.ratio(f'grad_cam ({layer})', fb):.2f} (target <= 1.30)"
    )

    # occlusion: per position, against the bare batched forward per image (the limit)
    x = tf.constant(np.random.default_rng(1).uniform(-100, 100, (10, 224, 224, 3)), tf.float32)

    @tf.function
    def batched(x):
        return vgg.model(x, training=False)

    variants = {"bare batched forward (batch 10)": lambda: block(lambda: batched(x).numpy())() / 10}
    positions = {}
    for batch in occlusion_batches:
        kwargs = dict(patch=32, stride=16, batch_size=batch)
        positions[batch] = cw.occlusion(vgg, image, 385, **kwargs).scores.size
        variants[f"occlusion 14x14, batches of at most {batch:>2}"] = (
            lambda kw=kwargs, n=positions[batch]: (
                block(lambda: cw.occlusion(vgg, image, 385, **kw))() / n
            )
        )
    t = compare(variants, rounds)
    ref = "bare batched forward (batch 10)"
    for name in variants:
        print(t.line(name, per="position", against=None if name == ref else ref))


def bench_shapes(n: int) -> None:
    shapes = cw.load_model("shapes")
    data = cw.generate_shapes(n, seed=5)
    calls = {
        "grad_cam": lambda img, c: cw.grad_cam(shapes, img, c),
        "grad_cam++": lambda img, c: cw.grad_cam(shapes, img, c, plus_plus=True),
        "saliency": lambda img, c: cw.saliency(shapes, img, c),
        "smoothgrad (25)": lambda img, c: cw.saliency(shapes, img, c, smooth=25),
        "occlusion (8 px, 16x16)": lambda img, c: cw.occlusion(shapes, img, c),
        "feature_maps conv2": lambda img, c: cw.feature_maps(shapes, img, "conv2", sort="mean"),
        "predict_top": lambda img, c: cw.predict_top(shapes, img),
    }
    for fn in calls.values():
        fn(data.images[0], 0)  # trace
    traced = attribution.tracing_count(shapes)
    print(f"embedded shapes model (64x64), {n} images, ms per image:")
    for name, fn in calls.items():
        start = time.perf_counter()
        for img, label in zip(data.images, data.labels):
            fn(img, int(label))
        print(f"  {name:<26} {(time.perf_counter() - start) / n * 1e3:7.1f}")
    after = attribution.tracing_count(shapes)
    print(f"tracing count: {traced} after the first image, {after} after {n} more (target: same)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else 6
    bench_shapes(20 if args.quick else 100)
    bench_vgg(repeats, [10] if args.quick else [4, 10, 16, 32], 3 if args.quick else 5)


if __name__ == "__main__":
    main()
