"""What a click in the ConvolutionExplainer costs (figures, not tests), in one run.

    .venv/bin/python bench/bench_convolution.py [--quick]

The panel reads a layer's input and output once per image and layer
(``layer_input_output``: one model pass), then answers each click with numpy alone
(``trace_from_maps`` + ``receptive_field``).  Prints, per model and layer, interleaved:

1. a click: ``trace_from_maps`` + ``receptive_field`` (ms);
2. ``convolution_at`` (a model pass + the same arithmetic) (ms);
3. their ratio: how much the panel saves per click by keeping the maps.

The embedded model always; VGG16 (weights=None, nothing downloaded) unless ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets.engine.layers.convolution import layer_input_output, trace_from_maps


def measure(loaded, image, layer: str, rounds: int, repeats: int) -> tuple[float, float]:
    inputs, outputs = layer_input_output(loaded, image, layer)
    h, w, n = outputs.shape
    rng = np.random.default_rng(0)
    spots = [(int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(n))) for _ in range(9)]

    def click(k: int) -> None:
        y, x, c = spots[k % len(spots)]
        trace_from_maps(loaded, layer, inputs, outputs, c, y, x)
        cw.receptive_field(loaded, layer, y, x)

    def full(k: int) -> None:
        y, x, c = spots[k % len(spots)]
        cw.convolution_at(loaded, image, layer, c, y, x)

    click(0), full(0)  # compile and warm up
    clicks, fulls = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine load
        for fn, out in ((click, clicks), (full, fulls)):
            start = time.perf_counter()
            for k in range(repeats):
                fn(k)
            out.append((time.perf_counter() - start) / repeats)
    return statistics.median(clicks), statistics.median(fulls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the embedded model only")
    args = parser.parse_args()
    cases = [("shapes", cw.load_model("shapes"), cw.sample_image("circle"), "conv1", 7, 10)]
    cases += [("shapes", cases[0][1], cases[0][2], "conv4", 7, 10)]
    if not args.quick:
        vgg = cw.load_model("vgg16", weights=None)
        photo = cw.sample_image("grace_hopper", size=224)
        cases += [
            ("vgg16", vgg, photo, "block1_conv1", 5, 3),
            ("vgg16", vgg, photo, "block5_conv3", 5, 3),
        ]
    print(f"{'model':8} {'layer':14} {'click ms':>9} {'convolution_at ms':>18} {'ratio':>7}")
    for name, loaded, image, layer, rounds, repeats in cases:
        click, full = measure(loaded, image, layer, rounds, repeats)
        print(f"{name:8} {layer:14} {click * 1e3:9.1f} {full * 1e3:18.1f} {full / click:7.1f}x")


if __name__ == "__main__":
    main()
