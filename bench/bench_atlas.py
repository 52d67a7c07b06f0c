"""Dataset examples and the unit atlas (not a test): three side-by-side measurements.

    .venv/bin/python bench/bench_atlas.py [--quick] [--no-ray]

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
   rebuild the model each time) and with a kept pool (``keep_workers=True``: the actors of
   the first call serve the next ones), on a local Ray cluster of 2 CPUs.

Each comparison runs its variants INTERLEAVED (A, B, then B, A in the next round, ...),
after one warm-up of each (compiling), and prints every round, the median of the
per-round ratios and the load average: on a shared machine absolute seconds move, ratios
measured side by side much less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import cnnviz_widgets as cw


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:5.2f}/{five:5.2f}"


def interleave(blocks: dict, rounds: int) -> dict[str, list[float]]:
    """Run each block once to warm up, then ``rounds`` rounds in alternating order."""
    names = list(blocks)
    for name in names:
        blocks[name]()
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        line = []
        for name in order:
            out[name].append(blocks[name]())
            line.append(f"{name} {out[name][-1]:8.3f}")
        print(f"  round {r + 1}: " + "  ".join(line) + f"   ({load()})", flush=True)
    return out


def ratio(out, num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(out[num], out[den]))


# --------------------------------------------------------------------- 1. throughput
def bench_throughput(loaded, layer: str, images: np.ndarray, batch: int, rounds: int, name: str):
    model = loaded.model
    prep = loaded.preprocessing
    h, w, c = (int(d) for d in model.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec((None, h, w, c), tf.float32)])
    def forward(x):
        return model(prep(x), training=False)

    def bare() -> float:
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            forward(tf.constant(images[i : i + batch])).numpy()
        return len(images) / (time.perf_counter() - start)

    def ours() -> float:
        start = time.perf_counter()
        top = cw.top_examples(loaded, layer, images, k=9, batch_size=batch)
        assert top.seen == len(images)
        return len(images) / (time.perf_counter() - start)

    print(f"\n{name}: {len(images)} images, batch {batch}, images per second:")
    out = interleave({"bare": bare, "top_examples": ours}, rounds)
    r = ratio(out, "top_examples", "bare")
    print(
        f"  median: bare {statistics.median(out['bare']):.1f}/s, top_examples "
        f"{statistics.median(out['top_examples']):.1f}/s -> ratio {r:.3f} (target >= 0.9)"
    )
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

    print(f"\natlas on conv4, {units} units x {steps} steps, seconds per unit:")
    out = interleave({"batch16": run(16), "batch1": run(1)}, rounds)
    r = ratio(out, "batch1", "batch16")
    print(
        f"  median: batch16 {statistics.median(out['batch16']):.3f} s/unit, batch1 "
        f"{statistics.median(out['batch1']):.3f} s/unit -> batch1 / batch16 {r:.2f} "
        "(target >= 2)"
    )
    return r


# ------------------------------------------------------------------------ 3. Ray
def bench_ray(loaded, units: int, steps: int, rounds: int, data):
    import ray

    from cnnviz_widgets.engine.distributed import shutdown_workers

    start = time.perf_counter()
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except Exception as err:
        print(f"\nRay: the local cluster did not start ({str(err)[:200]}); no Ray figures")
        return None
    print(f"\nRay: local cluster of 2 CPUs started in {time.perf_counter() - start:.1f} s")
    kw = dict(channels=range(units), steps=steps, batch=16, examples_batch=64)

    def run(backend: str, keep: bool = False):
        def block() -> float:
            with tempfile.TemporaryDirectory() as store:
                start = time.perf_counter()
                extra = {"backend": "ray", "workers": 2, "keep_workers": keep} if backend else {}
                at = cw.atlas(loaded, "conv4", data, store=store, **kw, **extra)
                assert at.complete
                return time.perf_counter() - start

        return block

    try:
        print(
            f"atlas of conv4 ({units} units x {steps} steps + examples of {len(data)} "
            "images), seconds:"
        )
        out = interleave(
            {"local": run(None), "ray_fresh": run("ray"), "ray_kept": run("ray", keep=True)}, rounds
        )
    finally:
        shutdown_workers()
        ray.shutdown()
    fresh, kept = ratio(out, "ray_fresh", "local"), ratio(out, "ray_kept", "local")
    print(
        f"  median: local {statistics.median(out['local']):.2f} s, Ray fresh pool "
        f"{statistics.median(out['ray_fresh']):.2f} s (x{fresh:.3f}), Ray kept pool "
        f"{statistics.median(out['ray_kept']):.2f} s (x{kept:.3f}); overhead target <= 1.15"
    )
    return fresh, kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="the embedded model only, fewer images")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs, {load()}"
    )
    shapes = cw.load_model("shapes")
    n = 1024 if args.quick else 2048
    data = cw.generate_shapes(n, seed=1)
    summary = {}
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
    summary["atlas batch1 / batch16 s/unit"] = bench_atlas_batching(
        shapes, units, steps, args.rounds
    )
    if not args.no_ray:
        got = bench_ray(shapes, 32 if args.quick else 64, steps, args.rounds, data)
        if got is not None:
            summary["ray fresh pool / local"], summary["ray kept pool / local"] = got
    print("\nsummary (medians of per-round ratios):")
    for k, v in summary.items():
        print(f"  {k:34s} {v:.3f}")


if __name__ == "__main__":
    main()
