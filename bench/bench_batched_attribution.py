"""Batched attribution (not a test): cw.explain_batch against the one-image methods in a
loop, and against the bare batched forward+backward pass it is built on.

    .venv/bin/python bench/bench_batched_attribution.py [--images 270] [--batch 64] [--rounds 3]

For Grad-CAM (conv4) and saliency on the embedded model (64x64 images generated, as the
issue's 270 test images):

- ``looped``: ``cw.grad_cam(m, image)`` (``cw.saliency``) once per image;
- ``batched``: ``cw.explain_batch(m, images, method, batch_size=B)``: maps normalized,
  results assembled, images kept as uint8;
- ``bare``: the limit: a compiled pass over the same float32 batches already in memory,
  the model's preprocessing, forward to the logits, the gradient of the predicted logits
  w.r.t. conv4 (or the input), fetched to the host, nothing else.

The variants run INTERLEAVED through bench/interleave.py (one warm-up each: tracing);
printed: each variant's median seconds per image set, ratios (median of per-round ratios)
and the load average seen.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf
from interleave import block, compare

import cnnviz_widgets as cw


def bare_pass(loaded, layer: str | None):
    """A compiled batch -> gradient of the predicted logits (w.r.t. ``layer``'s output, or
    the input when ``None``): the least any batched attribution must do."""
    model = loaded.model
    dense = model.get_layer("predictions")
    taps = [layer, "gap"] if layer else ["gap"]
    ext = cw.extractor(loaded, taps, with_outputs=False)
    kernel, bias = dense.kernel, dense.bias
    prep = loaded.preprocessing

    @tf.function(input_signature=[tf.TensorSpec((None, 64, 64, 3), tf.float32)])
    def run(images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            outs = ext(prep(images), training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            logits = tf.matmul(outs[-1], kernel) + bias
            score = tf.reduce_sum(tf.reduce_max(logits, axis=-1))
        return tape.gradient(score, outs[0] if layer else images)

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=270)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    m = cw.load_model("shapes")
    images = cw.generate_shapes(args.images, seed=0).images
    batches = [tf.constant(images[i : i + args.batch]) for i in range(0, len(images), args.batch)]
    one, five, _ = os.getloadavg()
    print(f"{len(images)} images 64x64, batch {args.batch}, {os.cpu_count()} CPUs")
    print(f"load {one:.1f}/{five:.1f} at the start")
    for method, layer, single in (
        ("grad_cam", "conv4", lambda im: cw.grad_cam(m, im)),
        ("saliency", None, lambda im: cw.saliency(m, im, precision="float32")),
    ):
        measure(m, images, batches, args, method, layer, single)


def measure(m, images, batches, args, method, layer, single) -> None:
    bare = bare_pass(m, layer)

    def looped():
        for im in images:
            single(im)

    def batched():
        cw.explain_batch(m, images, method, batch_size=args.batch)

    def limit():
        for x in batches:
            bare(x).numpy()

    t = compare(
        {"looped": block(looped), "batched": block(batched), "bare": block(limit)},
        rounds=args.rounds,
    )
    print(f"{method}:")
    for name in ("looped", "batched", "bare"):
        print(t.line(name, per="set", scale=1.0, unit="s", against="bare"))
    print(f"  looped / batched: {t.ratio('looped', 'batched'):.2f}x")


if __name__ == "__main__":
    main()
