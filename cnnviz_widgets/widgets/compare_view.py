"""The explainer's Compare view: several attribution methods side by side on one image,
each with its deletion and insertion AUC, and a sanity check that redraws the maps under
cascading randomization of the model's weights (on a copy) with the correlation curve.

Both run in the background on a :class:`~.runner.Runner` (progress, Stop), each as an
engine :class:`~cnnviz_widgets.engine.jobs.Job`; the maps and scores are cached per
image, class, method and settings, so a second Compare redraws at once.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..engine import (
    BASELINES,
    Job,
    Randomization,
    attribution_job,
    deletion,
    insertion,
    method_info,
    randomization_job,
)
from .canvas import zoom_nearest
from .common import MessageArea, esc, row
from .method_settings import method_choices
from .pictures import fit_zoom, png_bytes
from .runner import RunBar, Runner

__all__ = ["DEFAULT_COMPARE", "CompareView", "correlation_svg"]

DEFAULT_COMPARE = ("saliency", "integrated_gradients", "guided_backprop", "grad_cam", "rise")
TILE = 128  # CSS pixels of a compared map
SMALL = 56  # CSS pixels of a map in the sanity check's rows
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def _png(rgba: np.ndarray, target: int) -> bytes:
    return png_bytes(zoom_nearest(rgba, fit_zoom(rgba.shape, target, nearest=True)))


def correlation_svg(result: Randomization, width: int = 470, height: int = 200) -> str:
    """An SVG line chart: each method's rank correlation with its original map after each
    randomization step (x: the layers, top down; y: -1..1)."""
    left, right, top, bottom = 36, 150, 10, 38
    n = len(result.steps)
    pw, ph = width - left - right, height - top - bottom

    def xy(i: int, v: float) -> tuple[float, float]:
        x = left + (pw * i / max(1, n - 1))
        return x, top + ph * (1 - (float(v) + 1) / 2)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">']
    for v in (-1, 0, 1):
        _, y = xy(0, v)
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc" '
            f'stroke-dasharray="{"" if v == 0 else "3,3"}"/><text x="{left - 6}" y="{y + 4:.1f}" '
            f'font-size="11" text-anchor="end" fill="#666">{v}</text>'
        )
    for i, name in enumerate(result.steps):
        x, _ = xy(i, -1)
        parts.append(
            f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle" '
            f'fill="#555">{esc(name if i else "orig.")}</text>'
        )
    for k, m in enumerate(result.methods):
        color = COLORS[k % len(COLORS)]
        pts = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(result.correlations[m]))
        )
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = top + 12 + 15 * k
        parts.append(
            f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="3" fill="{color}"/>'
            f'<text x="{left + pw + 24}" y="{ly - 3}" font-size="11" fill="#333">'
            f"{esc(method_info(m).label)}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 4}" font-size="11" text-anchor="middle" '
        'fill="#555">layers re-initialized, top down (cumulative)</text></svg>'
    )
    return "".join(parts)


class CompareView:
    """Methods side by side with their deletion/insertion AUC, and the sanity check.

    Args:
        context: ``() -> (loaded, image, target, settings_of)``: the panel's model, image,
            class and a function giving a method's settings.
        messages: the panel's message area.
        lock: the panel's lock.

    Attributes:
        methods: the methods to compare (a multiple selection; default a few quick ones).
        baseline: what replaces the deleted pixels (``"blur"``, ``"mean"``, ``"zero"``).
        compare_button, sanity_button: start the comparison and the sanity check.
        tiles: the compared maps; ``sanity``: the sanity check's maps and curve.
        results: method -> ``(Attribution, deletion Curve, insertion Curve)`` shown.
        randomization: the last :class:`~cnnviz_widgets.Randomization`, or ``None``.
        run_bar, runner: the background work's progress, Stop and thread.
        box: the part to place in the panel (CSS class ``cnnviz-ex-compare``).
    """

    def __init__(self, context: Callable[[], tuple], messages: MessageArea, lock: threading.RLock):
        self.context = context
        self.messages = messages
        choices = method_choices()
        self.methods = widgets.SelectMultiple(
            options=choices, value=[n for n in DEFAULT_COMPARE if n in {v for _, v in choices}],
            rows=6, layout=widgets.Layout(width="220px"),
        )  # fmt: skip
        self.baseline = widgets.Dropdown(
            options=list(BASELINES), value="blur", description="deleted pixels become",
            style={"description_width": "150px"}, layout=widgets.Layout(width="250px"),
        )  # fmt: skip
        self.compare_button = widgets.Button(
            description="Compare", icon="columns", button_style="primary",
            tooltip="each chosen method on this image, with its deletion and insertion AUC",
        )  # fmt: skip
        self.sanity_button = widgets.Button(
            description="Sanity check", icon="random",
            tooltip="redraw the maps while the model's layers are re-initialized, top down, "
            "on a copy of the model (Adebayo et al. 2018)",
        )  # fmt: skip
        self.compare_button.add_class("cnnviz-ex-compare-button")
        self.sanity_button.add_class("cnnviz-ex-sanity-button")
        self.help = widgets.HTML(
            '<span class="cnnviz-muted">Deletion AUC: the class probability as the most '
            "important pixels go first (lower: more faithful). Insertion AUC: as they come "
            "back first (higher: more faithful). The sanity check: a map that stays the same "
            "when the model's weights are destroyed does not explain what it learned.</span>"
        )
        self.tiles = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap", grid_gap="10px"))
        self.sanity = widgets.VBox()
        self.run_bar = RunBar(progress_width="160px", hide_idle=True)
        self.runner = Runner("cnnviz-compare", messages, self.run_bar, lock)
        self.results: dict[str, tuple] = {}
        self.randomization: Randomization | None = None
        self._cache: dict[tuple, tuple] = {}
        self.compare_button.on_click(lambda _: self._guard(self.compare))
        self.sanity_button.on_click(lambda _: self._guard(self.sanity_check))
        controls = widgets.VBox([self.baseline, row(self.compare_button, self.sanity_button)])
        self.box = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Compare methods</div>'),
                row(self.methods, controls),
                self.help,
                self.run_bar,
                self.tiles,
                self.sanity,
            ]
        )
        self.box.add_class("cnnviz-ex-compare")

    def _guard(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as err:
            self.messages.show_error(err)

    # ------------------------------------------------------------------- compare
    def _key(self, image: np.ndarray, target, method: str, settings: dict) -> tuple:
        digest = hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()
        shown = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        return digest, target, method, shown, self.baseline.value

    def compare(self) -> None:
        """Compute (or take from the cache) each chosen method's map and AUCs in the
        background, then draw them side by side; :meth:`wait` waits for it."""
        loaded, image, target, settings_of = self.context()
        names = list(self.methods.value)
        if image is None or not names:
            raise ValueError("choose an image and at least one method to compare")
        jobs = [(n, settings_of(n)) for n in names]
        self.run_bar.start(len(jobs), f"comparing {len(jobs)} methods…")

        def work(report, stopping):
            done = {}
            for i, (name, settings) in enumerate(jobs):
                key = self._key(image, target, name, settings)
                if key not in self._cache:
                    inner = attribution_job(loaded, image, name, target, **settings)
                    for _ in inner:
                        if stopping():  # Stop: the method in progress ends after its step
                            inner.stop()
                    if inner.result is None or stopping():
                        return None
                    r = inner.result
                    curves = (
                        deletion(loaded, None, r, baseline=self.baseline.value),
                        insertion(loaded, None, r, baseline=self.baseline.value),
                    )
                    self._cache[key] = (r, *curves)
                done[name] = self._cache[key]
                report(i + 1, len(jobs), method_info(name).label)
                if stopping():
                    return None
            return done

        def paint(p, rate, text):
            self.run_bar.status.value = f"{esc(p.item or '')} done ({p.done} of {p.total})"

        def finish(result, error):
            if error is not None:
                self.run_bar.end(0, "danger", "failed: see the message")
                self.messages.show_error(error)
            elif result is None:
                self.run_bar.end(self.run_bar.progress.value, "warning", "stopped")
            else:
                self.run_bar.end(len(jobs), "success", "")
                self.show(result)

        self.runner.run_job(
            Job(work, "compare"), paint=paint, finish=finish, unit=("method", "methods")
        )

    def show(self, results: dict[str, tuple]) -> None:
        """Draw the compared maps (``method -> (Attribution, deletion, insertion)``)."""
        self.results = dict(results)
        tiles = []
        best_del = min(d.auc for _, d, _ in results.values())
        best_ins = max(i.auc for _, _, i in results.values())
        for name, (r, d, ins) in results.items():
            picture = widgets.Image(value=_png(r.overlay("jet", 0.55), TILE), format="png")
            bold_d = " cnnviz-ex-best" if d.auc == best_del else ""
            bold_i = " cnnviz-ex-best" if ins.auc == best_ins else ""
            label = widgets.HTML(
                f'<div class="cnnviz-ex-tile-label" title="{esc(method_info(name).tip)}">'
                f"<b>{esc(method_info(name).label)}</b><br>"
                f'<span class="{bold_d}">deletion {d.auc:.3f}</span> · '
                f'<span class="{bold_i}">insertion {ins.auc:.3f}</span></div>'
            )
            tile = widgets.VBox([picture, label])
            tile.add_class("cnnviz-ex-tile")
            tiles.append(tile)
        self.tiles.children = tiles

    # -------------------------------------------------------------- sanity check
    def sanity_check(self) -> None:
        """Run the cascading randomization test on the chosen methods in the background,
        then draw each method's maps at every step and the correlation curve."""
        loaded, image, target, settings_of = self.context()
        names = list(self.methods.value)
        if image is None or not names:
            raise ValueError("choose an image and at least one method to check")
        params = {n: settings_of(n) for n in names}
        job = randomization_job(loaded, image, names, target, params=params)
        self.run_bar.start(1, "sanity check: randomizing the layers of a copy…")

        def paint(p, rate, text):
            if p.total:
                self.run_bar.status.value = f"sanity check: map {p.done} of {p.total}"

        def finish(result, error):
            if error is not None:
                self.run_bar.end(0, "danger", "failed: see the message")
                self.messages.show_error(error)
            elif result is None:
                self.run_bar.end(self.run_bar.progress.value, "warning", "stopped")
            else:
                self.run_bar.end(self.run_bar.progress.max, "success", "")
                self.show_sanity(result)

        self.runner.run_job(job, paint=paint, finish=finish, unit=("map", "maps"))

    def show_sanity(self, result: Randomization) -> None:
        """Draw a :class:`~cnnviz_widgets.Randomization`: one row of maps per method and
        the correlation curve."""
        from ..engine import Attribution

        self.randomization = result
        rows = []
        head = "".join(
            f'<span class="cnnviz-ex-step">{esc(s if i else "original")}</span>'
            for i, s in enumerate(result.steps)
        )
        rows.append(widgets.HTML(f'<div class="cnnviz-ex-steps">{head}</div>'))
        for m in result.methods:
            pics = []
            for heat in result.maps[m]:
                r = Attribution(heat, heat, 0, None, 0.0, 0.0, result.image, m)
                pics.append(widgets.Image(value=_png(r.overlay("jet", 0.6), SMALL), format="png"))
            label = widgets.HTML(
                f'<div class="cnnviz-ex-row-label"><b>{esc(method_info(m).label)}</b><br>'
                f'<span class="cnnviz-muted">ρ at the end {result.final(m):+.2f}</span></div>'
            )
            rows.append(widgets.HBox([label, *pics]))
        curve = widgets.HTML(correlation_svg(result))
        curve.add_class("cnnviz-ex-curve")
        title = widgets.HTML(
            '<div class="cnnviz-section">Sanity check: maps as the layers are re-initialized</div>'
        )
        self.sanity.children = [title, widgets.HBox([widgets.VBox(rows), curve])]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the comparison or the sanity check to end."""
        return self.runner.wait(timeout)

    def close(self) -> None:
        self.runner.close()
