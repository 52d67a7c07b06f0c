"""Attribution speed figures (not tests), all measured in one run.

    .venv/bin/python bench/bench_attribution.py [--quick]

Prints:
1. Grad-CAM on VGG16 (weights=None, 224x224, the default layer block5_conv3) per call,
   divided by one bare compiled forward+backward pass (gradient of a class score with
   respect to the input) of the same model (target <= 1.3);
2. occlusion on VGG16 with 14x14 patch positions (patch 32, stride 16), batched, as a
   multiple of one compiled forward pass (batch 1), for a few batch sizes;
3. the embedded model (64x64): milliseconds per image for every method;
4. tracing counts: the second round of calls (other images, other classes) adds none.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine import attribution


def timed(fn, repeats: int, rounds: int = 3) -> float:
    """Median over ``rounds`` of the mean seconds per call over ``repeats`` calls."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        results.append((time.perf_counter() - start) / repeats)
    return statistics.median(results)


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


def bench_vgg(repeats: int, occlusion_batches: list[int]) -> None:
    keras.utils.set_random_seed(0)
    vgg = cw.load_model("vgg16", weights=None)
    image = cw.sample_image("grace_hopper", size=224)
    forward, forward_backward = bare_fns(vgg.model, 224)

    cw.grad_cam(vgg, image)  # trace
    t_fwd = timed(forward, repeats)
    t_fb = timed(forward_backward, repeats)
    t_cam = timed(lambda: cw.grad_cam(vgg, image, 385), repeats)
    t_campp = timed(lambda: cw.grad_cam(vgg, image, 385, plus_plus=True), repeats)
    layer = cw.default_cam_layer(vgg)
    print("VGG16 (weights=None), 224x224, batch 1, this machine:")
    print(f"  compiled forward pass:             {t_fwd * 1e3:8.1f} ms")
    print(f"  compiled forward+backward (input): {t_fb * 1e3:8.1f} ms")
    print(
        f"  grad_cam (layer {layer}):     {t_cam * 1e3:8.1f} ms  = {t_cam / t_fb:.2f}x "
        "forward+backward (target <= 1.30)"
    )
    print(f"  grad_cam plus_plus=True:           {t_campp * 1e3:8.1f} ms  = {t_campp / t_fb:.2f}x")

    for batch in occlusion_batches:
        kwargs = dict(patch=32, stride=16, batch_size=batch)
        res = cw.occlusion(vgg, image, 385, **kwargs)  # trace (first batch size only)
        positions = res.scores.size
        t_occ = timed(lambda kw=kwargs: cw.occlusion(vgg, image, 385, **kw), 1, rounds=2)
        print(
            f"  occlusion {res.scores.shape[0]}x{res.scores.shape[1]} = {positions} positions, "
            f"batches of {batch:>2}: {t_occ:6.2f} s = {t_occ / t_fwd:6.1f}x one forward pass "
            f"({t_occ / positions / t_fwd:.2f}x per position)"
        )
    t_sal = timed(lambda: cw.saliency(vgg, image, 385), repeats)
    print(f"  saliency (vanilla):                {t_sal * 1e3:8.1f} ms  = {t_sal / t_fb:.2f}x")
    t_fm = timed(lambda: cw.feature_maps(vgg, image, "block5_conv1"), repeats)
    print(f"  feature_maps block5_conv1 (512):   {t_fm * 1e3:8.1f} ms  = {t_fm / t_fwd:.2f}x fwd")
    t_top = timed(lambda: cw.predict_top(vgg, image), repeats)
    print(f"  predict_top:                       {t_top * 1e3:8.1f} ms  = {t_top / t_fwd:.2f}x fwd")


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
    repeats = 3 if args.quick else 8
    bench_shapes(20 if args.quick else 100)
    bench_vgg(repeats, [10] if args.quick else [4, 10, 16, 32])


if __name__ == "__main__":
    main()
