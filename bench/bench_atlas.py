"""Dataset examples and the unit atlas (not a test): three side-by-side measurements.

    .venv/bin/python bench/bench_atlas.py [--quick] [--no-ray] [--only throughput|batching|ray]

1. ``top_examples`` throughput against the bare batched forward pass of the same model,
   batch and images (target: >= 0.9x).  The bare pass is a compiled ``model(x)`` over the
   same float32 batches already in memory, its output fetched to the host; ``top_examples``
   reads the same array, applies the model's preprocessing, runs to the layer, reduces
   each map to a score and merges the top k.  Embedded model (conv4, 64x64, batch 64);
   without ``--quick`` also VGG16 (weights=None, block5_conv3, 224x224, batch 16).
2. The atlas's cost per unit with ``batch=16`` channels per compiled step against one unit
   at a time (``batch=1``), on the embedded model's conv4, into a fresh store each time
   (target: >= 2x fewer seconds per unit).
3. The Ray backend against the local one for the same atlas job on this machine (target:
   <= 15 % overhead): Ray with a fresh pool per call (actors start, import TensorFlow and
   rebuild the model each time) and with a kept pool (``keep_workers=True``: timed is a
   call that finds the actors of an earlier call alive), on a local Ray cluster of 2 CPUs.

   The local cluster is started as ``backend="ray"`` starts one
   (:func:`cnnviz_widgets.engine.dataset.distributed.start_local_ray`) and stopped by its handle.

Each comparison runs its variants INTERLEAVED through bench/interleave.py (A, B, then B, A
in the next round, ...; one warm-up of each first: compiling), and prints each variant's
median, the median of the per-round ratios and the load average seen: on a shared machine
absolute seconds move, ratios measured side by side much less.  For (1) it also prints
where the time goes: the compiled pass alone (to the layer, scores and peak positions
fetched to the host, no merging), and ``top_examples`` without the activation maps.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from interleave import compare

import cnnviz_widgets as cw
from cnnviz_widgets.engine.dataset import search


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f}"


# --------------------------------------------------------------------- 1. throughput
def bench_throughput(loaded, layer: str, images: np.ndarray, batch: int, rounds: int, name: str):
    model = loaded.model
    prep = loaded.preprocessing
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])
    n = len(images)

    @tf.function(input_signature=[tf.TensorSpec((None, h, w, c), tf.float32)])
    def forward(x):
        return model(prep(x), training=False)

    fns = search._rank_fns(loaded, layer, "channel", "mean")

    def per_image(fn):
        def block() -> float:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) / n

        return block

    def bare():
        for i in range(0, n, batch):
            forward(tf.constant(images[i : i + batch])).numpy()

    def pass_only():
        for i in range(0, n, batch):
            value, pos, _ = fns.rank(tf.constant(images[i : i + batch]))
            value.numpy(), pos.numpy()

    def ours(keep_maps=True):
        def run():
            top = cw.top_examples(loaded, layer, images, k=9, batch_size=batch, keep_maps=keep_maps)
            assert top.seen == n

        return run

    print(f"\n{name}: {n} images, batch {batch}, {load_text()}")
    t = compare(
        {
            "bare forward": per_image(bare),
            "top_examples": per_image(ours()),
            "pass only": per_image(pass_only),
            "top_examples, no maps": per_image(ours(keep_maps=False)),
        },
        rounds,
    )
    for v in t.names:
        print(t.line(v, per="image", against="bare forward"))
    r = t.ratio("bare forward", "top_examples")
    print(f"  -> top_examples throughput / bare forward {r:.3f} (target >= 0.9)")
    return r


# ------------------------------------------------------------------ 2. atlas batching
def bench_atlas_batching(loaded, units: int, steps: int, rounds: int):
    def run(batch: int):
        def block() -> float:
            with tempfile.TemporaryDirectory() as store:
                start = time.perf_counter()
                at = cw.atlas(
                    loaded, "conv4", channels=range(units), store=store, steps=steps, batch=batch
                )
                assert len(at.computed) == units
                return (time.perf_counter() - start) / units

        return block

    print(f"\natlas on conv4, {units} units x {steps} steps, {load_text()}")
    t = compare({"batch 16": run(16), "batch 1": run(1)}, rounds)
    for v in t.names:
        print(t.line(v, per="unit", against="batch 16"))
    r = t.ratio("batch 1", "batch 16")
    print(f"  -> seconds per unit, one at a time / batch 16: {r:.2f} (target >= 2)")
    return r


# ------------------------------------------------------------------------ 3. Ray
def bench_ray(loaded, units: int, steps: int, rounds: int, data):
    from cnnviz_widgets.engine.dataset import ray_pool
    from cnnviz_widgets.engine.dataset.distributed import shutdown_workers, start_local_ray

    start = time.perf_counter()
    try:
        context = start_local_ray(num_cpus=2)
    except cw.CnnvizError as err:
        print(f"\nRay: {str(err)[:300]}; no Ray figures")
        return None
    print(f"\nRay: local cluster of 2 CPUs started in {time.perf_counter() - start:.1f} s")
    kw = dict(channels=range(units), steps=steps, batch=16, examples_batch=64)

    def run(backend: str | None, keep: bool = False):
        extra = {"backend": "ray", "workers": 2, "keep_workers": keep} if backend else {}

        def once() -> float:
            with tempfile.TemporaryDirectory() as store:
                start = time.perf_counter()
                at = cw.atlas(loaded, "conv4", data, store=store, **kw, **extra)
                assert at.complete
                return time.perf_counter() - start

        def block() -> float:
            if backend and not keep:
                shutdown_workers()  # a fresh pool: not the kept one (a call would reuse it)
            elif keep and not ray_pool._KEPT:
                once()  # (untimed) the pool the timed call finds kept
            return once()

        return block

    try:
        print(
            f"atlas of conv4 ({units} units x {steps} steps + examples of {len(data)} "
            f"images), {load_text()}"
        )
        t = compare(
            {"local": run(None), "ray, fresh pool": run("ray"), "ray, kept pool": run("ray", True)},
            rounds,
        )
    finally:
        shutdown_workers()
        context.disconnect()
    for v in t.names:
        print(t.line(v, per="atlas", scale=1, unit="s", against="local"))
    fresh, kept = t.ratio("ray, fresh pool", "local"), t.ratio("ray, kept pool", "local")
    print(
        f"  -> Ray / local: fresh pool {fresh:.3f}, kept pool {kept:.3f} (target <= 1.15; a "
        "fresh pool's actors import TensorFlow and rebuild the model in every call)"
    )
    return fresh, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the embedded model only, fewer images")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    ap.add_argument(
        "--only", choices=["throughput", "batching", "ray"], help="run one comparison only"
    )
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, "
        f"{load_text()}"
    )
    shapes = cw.load_model("shapes")
    n = 1024 if args.quick else 2048
    data = cw.generate_shapes(n, seed=1)
    summary = {}

    def want(part: str) -> bool:
        return args.only in (None, part)

    if want("throughput"):
        summary["top_examples / bare (shapes)"] = bench_throughput(
            shapes, "conv4", data.images, 64, args.rounds, "embedded model conv4"
        )
        if not args.quick:
            keras.utils.set_random_seed(0)
            vgg = cw.load_model("vgg16", weights=None)
            photos = np.random.default_rng(0).random((96, 224, 224, 3), dtype=np.float32)
            summary["top_examples / bare (VGG16)"] = bench_throughput(
                vgg, "block5_conv3", photos, 16, args.rounds, "VGG16 block5_conv3"
            )
    units, steps = (16, 32) if args.quick else (32, 64)
    if want("batching"):
        summary["atlas batch1 / batch16 s/unit"] = bench_atlas_batching(
            shapes, units, steps, args.rounds
        )
    if want("ray") and not args.no_ray:
        got = bench_ray(shapes, 32 if args.quick else 64, steps, args.rounds, data)
        if got is not None:
            summary["ray fresh pool / local"], summary["ray kept pool / local"] = got
    print(f"\nsummary (medians of per-round ratios; {load_text()} at the end):")
    for k, v in summary.items():
        print(f"  {k:34s} {v:.3f}")


if __name__ == "__main__":
    main()
