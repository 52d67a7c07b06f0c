"""Foundation speed figures (not tests): layer table and filter montage.

    .venv/bin/python bench/bench_foundation.py

Prints, measured in this run:
- layer_table of ResNet152 (weights=None), against Keras' own model.summary() of it;
- filter_montage of VGG16 block5_conv1 (512 filters), against reading its kernel once.
Targets (issue 2): table <= 1 s, montage <= 100 ms.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from contextlib import redirect_stdout

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
from interleave import block, compare

import cnnviz_widgets as cw


def timed(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    resnet = keras.applications.ResNet152(weights=None)
    n_rows = len(cw.layer_table(resnet))

    def summary():
        with redirect_stdout(io.StringIO()):
            resnet.summary()

    t = compare({"table": block(lambda: cw.layer_table(resnet)), "summary": block(summary)}, 5)
    t_table, t_summary = t.median("table"), t.median("summary")
    print(f"ResNet152 layer_table: {n_rows} rows in {t_table * 1000:.0f} ms (target <= 1000 ms)")
    print(
        f"  keras model.summary(): {t_summary * 1000:.0f} ms; ratio table/summary = "
        f"{t.ratio('table', 'summary'):.2f} (median of interleaved rounds, "
        f"{t.load_text('table')})"
    )

    vgg = keras.applications.VGG16(weights=None)
    cw.filter_montage(vgg, "block5_conv1")  # warm-up
    t = compare(
        {
            "montage": block(lambda: cw.filter_montage(vgg, "block5_conv1"), 4),
            "kernel": block(
                lambda: keras.ops.convert_to_numpy(vgg.get_layer("block5_conv1").kernel), 4
            ),
        },
        5,
    )
    t_montage, t_kernel = t.median("montage"), t.median("kernel")
    m = cw.filter_montage(vgg, "block5_conv1")
    print(
        f"VGG16 block5_conv1 montage: 512 filters -> {m.image.shape[1]}x{m.image.shape[0]} "
        f"RGBA in {t_montage * 1000:.1f} ms (target <= 100 ms)"
    )
    print(
        f"  reading the kernel alone: {t_kernel * 1000:.1f} ms; ratio montage/read = "
        f"{t.ratio('montage', 'kernel'):.1f} (median of interleaved rounds, "
        f"{t.load_text('montage')})"
    )
    for view in ("channel", "maxabs"):
        t = timed(lambda v=view: cw.filter_montage(vgg, "block5_conv1", view=v, sort="norm"), 10)
        print(f"  view={view}, sort=norm: {t * 1000:.1f} ms")


if __name__ == "__main__":
    main()
