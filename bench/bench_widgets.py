"""Widget speed figures (not tests): the cost of the ClassOptimizer's live preview.

    .venv/bin/python bench/bench_widgets.py [--quick]

Runs the same optimization (the embedded model, a batch of 4 classes) in alternation:

1. the engine alone (``optimize`` iterated in a loop, one frame a step, nothing drawn);
2. the panel with the live preview off (progress read-out only);
3. the panel with the live preview on (images ~10x/s, curve and read-out ~4x/s);

and prints the median steps/s of each and the preview's overhead (target <= 10 %).  This
is the kernel's side only (outside a kernel the widget messages go nowhere);
``bench/bench_browser.py::test_preview_overhead`` measures it in JupyterLab, where the
page's own drawing shares the CPU.  Also prints the cost of one redraw.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from interleave import compare

import cnnviz_widgets as cw
from cnnviz_widgets.widgets.class_optimizer import ClassOptimizer, curve_svg

CLASSES = [0, 1, 2, 3]


def engine_rate(model, steps: int) -> float:
    run = cw.optimize(model, CLASSES, steps=steps, every=1)
    for _ in run:
        pass
    return run.result.steps / run.result.seconds


def panel_rate(panel: ClassOptimizer, live: bool) -> tuple[float, int]:
    panel.live_preview.value = live
    panel.run(wait=True)
    result = panel.result
    return result.steps / result.seconds, panel.draw_count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    args = parser.parse_args()
    steps, reps = (120, 3) if args.quick else (300, 5)
    model = cw.load_model("shapes")
    panel = ClassOptimizer(model, steps=steps)
    panel.class_targets = CLASSES
    engine_rate(model, 8)  # compile once
    panel_rate(panel, True)

    draws = [0]

    def live_block() -> float:
        rate, draws[0] = panel_rate(panel, True)
        return 1.0 / rate

    t = compare(
        {
            "engine": lambda: 1.0 / engine_rate(model, steps),
            "off": lambda: 1.0 / panel_rate(panel, False)[0],
            "on": live_block,
        },
        reps,
        warm=False,
    )
    med = {k: 1.0 / t.median(k) for k in t.names}
    print(f"embedded model, batch of {len(CLASSES)}, {steps} steps, interleaved rounds:")
    print(f"  engine alone            {med['engine']:6.1f} steps/s  ({t.load_text('engine')})")
    print(f"  panel, preview off      {med['off']:6.1f} steps/s  ({t.load_text('off')})")
    print(
        f"  panel, live preview     {med['on']:6.1f} steps/s  ({draws[0]} redraws in a run; "
        f"{t.load_text('on')})"
    )
    overhead = 100 * (1.0 - t.ratio("off", "on"))
    print(f"  live preview overhead   {overhead:+6.1f} %  (median of rounds; target <= 10 %)")
    total = 100 * (1.0 - t.ratio("engine", "on"))
    print(f"  panel vs engine alone   {total:+6.1f} %")

    record = panel.shown
    images = record.result.images
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        panel._draw_images(images)
    image_ms = (time.perf_counter() - start) / n * 1000
    steps_seen, values = record.curve()
    start = time.perf_counter()
    for i in range(n):
        panel.curve.value = curve_svg(steps_seen, values + i, steps)
    curve_ms = (time.perf_counter() - start) / n * 1000
    print(f"one redraw: images {image_ms:.2f} ms, curve {curve_ms:.2f} ms (kernel side)")
    panel.close()


if __name__ == "__main__":
    main()
