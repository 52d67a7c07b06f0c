"""How long ``explore(model)`` keeps the kernel, tab by tab (not a test).

    .venv/bin/python bench/bench_explore.py [--model vgg16|shapes]

Builds the model first (VGG16 with ``weights=None``: nothing is downloaded), then times, in
one cold process, ``explore(model)``: how long each tab's constructor held the kernel (the
time until ``explore`` returns is their sum plus the explorer itself), and, for the tabs
that work in the background (the image explainer, the Convolution tab), how much longer
their first job ran after ``explore`` had returned.  A tab that computes in its
constructor shows up as a long constructor time.  The load average is printed: on a shared
machine the absolute figures move with it, the split between tabs much less.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

import cnnviz_widgets as cw

# the module, not the function that cnnviz_widgets.widgets exports under the same name
explore_module = importlib.import_module("cnnviz_widgets.widgets.explore")

TABS = {  # tab title: the name explore's module builds it with
    "Layers": "LayerBrowser",
    "Filters": "FilterGallery",
    "Class optimization": "ClassOptimizer",
    "Unit atlas": "UnitAtlas",
    "Convolution": "ConvolutionExplainer",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="vgg16", choices=["vgg16", "shapes"])
    args = parser.parse_args()
    if args.model == "vgg16":
        model = keras.applications.VGG16(weights=None)
    else:
        model = cw.load_model("shapes").model
    held: dict[str, float] = {}

    def timed(title: str, make):
        def build(*a, **k):
            start = time.perf_counter()
            try:
                return make(*a, **k)
            finally:
                held[title] = time.perf_counter() - start

        return build

    for title, name in TABS.items():
        setattr(explore_module, name, timed(title, getattr(explore_module, name)))
    # the optional tabs are looked up in their modules when explore runs
    for title, module_name, class_name in explore_module.OPTIONAL_PANELS:
        module = importlib.import_module(module_name)
        setattr(module, class_name, timed(title, getattr(module, class_name)))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    app = explore_module.explore(model)
    returned = time.perf_counter() - start
    print(f"explore({args.model}) returned after {returned:.2f} s (load average {load:.1f})")
    for title in app.panels:
        print(f"  {title:20s} constructor held the kernel {held.get(title, float('nan')):6.2f} s")
    for title, panel in app.panels.items():
        runner = getattr(panel, "runner", None)
        if runner is None or runner.thread is None:
            continue  # no background job (the class optimizer waits for Run)
        running = runner.running
        panel.wait(900)
        after = time.perf_counter() - start - returned
        state = "ran in the background" if running else "was over when explore returned"
        print(f"  {title:20s} first job {state}; all done {after:6.2f} s after the return")
    app.close()


if __name__ == "__main__":
    main()
