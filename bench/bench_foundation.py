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
    t_table = timed(lambda: cw.layer_table(resnet), 5)

    def summary():
        with redirect_stdout(io.StringIO()):
            resnet.summary()

    t_summary = timed(summary, 3)
    print(f"ResNet152 layer_table: {n_rows} rows in {t_table * 1000:.0f} ms (target <= 1000 ms)")
    print(
        f"  keras model.summary(): {t_summary * 1000:.0f} ms; ratio table/summary = "
        f"{t_table / t_summary:.2f}"
    )

    vgg = keras.applications.VGG16(weights=None)
    cw.filter_montage(vgg, "block5_conv1")  # warm-up
    t_montage = timed(lambda: cw.filter_montage(vgg, "block5_conv1"), 20)
    t_kernel = timed(lambda: keras.ops.convert_to_numpy(vgg.get_layer("block5_conv1").kernel), 20)
    m = cw.filter_montage(vgg, "block5_conv1")
    print(
        f"VGG16 block5_conv1 montage: 512 filters -> {m.image.shape[1]}x{m.image.shape[0]} "
        f"RGBA in {t_montage * 1000:.1f} ms (target <= 100 ms)"
    )
    print(
        f"  reading the kernel alone: {t_kernel * 1000:.1f} ms; ratio montage/read = "
        f"{t_montage / t_kernel:.1f}"
    )
    for view in ("channel", "maxabs"):
        t = timed(lambda v=view: cw.filter_montage(vgg, "block5_conv1", view=v, sort="norm"), 10)
        print(f"  view={view}, sort=norm: {t * 1000:.1f} ms")


if __name__ == "__main__":
    main()
