"""Do the unit pictures beat the data?  Per layer of the embedded model (not a test).

    .venv/bin/python bench/bench_unit_pictures.py [--presets auto lucid] [--layers conv2 conv4]

For each layer and preset: the atlas's way of drawing its channels (chunks of 16 channels
in one compiled step, the preset's steps, seed 0, ``objectives.channel``) on
``load_model("shapes")``, and 1,000 generated images (``generate_shapes(1000, seed=31)``,
the atlas's default score: the channel's mean activation).  A unit is *live* when some
image activates it (its best example's mean > 0); it *beats its best example* when its
picture's mean activation (the uint8 picture, float32 model) is higher than that of the
best of the 1,000 images.  Prints, per layer, the fraction of live units that do, and the
units that do not (with both values).  Goal: all of them.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj

CHUNK = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["auto", "lucid"])
    parser.add_argument("--layers", nargs="+", default=["conv1", "conv2", "conv3", "conv4"])
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    m = cw.load_model("shapes")
    data = cw.generate_shapes(args.images, seed=31).images
    print(f"load_model('shapes'); {args.images} generated images (seed 31); seed 0")
    for layer in args.layers:
        probe = keras.Model(m.model.inputs[0], m.model.get_layer(layer).output)
        best = probe.predict(data, verbose=0, batch_size=250).mean(axis=(1, 2)).max(axis=0)
        live = [int(c) for c in np.flatnonzero(best > 0)]
        for preset in args.presets:
            t = time.perf_counter()
            ours = np.zeros(len(best))
            recipe = ""
            for start in range(0, len(live), CHUNK):
                chunk = live[start : start + CHUNK]
                res = cw.visualize(m, obj.channel(layer, chunk), preset=preset, seed=0)
                recipe = res.recipe
                x = res.images.astype(np.float32) / 255.0
                acts = probe.predict(x, verbose=0).mean(axis=(1, 2))
                ours[chunk] = acts[np.arange(len(chunk)), chunk]
            beat = [c for c in live if ours[c] > best[c]]
            lost = [f"{c} ({ours[c]:.3g} <= {best[c]:.3g})" for c in live if ours[c] <= best[c]]
            print(
                f"{layer:<6} {preset:<6} ({recipe:<6}) live {len(live):>2}/{len(best):<2} "
                f"beat their best example: {len(beat)}/{len(live)} "
                f"= {len(beat) / max(1, len(live)):.0%}   {time.perf_counter() - t:.0f} s"
                + (f"   not: {', '.join(lost)}" if lost else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
