"""How good are the run estimates of engine/budget.py?  Figures, not tests; one run.

    .venv/bin/python bench/bench_budget.py [--quick]

For each kind of run (optimization = forward + backward over a batch; SmoothGrad = forward +
backward; occlusion = forward only) on VGG16 (weights=None, 224x224) and the embedded model
(64x64), at two batch sizes, each in a fresh process: the peak memory the run added
(VmHWM after the run, reset just before it, minus VmRSS before it; /proc/self/status)
and the seconds per image after the first call (the compiled function traced), beside
the estimates.
Prints per case: measured / estimated memory, the per-image memory from the two batch
sizes (measured slope / estimated per_image), and measured / estimated seconds.  The
constants in budget.py (_GRADIENT_KEEPS, _FORWARD_KEEPS, _GRADIENT_TIME) come from here
(the estimates are those the engine checks: budget.check_optimize, check_smoothgrad,
check_occlusion);
an estimate must not be below the measure by much (a refusal that comes too late is the
failure that matters), and may be above it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(case: str, batch: int) -> dict:
    import numpy as np

    import cnnviz_widgets as cw
    from cnnviz_widgets.engine.model import budget

    model_name, kind = case.split(":")
    if model_name == "vgg16":
        loaded = cw.load_model("vgg16", weights=None)
        hw = (224, 224)
    else:
        loaded = cw.load_model("shapes")
        hw = (64, 64)
    image = np.random.default_rng(0).uniform(0, 1, (*hw, 3)).astype(np.float32)
    budget.machine_flops()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from here: not the model's loading
    before = _status("VmRSS")
    if kind == "optimize":
        n = loaded.model.outputs[0].shape[-1]
        targets = [i % n for i in range(batch)]
        images = batch
        objective = cw.objectives.class_logit(targets)
        est = budget.check_optimize(loaded.model, objective, (*hw, 3), batch, 1)
        first = cw.visualize(loaded, objective, steps=1)
        t0 = time.perf_counter()
        res = cw.visualize(loaded, cw.objectives.class_logit(targets), steps=2)
        seconds = (time.perf_counter() - t0) / 2 / batch
        assert first.steps == 1 and res.steps == 2
    elif kind == "smoothgrad":
        images = batch + 1
        est = budget.check_smoothgrad(loaded.model, image, batch, batch)
        cw.saliency(loaded, image, smooth=batch, batch_size=batch)
        t0 = time.perf_counter()
        cw.saliency(loaded, image, smooth=batch, batch_size=batch)
        seconds = (time.perf_counter() - t0) / (batch + 1)
    else:  # occlusion: 16 positions (patch = stride = a quarter of the side)
        side = hw[0] // 4
        images = 17
        est = budget.check_occlusion(loaded.model, image, 16, batch)
        cw.occlusion(loaded, image, patch=side, stride=side, batch_size=batch)
        t0 = time.perf_counter()
        cw.occlusion(loaded, image, patch=side, stride=side, batch_size=batch)
        seconds = (time.perf_counter() - t0) / 17  # 16 occluded + the clean forward
    return {
        "case": case,
        "batch": batch,
        "added": _status("VmHWM") - before,
        "est_bytes": est.bytes,
        "est_per_image": est.per_image,
        "est_seconds_per_image": est.seconds / images,
        "seconds_per_image": seconds,
        "gflops": budget.machine_flops() / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="the embedded model only")
    parser.add_argument("--only", help="only the cases of this model (shapes or vgg16)")
    parser.add_argument("--case")
    parser.add_argument("--batch", type=int)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(child(args.case, args.batch)))
        return
    cases = [
        ("shapes:optimize", (16, 128)),
        ("shapes:smoothgrad", (16, 128)),
        ("shapes:occlusion", (4, 16)),
    ]
    if not args.quick:
        cases += [
            ("vgg16:optimize", (1, 4)),
            ("vgg16:smoothgrad", (2, 8)),
            ("vgg16:occlusion", (4, 16)),
        ]
    if args.only:
        cases = [c for c in cases if c[0].startswith(args.only + ":")]
    rows = []
    # interleaved: the small batch of every case, then the large one
    for k in range(2):
        for case, batches in cases:
            out = subprocess.run(
                [sys.executable, __file__, "--case", case, "--batch", str(batches[k])],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    mb = 1024.0**2
    print(f"machine speed (one 3x3 conv): {rows[0]['gflops']:.0f} GFLOP/s (first process)")
    print(
        f"{'case':18} {'batch':>5} {'added MB':>9} {'est MB':>8} {'ratio':>6} "
        f"{'s/img':>7} {'est s/img':>9} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['case']:18} {r['batch']:5d} {r['added'] / mb:9.1f} {r['est_bytes'] / mb:8.1f} "
            f"{r['added'] / r['est_bytes']:6.2f} {r['seconds_per_image']:7.3f} "
            f"{r['est_seconds_per_image']:9.3f} "
            f"{r['seconds_per_image'] / r['est_seconds_per_image']:6.2f}"
        )
    print("per-image memory, from the two batch sizes (measured slope vs estimate):")
    for case, (b1, b2) in cases:
        small, large = (
            next(r for r in rows if r["case"] == case and r["batch"] == b) for b in (b1, b2)
        )
        slope = (large["added"] - small["added"]) / (b2 - b1)
        print(
            f"  {case:18} {slope / mb:8.2f} MB/image measured, "
            f"{large['est_per_image'] / mb:8.2f} estimated, "
            f"ratio {slope / large['est_per_image']:.2f}"
        )


if __name__ == "__main__":
    main()
