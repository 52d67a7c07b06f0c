"""Browser speed figures (printed, not asserted: on two shared cores the kernel, the server
and the browser compete).  Not part of the test suite; run with

    .venv/bin/python -m pytest -s -p no:cacheprovider bench/bench_browser.py

It reuses the browser tests' JupyterLab server and pages (tests/browser).
"""

from __future__ import annotations

import os
import statistics
import time

import keras
import nbformat
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.widgets.filter_gallery import auto_zoom
from tests.browser import conftest as browser_fixtures
from tests.browser import test_optimizer as optimizer_pages
from tests.browser.pages import (
    fingerprint,
    kernel,
    open_and_run,
    option_index,
    read_canvas,
    wait_drawn,
)
from tests.browser.test_lab import CANVAS, GALLERY
from tests.browser.test_optimizer import RUN

# the browser tests' fixtures: a JupyterLab server, a chromium context, the optimizer page
lab = browser_fixtures.lab
browser_context = browser_fixtures.browser_context
opt_page = optimizer_pages.opt_page


@pytest.fixture(scope="session")
def vgg16():
    """VGG16 with random weights, seeded like the kernel's copy."""
    keras.utils.set_random_seed(0)
    return cw.load_model("vgg16", weights=None)


@pytest.fixture(scope="module")
def vgg_page(lab, browser_context):
    url, root = lab
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import keras\n"
            "import cnnviz_widgets as cw\n"
            "from cnnviz_widgets.widgets import FilterGallery\n"
            "keras.utils.set_random_seed(0)\n"
            "gallery = FilterGallery(cw.load_model('vgg16', weights=None))\n"
            "gallery"
        )
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
    nbformat.write(nb, root / "vgg.ipynb")
    page = open_and_run(browser_context, url, "vgg.ipynb", "vgg", GALLERY)
    wait_drawn(page, CANVAS, 0)
    return page


def test_select_to_canvas_time_for_512_filters(vgg_page, vgg16, capsys):
    """From choosing a 512-filter VGG16 layer in the gallery's list to its new montage on the
    canvas, read back from the page (printed, not asserted: shared cores)."""
    page = vgg_page
    select = f"{GALLERY} .cnnviz-gallery-layer select"
    layers = ["block5_conv1", "block4_conv3", "block5_conv2", "block5_conv3"]
    timings: dict[str, list[float]] = {layer: [] for layer in layers}
    for _ in range(3):  # the first visit of a layer computes its montage; later ones cache
        for layer in layers:
            expected = cw.filter_montage(vgg16, layer).image
            width = expected.shape[1] * auto_zoom(expected.shape)
            index = option_index(page, select, layer)
            mark = fingerprint(page, CANVAS)
            start = time.perf_counter()
            page.locator(select).select_option(index=index)
            wait_drawn(page, CANVAS, 0, width=width, before=mark)
            timings[layer].append(time.perf_counter() - start)
    assert f"of {layer}" in page.locator(GALLERY).inner_text()
    assert read_canvas(page, CANVAS).shape[:2] == (576, 576)
    first = [t[0] for t in timings.values()]
    every = [v for t in timings.values() for v in t]
    with capsys.disabled():
        print(
            "\n[browser] select a 512-filter VGG16 layer -> new montage on the canvas: "
            f"median {statistics.median(every) * 1000:.0f} ms over {len(every)} selections "
            f"(first visits {', '.join(f'{v * 1000:.0f}' for v in first)} ms; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )


def test_preview_overhead(opt_page, capsys):
    """Steps/s of the same run with the live preview on and off, alternating (printed, not
    asserted: on two shared cores the kernel, the server and the browser compete)."""
    page = opt_page
    kernel(page, "optimizer.config.steps = 300; optimizer.class_targets = [0, 1, 2, 3]")
    rates: dict[bool, list[float]] = {True: [], False: []}
    draws = paint = 0.0
    for live in (True, False) * 4:
        kernel(page, f"optimizer.live_preview.value = {live}")
        before = int(kernel(page, "print(len(optimizer.records))"))
        page.locator(RUN).click()
        page.wait_for_function(
            "() => document.querySelector('.cnnviz-class-optimizer .cnnviz-run-button').disabled"
        )
        out = kernel(
            page,
            "optimizer.wait(); r = optimizer.result\n"
            "print(len(optimizer.records), r.steps / r.seconds, optimizer.draw_count, "
            "r.seconds, optimizer.paint_seconds)",
        ).split()
        assert int(out[0]) == before + 1, out
        rates[live].append(float(out[1]))
        if live:
            assert int(out[2]) >= 5, out  # it did draw
            draws, paint = int(out[2]) / float(out[3]), float(out[4]) / int(out[2])
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    with capsys.disabled():
        print(
            f"\n[browser] batch of 4, 300 steps (median of 4): {on:.1f} steps/s with the live "
            f"preview, {off:.1f} without: overhead {100 * (off - on) / off:+.1f} % "
            f"({draws:.1f} redraws/s, {paint * 1000:.1f} ms each; "
            f"on {[round(r) for r in rates[True]]}, off {[round(r) for r in rates[False]]}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
