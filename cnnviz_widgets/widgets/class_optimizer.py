"""ClassOptimizer: activation maximization as a panel, with a live preview and a history.

How a run is driven: background threads, decided by measuring in JupyterLab
---------------------------------------------------------------------------
The engine's :class:`~cnnviz_widgets.engine.optvis.Run` is a plain iterator of frames.  The
panel iterates it in a daemon **run thread**, which only hands each frame to a **painter
thread**; the painter draws the newest one at most ~10 times a second (and stays busy at
most 1/20 of the time), so encoding and sending images never delays a step.  Stop calls
the thread-safe ``run.stop()``: the run ends after the step in progress.

Measured in JupyterLab 4.6 / ipykernel 7.4 / headless Chromium on two cores, VGG16 with
random weights (~0.4 s a step), against the alternative, an asyncio task on the kernel's
event loop stepping the same ``Run`` (``await asyncio.sleep(0)`` between steps):

* a cell that keeps the kernel busy for 5 s: the thread went on (13 steps), the asyncio
  task froze (0 steps): a task on the kernel's loop only runs while no cell does;
* a click in the layer browser during a run: answered in ~60 ms median with either (this
  JupyterLab sends widget messages on a kernel subshell, so they do not wait for the loop;
  front ends without subshells would wait up to a whole step with the asyncio task);
* steps/s: the same (2.3 vs 2.5);
* outside a kernel (scripts, tests) there is no running loop to drive a task; a thread
  just works there too.

Widget messages sent from these threads reach the page: ipykernel sends comm messages from
any thread through its IOPub thread.  The threads touch only this panel's run widgets
(preview, progress, curve, history), under the panel's lock; canvas drawing goes through
:func:`~cnnviz_widgets.widgets.canvas.safe_hold`, which serializes the shared ipycanvas
manager between threads.  One run per panel at a time; :meth:`ClassOptimizer.close` stops
it.  Preview cost (``bench/bench_widgets.py``, ``tests/browser/test_optimizer.py``): ~2 %
of the steps/s in the kernel; ~10 % in the whole browser setup on two shared cores with
the embedded model (~15 ms a step, the worst case: a bigger model pays the same per
redraw on much longer steps).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from ..engine import PRESETS, optimize
from ..engine import objectives as obj
from ..engine.optvis import Frame, Result, Run
from ..errors import CnnvizError
from .canvas import PixelCanvas, zoom_nearest
from .common import Panel, esc, style_sheet
from .pictures import BACKGROUND, compose, fit_zoom, opaque_rgba, png_bytes, thumbnail

MAX_BATCH = 16  # images (targets) per run
MAX_HISTORY = 24  # finished runs kept in the strip
MAX_GIF_FRAMES = 120  # preview frames kept per run (thinned when a run is long)
REDRAW_INTERVAL = 0.1  # seconds between preview redraws (at most ~10 per second)
PREVIEW_TARGET = 176  # CSS pixels of a preview image (whole-pixel zoom)
PREVIEW_WIDTH = 820  # CSS pixels the preview's rows aim to fit in
CAPTION_BAND = 22  # CSS pixels under each row of images for the captions
TEXT_INTERVAL = 0.25  # seconds between updates of the progress text and the curve
MAX_PAUSE = 1.0  # the preview is redrawn at least this often, however slow a redraw was
MAX_CURVE_POINTS = 160  # points per line of the objective curve
# one colour per image of a batch: its curve, and a swatch by its caption
PALETTE = [
    "#4e9af1", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf",
]  # fmt: skip

CLASS_OBJECTIVES = {
    "class_score": ("logit + log-probability (default)", obj.class_score),
    "class_logit": ("logit (before the softmax)", obj.class_logit),
    "class_probability": ("probability (after the softmax)", obj.class_probability),
}
PRESET_LABELS = {
    "lucid": "lucid: Fourier image, transforms",
    "tf-keras-vis": "tf-keras-vis: pixels, TV + L1",
    "keras-vis": "keras-vis: pixels, TV + Lp (p=6)",
    "maco": "maco: Fourier phase only, crops + noise",
}
CHECKER = ((204, 204, 204), (153, 153, 153))  # the transparency view's background squares


# --------------------------------------------------------------------------- helpers
def over_checkerboard(images: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Images ``(B, H, W, C)`` uint8 blended by ``alpha`` ``(B, H, W)`` in ``[0, 1]`` over a
    gray checkerboard, as ``(B, H, W, 3)`` uint8: opaque where the model took its evidence,
    transparent where it never looked (MaCo's way of showing its images)."""
    images = np.asarray(images, np.uint8)
    alpha = np.asarray(alpha, np.float32)
    if images.ndim != 4 or alpha.shape != images.shape[:3]:
        raise CnnvizError(
            f"the transparency map {alpha.shape} does not fit the images {images.shape}"
        )
    _, h, w, c = images.shape
    rgb = np.repeat(images[..., :1], 3, axis=-1) if c == 1 else images[..., :3]
    cell = max(2, min(h, w) // 8)
    odd = ((np.arange(h)[:, None] // cell + np.arange(w)[None, :] // cell) % 2).astype(bool)
    board = np.where(odd[..., None], np.array(CHECKER[1]), np.array(CHECKER[0]))
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    out = rgb.astype(np.float32) * a + board[None].astype(np.float32) * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def preview_zoom(shape: tuple[int, ...], target: int = PREVIEW_TARGET) -> int:
    """Whole-pixel zoom that brings an image's longer side near ``target`` (1..8)."""
    return fit_zoom(shape, target, nearest=True)


@dataclass(frozen=True)
class PreviewLayout:
    """Where each image of a batch goes in the live preview's one canvas.

    The canvas holds the images at their own size, separated by gaps, and the browser
    shows it ``zoom`` times larger (pixelated): one small PNG per frame, whatever the
    batch.  The captions are HTML laid over the gaps under the images.
    """

    batch: int
    height: int
    width: int
    zoom: int
    columns: int
    gap: int  # pixels between images, before zoom
    band: int  # pixels under each row for its captions, before zoom

    @classmethod
    def for_batch(cls, batch: int, height: int, width: int) -> PreviewLayout:
        zoom = preview_zoom((height, width))
        fit = max(1, PREVIEW_WIDTH // (width * zoom + 12))  # images a row can hold
        columns = batch if batch <= fit else max(1, min(fit, math.ceil(math.sqrt(batch))))
        gap = math.ceil(12 / zoom)
        band = math.ceil(CAPTION_BAND / zoom)
        return cls(batch, height, width, zoom, columns, gap, band)

    @property
    def rows(self) -> int:
        return math.ceil(self.batch / self.columns)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the canvas before zoom."""
        w = self.columns * self.width + (self.columns - 1) * self.gap
        h = self.rows * (self.height + self.band) + (self.rows - 1) * self.gap
        return h, w

    def box(self, k: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of image ``k`` on the canvas, before zoom."""
        r, c = divmod(k, self.columns)
        x = c * (self.width + self.gap)
        y = r * (self.height + self.band + self.gap)
        return x, y, self.width, self.height

    def compose(self, images: np.ndarray) -> np.ndarray:
        """The images on one RGBA canvas (background where there is no image)."""
        h, w = self.shape
        out = np.empty((h, w, 4), np.uint8)
        out[:] = BACKGROUND
        for k in range(min(self.batch, len(images))):
            x, y, iw, ih = self.box(k)
            out[y : y + ih, x : x + iw] = opaque_rgba(images[k])
        return out


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "nan"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.4g}"


def curve_svg(
    steps: np.ndarray,
    values: np.ndarray,
    total_steps: int,
    width: int = 300,
    height: int = 150,
) -> str:
    """The objective per step as an inline SVG, one line per image (the palette's colours).

    ``steps``: ``(n,)``; ``values``: ``(n, B)``.  Long histories are thinned to
    ``MAX_CURVE_POINTS`` points (the message stays small however long the run).
    """
    left, right, top, bottom = 46, 10, 18, 22
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10.5">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
        'stroke="currentColor" stroke-opacity="0.25"/>',
        f'<text x="{left}" y="{top - 6}" fill="currentColor" fill-opacity="0.75">'
        "objective (maximized)</text>",
    ]
    values = np.asarray(values, np.float64).reshape(len(steps), -1) if len(steps) else values
    finite = np.isfinite(values) if len(steps) else np.zeros(0, bool)
    if len(steps) and finite.any():
        low, high = float(values[finite].min()), float(values[finite].max())
        if high - low < 1e-9:
            low, high = low - 1.0, high + 1.0
        span = high - low
        low, high = low - 0.05 * span, high + 0.05 * span
        xmax = max(int(total_steps), int(steps[-1]), 1)
        idx = np.unique(
            np.linspace(0, len(steps) - 1, min(len(steps), MAX_CURVE_POINTS)).astype(int)
        )
        xs = left + pw * np.asarray(steps, np.float64)[idx] / xmax
        if low < 0 < high:  # the zero line
            y0 = top + ph * (high - 0.0) / (high - low)
            parts.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{y0:.1f}" y2="{y0:.1f}" '
                'stroke="currentColor" stroke-opacity="0.2" stroke-dasharray="3 3"/>'
            )
        for j in range(values.shape[1]):
            ys = top + ph * (high - values[idx, j]) / (high - low)
            ok = np.isfinite(ys)
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[ok], ys[ok]))
            color = PALETTE[j % len(PALETTE)]
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" '
                'stroke-width="1.6" stroke-linejoin="round"/>'
            )
        for v, y in ((high, top + 9), (low, top + ph)):
            parts.append(
                f'<text x="{left - 5}" y="{y:.1f}" text-anchor="end" fill="currentColor" '
                f'fill-opacity="0.7">{_fmt(v)}</text>'
            )
        parts.append(
            f'<text x="{left}" y="{height - 6}" fill="currentColor" fill-opacity="0.7">0</text>'
            f'<text x="{left + pw}" y="{height - 6}" text-anchor="end" fill="currentColor" '
            f'fill-opacity="0.7">step {xmax}</text>'
        )
    else:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" '
            'fill="currentColor" fill-opacity="0.55">the curve appears when a run starts</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


# ---------------------------------------------------------------------------- records
@dataclass
class RunRecord:
    """A run of the panel: its settings, its preview frames and (when done) its result.

    Attributes:
        labels: one caption per image (``"circle"``, ``"conv3 · 7"``).
        title: the targets in a few words (``"circle"``, ``"conv3 channels 4–7"``).
        settings: preset, steps, lr, tv, lp, blur, seed, objective.
        frames: the preview frames ``(B, H, W, C)`` uint8 (for the GIF), at most
            ``MAX_GIF_FRAMES``, spread over the run.
        curve(): ``(steps, values)``, the objective per image so far (thread-safe).
        result: the engine's :class:`~cnnviz_widgets.engine.optvis.Result` (``None``
            while running, or when the run failed with an exception).
    """

    labels: list[str]
    title: str
    settings: dict
    frames: list[np.ndarray] = field(default_factory=list)
    frame_steps: list[int] = field(default_factory=list)
    result: Result | None = None
    error: str | None = None
    _steps: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64), repr=False)
    _values: np.ndarray | None = field(default=None, repr=False)
    _n: int = 0

    def add_values(self, step: int, values: np.ndarray) -> None:
        """Record the objective per image at ``step`` (the run's thread; readers in other
        threads see a consistent prefix)."""
        values = np.asarray(values, np.float64)
        n = self._n
        if self._values is None:
            self._values = np.zeros((len(self._steps), values.shape[0]))
        if n == len(self._steps):  # grow: copy, then publish the new buffers
            steps, vals = np.zeros(2 * n, np.int64), np.zeros((2 * n, values.shape[0]))
            steps[:n], vals[:n] = self._steps, self._values
            self._steps, self._values = steps, vals
        self._steps[n], self._values[n] = step, values
        self._n = n + 1

    @property
    def last_values(self) -> np.ndarray | None:
        n = self._n
        return None if n == 0 else self._values[n - 1]

    @property
    def images(self) -> np.ndarray | None:
        """The final images, or the last preview frame."""
        if self.result is not None:
            return self.result.images
        return self.frames[-1] if self.frames else None

    def keep_frame(self, step: int, images: np.ndarray) -> None:
        self.frames.append(np.array(images, copy=True))
        self.frame_steps.append(step)
        if len(self.frames) > MAX_GIF_FRAMES:  # thin out, keeping the first and the last
            keep = [*range(0, len(self.frames) - 1, 2), len(self.frames) - 1]
            self.frames = [self.frames[i] for i in keep]
            self.frame_steps = [self.frame_steps[i] for i in keep]

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of the objective: the result's full history when done."""
        if self.result is not None and len(self.result.history):
            h = self.result.history
            return np.arange(1, len(h) + 1), h
        n = self._n
        if n == 0:
            return np.zeros(0, int), np.zeros((0, len(self.labels)))
        steps, values = self._steps, self._values  # read n first: a prefix is complete
        return steps[:n], values[:n]


class _HistoryItem:
    """A finished run in the strip: thumbnail and caption; a click shows it again."""

    def __init__(self, record: RunRecord, on_click: Callable[[_HistoryItem], None]) -> None:
        self.record = record
        self.pixels = PixelCanvas("cnnviz-history-canvas")
        images = record.images
        if images is not None:
            self.pixels.show(thumbnail(images))
        s = record.settings
        result = record.result
        steps = f"{s['steps']} steps"
        if result is not None and result.error:
            steps = f"<b>NaN</b> at step {result.steps + 1}"
        elif result is not None and result.stopped:
            steps = f"stopped at {result.steps}"
        self.caption = widgets.HTML(
            f"<b>{esc(record.title)}</b><br>"
            f'<span class="cnnviz-muted">{esc(s["preset"])} · {steps}</span>'
        )
        self.box = widgets.VBox([self.pixels.canvas, self.caption])
        self.box.add_class("cnnviz-history-item")
        self.pixels.canvas.on_mouse_down(lambda x, y: on_click(self))

    def select(self, selected: bool) -> None:
        if selected:
            self.box.add_class("cnnviz-selected")
        else:
            self.box.remove_class("cnnviz-selected")

    def close(self) -> None:
        self.pixels.canvas.close()
        self.caption.close()
        self.box.close()


class _Painter(threading.Thread):
    """Draws the newest frame of a run at most every ``panel.redraw_interval`` seconds.

    The run's thread only hands frames over (:meth:`offer`): encoding images and sending
    widget messages never delays an optimization step, and frames that arrive between two
    redraws are skipped.
    """

    def __init__(self, panel: ClassOptimizer, run: Run, record: RunRecord) -> None:
        super().__init__(name="cnnviz-class-optimizer-painter", daemon=True)
        self.panel, self.run_, self.record = panel, run, record
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._done = False
        self._first: tuple[int, float] | None = None  # (step, time) after compiling
        self._last_text = -math.inf
        self._typical: float | None = None  # running mean of the redraw's cost

    def offer(self, frame: Frame) -> None:
        with self._cond:
            if self._first is None:
                self._first = (frame.step, time.perf_counter())
            self._frame = frame
            self._cond.notify()

    def finish(self) -> None:
        """Stop painting (the frame being drawn completes) and wait for the thread."""
        with self._cond:
            self._done = True
            self._cond.notify()
        if self.is_alive() and self is not threading.current_thread():
            self.join()

    def run(self) -> None:
        panel = self.panel
        while True:
            with self._cond:
                while self._frame is None and not self._done:
                    self._cond.wait()
                if self._done:
                    return
                frame, self._frame = self._frame, None
                first = self._first
            now = time.perf_counter()
            rate = (frame.step - first[0]) / (now - first[1]) if now > first[1] else 0.0
            text = now - self._last_text >= max(TEXT_INTERVAL, panel.redraw_interval)
            if text:
                self._last_text = now
            try:
                panel._paint(frame, self.run_, self.record, rate, text)
            except Exception as err:
                panel.messages.show_error(err)
                self.run_.stop()  # a panel that cannot draw should not run on unseen
                return
            # at most one redraw per interval, and the painter busy <= 1/20 of the time,
            # judged on the typical redraw: one slow redraw (seen: 0.27 s, the first of a
            # run, against ~9 ms) must not freeze the preview for 19 times as long
            spent = time.perf_counter() - now
            panel.paint_seconds += spent
            typical = spent if self._typical is None else (self._typical + spent) / 2
            self._typical = typical
            busy = min(19 * typical, MAX_PAUSE) if panel.redraw_interval else 0
            pause = max(panel.redraw_interval - spent, busy)
            if pause > 0:
                with self._cond:
                    self._cond.wait_for(lambda: self._done, timeout=pause)


# ------------------------------------------------------------------------------ panel
class ClassOptimizer(Panel):
    """Synthesize the image a class or a channel responds to most, watching it form.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model (name,
            path, ``keras.Model``, ``LoadedModel``).
        preset: ``"lucid"`` (default), ``"tf-keras-vis"``, ``"keras-vis"`` or ``"maco"``:
            fills in steps, learning rate and regularizer weights.
        steps, lr, tv, lp, blur: override the preset's values.
        seed: the random seed (the same seed gives the same images).
        **load_kwargs: passed to ``load_model`` when a model is given.

    Targets: in **Class** mode, classes picked by name from a searchable list (several
    with Ctrl/Shift-click: one image each, optimized as one batch); in **Channel** mode, a
    channel of a convolution layer, or channels ``k .. k+n-1``.  The panel follows the
    session (``session.class_index`` selects a class; ``session.channel``, e.g. a filter
    clicked in the :class:`FilterGallery`, selects that channel) and writes its own
    selections back to it.

    Run starts the optimization in a background thread (see the module docstring): the
    preview, the progress bar and the objective curve update at most ~10 times a second,
    and Stop ends it within one step, keeping the last image.  Finished runs go to the
    history strip; click one to show it again.  :meth:`to_png` and :meth:`to_gif` export
    the shown run.

    Attributes:
        mode: ``ToggleButtons`` ``"class"`` / ``"channel"``.
        class_search, class_list: the class filter text and the ``SelectMultiple``.
        layer_select, channel_index, channel_count: the channel target.
        preset, steps, lr, tv, lp, blur, seed, class_objective, live_preview: settings.
        transparency: ``Checkbox``: show the finished images over a checkerboard,
            transparent where the model took little evidence (the result's ``alpha``,
            MaCo's transparency map); PNG export follows it.
        run_button, stop_button, progress, status, curve: run controls and read-outs.
        pixels: the live preview, one :class:`PixelCanvas` (CSS class
            ``cnnviz-optimizer-canvas``) with every image of the batch side by side at its
            own size, shown enlarged (pixelated); ``preview_layout.box(k)`` is where image
            ``k`` is.  ``labels`` are the captions, ``captions`` the HTML laid over it.
        records: the finished runs (:class:`RunRecord`), oldest first; ``shown`` the one on
            display.
        extra: an objective added to the target's (e.g. ``0.5 * objectives.diversity(
            "conv3")``), or ``None``.
        redraw_interval: seconds between live redraws.
        draw_count: live redraws of the current or last run (for tests and benchmarks).
    """

    def __init__(
        self,
        model_or_session: Any,
        *,
        preset: str = "lucid",
        steps: int | None = None,
        lr: float | None = None,
        tv: float | None = None,
        lp: float | None = None,
        blur: float | None = None,
        seed: int = 0,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-class-optimizer", **load_kwargs)
        if preset not in PRESETS:
            raise CnnvizError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
        session = self.session
        self._lock = threading.RLock()  # this panel's run widgets, across threads
        self._updating = False
        self._thread: threading.Thread | None = None
        self._active = False  # from run() until the thread has finished its last update
        self._run: Run | None = None
        self._current: RunRecord | None = None
        self._closed = False
        self.extra: obj.Objective | None = None
        self.redraw_interval = REDRAW_INTERVAL
        self.draw_count = 0
        self.paint_seconds = 0.0
        self.records: list[RunRecord] = []
        self.shown: RunRecord | None = None
        self.labels: list[str] = []  # one caption per image of the preview
        self.preview_layout: PreviewLayout | None = None
        self._captions_key: tuple | None = None
        self._history_items: list[_HistoryItem] = []
        self._class_targets: list[int] = []
        self._n_classes = session.n_classes
        self._class_labels = self._make_class_labels()

        # --- target ------------------------------------------------------------------
        self.title = widgets.HTML(
            f'Class optimization <span class="cnnviz-sub">of {esc(session.loaded.name)}: the '
            "input a class or a channel responds to most</span>"
        )
        self.title.add_class("cnnviz-title")
        conv = session.conv_layers
        self.mode = widgets.ToggleButtons(
            options=[("Class", "class"), ("Channel", "channel")],
            tooltips=["an output class of the model", "a filter (channel) of a conv layer"],
            value="class" if self._n_classes else "channel",
            style={"button_width": "92px"},
        )
        self.mode.add_class("cnnviz-opt-mode")
        self.class_search = widgets.Text(
            placeholder="search classes…",
            continuous_update=True,
            layout=widgets.Layout(width="400px"),
        )
        self.class_search.add_class("cnnviz-class-search")
        self.class_list = widgets.SelectMultiple(
            options=self._class_options(""), rows=8, layout=widgets.Layout(width="400px")
        )
        self.class_list.add_class("cnnviz-class-list")
        self.class_hint = widgets.HTML(
            '<span class="cnnviz-muted">Ctrl/⌘- or Shift-click to pick several classes: one '
            "image each, in one batch.</span>"
        )
        self.layer_select = widgets.Dropdown(
            options=[(f"{p} · {session.n_channels(p)} channels", p) for p in conv],
            value=None,
            description="Layer",
            layout=widgets.Layout(width="400px"),
            style={"description_width": "60px"},
        )
        self.layer_select.add_class("cnnviz-opt-layer")
        self.channel_index = widgets.BoundedIntText(
            value=0,
            min=0,
            max=0,
            description="Channel",
            layout=widgets.Layout(width="150px"),
            style={"description_width": "60px"},
        )
        self.channel_index.add_class("cnnviz-opt-channel")
        self.channel_count = widgets.BoundedIntText(
            value=1,
            min=1,
            max=MAX_BATCH,
            description="images",
            tooltip="channels k, k+1, …: one image each, in one batch",
            layout=widgets.Layout(width="130px"),
            style={"description_width": "50px"},
        )
        self.target_summary = widgets.HTML()
        self.target_summary.add_class("cnnviz-muted")
        self.class_box = widgets.VBox([self.class_search, self.class_list, self.class_hint])
        self.channel_box = widgets.VBox(
            [
                self.layer_select,
                widgets.HBox([self.channel_index, self.channel_count]),
                widgets.HTML(
                    '<span class="cnnviz-muted">Click a filter in the filter gallery to '
                    "pick it here.</span>"
                ),
            ]
        )

        # --- settings ----------------------------------------------------------------
        wide = {"description_width": "92px"}
        narrow = {"description_width": "40px"}
        self.preset = widgets.Dropdown(
            options=[(PRESET_LABELS.get(name, name), name) for name in PRESETS],
            value=preset,
            description="Preset",
            layout=widgets.Layout(width="330px"),
            style={"description_width": "52px"},
        )
        self.preset.add_class("cnnviz-opt-preset")
        self.preset_info = widgets.HTML()
        self.preset_info.add_class("cnnviz-muted")
        self.steps = widgets.IntText(
            description="steps", layout=widgets.Layout(width="150px"), style=narrow
        )
        self.steps.add_class("cnnviz-opt-steps")
        self.lr = widgets.FloatText(
            description="learning rate", layout=widgets.Layout(width="170px"), style=wide
        )
        self.seed = widgets.IntText(
            value=int(seed), description="seed", layout=widgets.Layout(width="150px"), style=narrow
        )
        self.tv = widgets.FloatText(
            description="total var.", layout=widgets.Layout(width="150px"), style=narrow
        )
        self.lp = widgets.FloatText(
            description="Lp", layout=widgets.Layout(width="150px"), style=narrow
        )
        self.blur = widgets.FloatText(
            description="blur", layout=widgets.Layout(width="150px"), style=narrow
        )
        for w, text in (
            (self.tv, "weight of the total-variation penalty (smoothness)"),
            (self.lp, "weight of the Lp-norm penalty (keeps pixel values small)"),
            (self.blur, "weight of the blur penalty"),
        ):
            w.tooltip = text
        self.tv.style.description_width = "64px"
        self.tv.layout.width = "174px"
        self.class_objective = widgets.Dropdown(
            options=[(label, key) for key, (label, _) in CLASS_OBJECTIVES.items()],
            value="class_score",
            description="class score",
            layout=widgets.Layout(width="330px"),
            style={"description_width": "80px"},
        )
        self.live_preview = widgets.Checkbox(
            value=True,
            description="live preview",
            indent=False,
            tooltip="redraw the images while the run goes (about 10 times a second)",
            layout=widgets.Layout(width="120px"),
        )
        self.transparency = widgets.Checkbox(
            value=False,
            description="transparency",
            indent=False,
            tooltip="show the result over a checkerboard, transparent where the model took "
            "little evidence (accumulated gradients, MaCo's alpha map)",
            layout=widgets.Layout(width="120px"),
        )
        self.transparency.add_class("cnnviz-opt-transparency")
        self._apply_preset(preset, steps=steps, lr=lr, tv=tv, lp=lp, blur=blur)

        # --- run ---------------------------------------------------------------------
        self.run_button = widgets.Button(
            description="Run",
            icon="play",
            button_style="success",
            tooltip="start the optimization (the notebook stays usable)",
            layout=widgets.Layout(width="96px"),
        )
        self.run_button.add_class("cnnviz-run-button")
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="end the run after the current step, keeping its image",
            layout=widgets.Layout(width="90px"),
        )
        self.stop_button.add_class("cnnviz-stop-button")
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, layout=widgets.Layout(width="260px")
        )
        self.progress.add_class("cnnviz-progress")
        self.status = widgets.HTML('<span class="cnnviz-muted">ready</span>')
        self.status.add_class("cnnviz-status")
        self.pixels = PixelCanvas("cnnviz-optimizer-canvas", compress_level=1)
        self.captions = widgets.HTML(layout=widgets.Layout(margin="0"))
        self.captions.add_class("cnnviz-caption-layer")
        self.preview_stack = widgets.Box([self.pixels.canvas, self.captions])
        self.preview_stack.add_class("cnnviz-preview-stack")
        self.preview_box = widgets.Box([self.preview_stack])
        self.preview_box.add_class("cnnviz-preview-box")
        self.curve = widgets.HTML(curve_svg(np.zeros(0), np.zeros((0, 1)), 1))
        self.curve.add_class("cnnviz-curve")
        self.result_info = widgets.HTML()
        self.result_info.add_class("cnnviz-result-info")
        self.history_box = widgets.HBox()
        self.history_box.add_class("cnnviz-history")
        self.history_head = widgets.HTML('<div class="cnnviz-section">History</div>')
        self.save_png = widgets.Button(
            description="PNG",
            icon="download",
            tooltip="write the shown images to a PNG file",
            disabled=True,
            layout=widgets.Layout(width="84px"),
        )
        self.save_gif = widgets.Button(
            description="GIF",
            icon="film",
            tooltip="write the shown run as an animated GIF",
            disabled=True,
            layout=widgets.Layout(width="84px"),
        )
        self.export_status = widgets.HTML()
        self.export_status.add_class("cnnviz-muted")

        # --- layout ------------------------------------------------------------------
        target_col = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Target</div>'),
                self.mode,
                self.class_box,
                self.channel_box,
                self.target_summary,
            ],
            layout=widgets.Layout(flex="0 0 412px", width="412px"),
        )
        target_col.add_class("cnnviz-opt-column")
        settings_col = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Settings</div>'),
                self.preset,
                self.preset_info,
                self._row(self.steps, self.lr),
                self._row(self.tv, self.lp, self.blur),
                self._row(self.seed, self.live_preview, self.transparency),
                self.class_objective,
            ],
            layout=widgets.Layout(flex="1 1 360px", min_width="330px"),
        )
        settings_col.add_class("cnnviz-opt-column")
        settings_col.add_class("cnnviz-opt-settings")
        top = widgets.HBox(
            [target_col, settings_col],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", gap="18px"),
        )
        run_row = self._row(self.run_button, self.stop_button, self.progress, self.status)
        run_row.add_class("cnnviz-run-row")
        side = widgets.VBox(
            [
                self.curve,
                self.result_info,
                self._row(self.save_png, self.save_gif),
                self.export_status,
            ],
            layout=widgets.Layout(flex="0 1 316px", padding="0 0 0 14px"),
        )
        body = widgets.HBox(
            [self.preview_box, side],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        self.history_section = widgets.VBox([self.history_head, self.history_box])
        self.history_section.layout.display = "none"
        self.children = [
            style_sheet(),
            style_sheet("class_optimizer"),
            self.title,
            top,
            run_row,
            self.messages,
            body,
            self.history_section,
        ]

        # --- callbacks ---------------------------------------------------------------
        self.mode.observe(self.guarded(self._on_mode), names="value")
        self.class_search.observe(self.guarded(self._on_search), names="value")
        self.class_list.observe(self.guarded(self._on_class_pick), names="value")
        self.layer_select.observe(self.guarded(self._on_layer_pick), names="value")
        self.channel_index.observe(self.guarded(self._on_channel_pick), names="value")
        self.channel_count.observe(self.guarded(self._update_summary), names="value")
        self.preset.observe(self.guarded(self._on_preset), names="value")
        self.transparency.observe(self.guarded(self._on_transparency), names="value")
        self.run_button.on_click(self.guarded(lambda _: self.run()))
        self.stop_button.on_click(self.guarded(lambda _: self.stop()))
        self.save_png.on_click(self.guarded(self._on_save_png))
        self.save_gif.on_click(self.guarded(self._on_save_gif))
        self.observe_session(self._on_session_class, names=["class_index"])
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(self._on_session_channel, names=["channel"])

        # --- initial state from the session ------------------------------------------
        if session.class_index is not None:
            self._class_targets = [session.class_index]
        elif self._n_classes:
            self._class_targets = [0]
        self._sync_class_list()
        layer = self._conv_of_session()
        self._set_layer(layer if layer is not None else (conv[0] if conv else None))
        if layer is not None and session.channel is not None:
            self._set_channel(session.channel)
            self.mode.value = "channel"
        self._on_mode(None)
        if not conv and not self._n_classes:
            self.messages.show_note(
                "This model has no convolution layer and no known number of classes: there "
                "is nothing to optimize here."
            )
            self.run_button.disabled = True

    @staticmethod
    def _row(*children: widgets.Widget) -> widgets.HBox:
        box = widgets.HBox(list(children))
        box.add_class("cnnviz-controls")
        return box

    # --- public API -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A run is going on (or finishing its last update)."""
        return self._active

    @property
    def result(self) -> Result | None:
        """The engine result of the shown run (``None`` before the first one ends)."""
        return self.shown.result if self.shown is not None else None

    @property
    def class_targets(self) -> list[int]:
        """The classes picked in Class mode (indices)."""
        return list(self._class_targets)

    @class_targets.setter
    def class_targets(self, classes: Any) -> None:
        if isinstance(classes, (int, np.integer, str)):
            classes = [classes]
        indices = [self.session.class_index_of(c) for c in classes]
        self._class_targets = indices
        self._sync_class_list()
        if indices:
            self._write_session_class(indices[0])
        self.mode.value = "class"
        self._update_summary()

    def targets(self) -> tuple[obj.Objective, list[str], str]:
        """The objective of the current target selection, one caption per image and a
        short title.  Raises ``CnnvizError`` with the fix when the selection is unusable."""
        if self.mode.value == "class":
            classes = self._class_targets
            if not classes:
                raise CnnvizError("pick at least one class in the list (or type to search)")
            self._check_batch(len(classes), "classes")
            n = self._n_classes
            for c in classes:
                if c < 0 or (n is not None and c >= n):
                    raise CnnvizError(
                        f"class {c} is out of range: the model has {n} classes; use 0..{n - 1}"
                    )
            labels = [self._class_name(c) for c in classes]
            make = CLASS_OBJECTIVES[self.class_objective.value][1]
            objective = make(classes if len(classes) > 1 else classes[0])
            title = labels[0] if len(labels) == 1 else f"{len(labels)} classes"
            if len(labels) in (2, 3):
                title = ", ".join(labels)
            return objective, labels, title
        layer = self.layer_select.value
        if layer is None:
            raise CnnvizError("pick a convolution layer for the channel target")
        first, count = self._channel_range()
        self._check_batch(count, "channels")
        channels = list(range(first, first + count))
        objective = obj.channel(layer, channels if count > 1 else first)
        labels = [f"{layer} · {c}" for c in channels]
        title = f"{layer} · {first}" if count == 1 else f"{layer} · {first}–{first + count - 1}"
        return objective, labels, title

    def settings(self) -> dict:
        """The run settings as ``optimize`` keyword arguments, checked."""
        steps = int(self.steps.value)
        if steps < 1:
            raise CnnvizError(f"steps must be at least 1, got {steps}")
        lr = float(self.lr.value)
        if not lr > 0 or not np.isfinite(lr):
            raise CnnvizError(
                f"the learning rate must be > 0, got {lr} (the preset's is "
                f"{PRESETS[self.preset.value].lr})"
            )
        for name in ("tv", "lp", "blur"):
            value = float(getattr(self, name).value)
            if value < 0 or not np.isfinite(value):
                raise CnnvizError(f"{name} is a penalty weight and must be >= 0, got {value}")
        return {
            "preset": self.preset.value,
            "steps": steps,
            "lr": lr,
            "tv": float(self.tv.value),
            "lp": float(self.lp.value),
            "blur": float(self.blur.value),
            "seed": int(self.seed.value),
        }

    def run(self, wait: bool = False, timeout: float | None = None) -> RunRecord:
        """Start an optimization of the current targets in a background thread.

        Args:
            wait: block until it ends (scripts and tests; the Run button never waits).
            timeout: seconds to wait at most (with ``wait``).

        Returns:
            The :class:`RunRecord` of the new run (its ``result`` is set when it ends).

        Raises:
            CnnvizError: a run is already going, or the targets or settings are unusable
                (the Run button shows these in the panel).
        """
        with self._lock:
            if self._closed:
                raise CnnvizError("this panel is closed: make a new ClassOptimizer")
            if self.running:
                raise CnnvizError(
                    "a run is already going in this panel: press Stop (or wait for it to end) "
                    "before starting another"
                )
            objective, labels, title = self.targets()
            settings = self.settings()
            if self.extra is not None:
                objective = objective + self.extra
            run = optimize(self.session.loaded, objective, every=1, **settings)
            settings["objective"] = repr(objective)
            record = RunRecord(labels=labels, title=title, settings=settings)
            self._run, self._current = run, record
            self.draw_count = 0
            self.paint_seconds = 0.0
            self.messages.clear()
            self.export_status.value = ""
            self._select_history(None)
            self._prepare_preview(labels)
            with self.progress.hold_sync():
                self.progress.max = max(1, settings["steps"])
                self.progress.value = 0
                self.progress.bar_style = "info"
            self.status.value = "compiling the step… (once per target kind and batch size)"
            self.result_info.value = ""
            self.curve.value = curve_svg(np.zeros(0), np.zeros((0, 1)), settings["steps"])
            self._active = True
            self._set_running(True)
            thread = threading.Thread(
                target=self._work, args=(run, record), name="cnnviz-class-optimizer", daemon=True
            )
            self._thread = thread
            thread.start()
        if wait:
            self.wait(timeout)
        return record

    def stop(self) -> None:
        """End the run after the step in progress; its last image is kept."""
        run = self._run
        if run is not None and self.running:
            run.stop()
            with self._lock:
                if self.running:
                    self.status.value = "stopping after this step…"
                    self.stop_button.disabled = True

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; ``True`` if no run is going any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def show_record(self, record: RunRecord) -> None:
        """Show a finished run again: its images, curve and summary."""
        with self._lock:
            if self.running:
                raise CnnvizError(
                    "a run is going: its preview is live. Stop it (or wait) to look at "
                    "earlier results"
                )
            self._show_record(record)

    def _show_record(self, record: RunRecord) -> None:
        with self._lock:
            self.shown = record
            self._prepare_preview(record.labels)
            images = self._display_images(record)
            if images is not None:
                self._draw_images(images, self._final_values(record))
            steps, values = record.curve()
            self.curve.value = curve_svg(steps, values, record.settings["steps"])
            self.result_info.value = self._result_text(record)
            self._select_history(record)
            for button in (self.save_png, self.save_gif):
                button.disabled = images is None
            self.save_gif.disabled = not record.frames

    def to_png(
        self,
        path: str | os.PathLike | None = None,
        *,
        index: int | None = None,
        zoom: int | None = None,
        labels: bool = True,
    ) -> bytes:
        """The shown run's images as PNG bytes (also written to ``path`` when given).

        Args:
            index: only this image of the batch, at its own size times ``zoom`` (default
                1), without a caption.
            zoom: whole-pixel zoom (default: the preview's).
            labels: caption each image with its target (all images only).
        """
        images = self._shown_images()
        if index is not None:
            if not 0 <= index < len(images):
                raise CnnvizError(
                    f"index {index} is out of range: the run has {len(images)} "
                    f"images, 0..{len(images) - 1}"
                )
            picture = zoom_nearest(opaque_rgba(images[index]), zoom or 1)
        else:
            picture = compose(images, self.shown.labels if labels else None, zoom)
        data = png_bytes(picture)
        if path is not None:
            with open(path, "wb") as file:
                file.write(data)
        return data

    def to_gif(
        self,
        path: str | os.PathLike | None = None,
        *,
        duration: int = 100,
        zoom: int | None = None,
        labels: bool = True,
    ) -> bytes:
        """The shown run as an animated GIF: its preview frames, then the result held for
        a second.  ``duration`` is milliseconds per frame.  Returns the bytes; also writes
        ``path`` when given."""
        record = self.shown
        if record is None or not record.frames:
            raise CnnvizError("nothing to animate yet: press Run and let it draw a few frames")
        names = record.labels if labels else None
        frames = list(record.frames)
        final = record.images
        if final is not None and (not frames or not np.array_equal(frames[-1], final)):
            frames.append(final)
        pictures = [Image.fromarray(compose(f, names, zoom)[..., :3]) for f in frames]
        durations = [int(duration)] * (len(pictures) - 1) + [1000]
        buffer = io.BytesIO()
        pictures[0].save(
            buffer,
            "GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=durations,
            loop=0,
            optimize=False,
        )
        data = buffer.getvalue()
        if path is not None:
            with open(path, "wb") as file:
                file.write(data)
        return data

    def close(self) -> None:
        """Stop the run (if any), then close the panel and its widgets."""
        if getattr(self, "_closed", True):  # closed already, or __init__ failed early
            super().close()
            return
        with self._lock:
            self._closed = True
            run = self._run
        if run is not None:
            run.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        for item in self._history_items:
            item.close()
        self.pixels.canvas.close()
        super().close()

    # --- background run ---------------------------------------------------------------

    def _work(self, run: Run, record: RunRecord) -> None:
        """The run's thread: step the engine; hand frames to the painter, never wait on it."""
        painter = _Painter(self, run, record)
        painter.start()
        try:
            for frame in run:
                record.add_values(frame.step, frame.values)
                if self._closed:
                    run.stop()
                elif not frame.final:  # the final frame is drawn by _finish
                    painter.offer(frame)
        except Exception as err:  # the run is over; the panel and the kernel go on
            record.error = f"{type(err).__name__}: {err}"
            if not self._closed:
                self.messages.show_error(err)
        finally:
            painter.finish()
            self._finish(run, record)

    def _paint(
        self, frame: Frame, run: Run, record: RunRecord, rate: float, text: bool = True
    ) -> None:
        """Draw one live frame (the painter's thread); with ``text``, also the progress
        read-out and the curve (these change slowly: redrawn less often)."""
        record.keep_frame(frame.step, frame.images)
        with self._lock:
            if self._closed:
                return
            if text:
                self._draw_progress(frame.step, run.steps, rate, frame.seconds)
            if self.live_preview.value:
                self._draw_images(frame.images)
                if text:
                    steps, values = record.curve()
                    self.curve.value = curve_svg(steps, values, run.steps)
            self.draw_count += 1

    def _finish(self, run: Run, record: RunRecord) -> None:
        with self._lock:
            record.result = run.result
            self._run = None
            try:
                result = record.result
                if self._closed:
                    pass
                elif result is not None:
                    record.keep_frame(result.steps, result.images)
                    self.records.append(record)
                    self._add_history(record)
                    self._show_record(record)
                    done = result.steps
                    with self.progress.hold_sync():
                        self.progress.value = done
                        self.progress.bar_style = (
                            "danger" if result.error else "warning" if result.stopped else "success"
                        )
                    rate = done / result.seconds if result.seconds > 0 else 0.0
                    if result.error:
                        self.messages.show_error(CnnvizError(result.error))
                        what = f"NaN stop at step {done + 1}"
                    elif result.stopped:
                        what = f"stopped at step {done} of {run.steps}; last image kept"
                    else:
                        what = f"done: {done} steps"
                    self.status.value = (
                        f"{what} · {_duration(result.seconds)} · {rate:.1f} steps/s · "
                        f'<span title="{html.escape(result.precision_reason)}">'
                        f"{result.precision}</span>"
                    )
                else:
                    self.progress.bar_style = "danger"
                    self.status.value = "failed: see the message below"
            except Exception as err:
                self.messages.show_error(err)
            finally:
                self._active = False
                if not self._closed:
                    self._set_running(False)

    # --- drawing ----------------------------------------------------------------------

    def _prepare_preview(self, labels: list[str]) -> None:
        """A new batch: its captions (the layout is set by the first frame's size)."""
        self.labels = list(labels)
        self.preview_layout = None
        self._captions_key = None

    def _draw_images(self, images: np.ndarray, values: np.ndarray | None = None) -> None:
        """Draw a batch on the preview canvas: one PNG, whatever the batch size."""
        images = np.asarray(images)
        layout = self.preview_layout
        if layout is None or (layout.batch, layout.height, layout.width) != (
            len(images),
            *images.shape[1:3],
        ):
            layout = self.preview_layout = PreviewLayout.for_batch(len(images), *images.shape[1:3])
        self.pixels.show(layout.compose(images), css_zoom=layout.zoom)
        self._draw_captions(values)

    def _draw_captions(self, values: np.ndarray | None) -> None:
        layout = self.preview_layout
        key = (layout, tuple(self.labels), None if values is None else tuple(np.round(values, 4)))
        if key == self._captions_key:
            return
        self._captions_key = key
        z = layout.zoom
        spans = []
        for k, label in enumerate(self.labels[: layout.batch]):
            x, y, w, h = layout.box(k)
            color = PALETTE[k % len(PALETTE)]
            value = (
                "" if values is None else f' <span class="cnnviz-value">{_fmt(values[k])}</span>'
            )
            spans.append(
                f'<div class="cnnviz-caption" style="left:{x * z}px; top:{(y + h) * z + 3}px; '
                f'width:{w * z}px" title="{esc(label)}">'
                f'<span class="cnnviz-swatch" style="background:{color}"></span>{esc(label)}'
                f"{value}</div>"
            )
        height, width = layout.shape
        self.captions.value = (
            f'<div style="position:relative; width:{width * z}px; height:{height * z}px">'
            + "".join(spans)
            + "</div>"
        )

    def _draw_progress(self, step: int, steps: int, rate: float, seconds: float) -> None:
        self.progress.value = step
        if rate > 0:
            eta = (steps - step) / rate
            self.status.value = (
                f"step <b>{step}</b> / {steps} · {rate:.1f} steps/s · about {_duration(eta)} left"
            )
        else:
            self.status.value = f"step <b>{step}</b> / {steps} · {_duration(seconds)}"

    @staticmethod
    def _final_values(record: RunRecord) -> np.ndarray | None:
        result = record.result
        if result is not None and len(result.history):
            return result.history[-1]
        return record.last_values

    def _result_text(self, record: RunRecord) -> str:
        s = record.settings
        result = record.result
        names = ", ".join(record.labels) if len(record.labels) <= 6 else record.title
        lines = [f"<b>{esc(names)}</b>"]
        if result is not None:
            state = "finished"
            if result.error:
                state = "stopped by NaN gradients"
            elif result.stopped:
                state = "stopped early"
            lines.append(
                f"{state} · {result.steps} of {s['steps']} steps · {_duration(result.seconds)}"
            )
        lines.append(
            f"preset {esc(s['preset'])} · lr {s['lr']:g} · seed {s['seed']}<br>"
            f"penalties: tv {s['tv']:g} · lp {s['lp']:g} · blur {s['blur']:g}"
        )
        lines.append(f'<span class="cnnviz-muted">{esc(s.get("objective", ""))}</span>')
        return "<br>".join(lines)

    def _add_history(self, record: RunRecord) -> None:
        item = _HistoryItem(record, self.guarded(self._on_history_click))
        self._history_items.append(item)
        while len(self._history_items) > MAX_HISTORY:
            old = self._history_items.pop(0)
            if old.record in self.records:
                self.records.remove(old.record)
            old.close()
        self.history_box.children = tuple(i.box for i in reversed(self._history_items))
        self.history_section.layout.display = None
        self.history_head.value = (
            f'<div class="cnnviz-section">History <span class="cnnviz-muted">'
            f"({len(self._history_items)} run{'s' if len(self._history_items) > 1 else ''}; "
            "click one to show it again)</span></div>"
        )

    def _select_history(self, record: RunRecord | None) -> None:
        for item in self._history_items:
            item.select(item.record is record)

    def _set_running(self, running: bool) -> None:
        self.run_button.disabled = running
        self.stop_button.disabled = not running
        if running:
            self.save_png.disabled = self.save_gif.disabled = True

    def _shown_images(self) -> np.ndarray:
        if self.shown is None or self.shown.images is None:
            raise CnnvizError("nothing to export yet: press Run and wait for the result")
        return self._display_images(self.shown)

    def _display_images(self, record: RunRecord) -> np.ndarray | None:
        """The record's images as shown: over the checkerboard when ``transparency`` is on
        and the run has a transparency map."""
        images = record.images
        result = record.result
        if (
            images is None
            or not self.transparency.value
            or result is None
            or result.alpha is None
            or result.alpha.shape != images.shape[:3]
        ):
            return images
        return over_checkerboard(images, result.alpha)

    # --- targets ----------------------------------------------------------------------

    def _make_class_labels(self) -> list[str]:
        n = self._n_classes or 0
        names = self.session.loaded.class_names
        if names:
            return [f"{i} · {name}" for i, name in enumerate(names)]
        return [f"class {i}" for i in range(n)]

    def _class_name(self, index: int) -> str:
        names = self.session.loaded.class_names
        return names[index] if names and 0 <= index < len(names) else f"class {index}"

    def _class_options(self, text: str) -> list[tuple[str, int]]:
        text = text.strip().lower()
        if not text:
            return [(label, i) for i, label in enumerate(self._class_labels)]
        words = re.split(r"[\s,]+", text)
        return [
            (label, i)
            for i, label in enumerate(self._class_labels)
            if any(w and (w in label.lower() or w == str(i)) for w in words)
        ]

    def _check_batch(self, n: int, what: str) -> None:
        if n > MAX_BATCH:
            raise CnnvizError(
                f"{n} {what} picked: a run makes at most {MAX_BATCH} images (one per target); "
                "pick fewer"
            )

    def _channel_range(self) -> tuple[int, int]:
        layer = self.layer_select.value
        n = self.session.n_channels(layer) if layer is not None else 0
        first = int(self.channel_index.value)
        count = max(1, min(int(self.channel_count.value), (n or first + 1) - first))
        return first, count

    def _sync_class_list(self) -> None:
        visible = {v for _, v in self.class_list.options}
        self._updating = True
        try:
            self.class_list.value = tuple(c for c in self._class_targets if c in visible)
        finally:
            self._updating = False

    def _conv_of_session(self) -> str | None:
        row = self.session.layer_row
        return row.path if row is not None and row.has_kernel else None

    def _set_layer(self, layer: str | None) -> None:
        self._updating = True
        try:
            self.layer_select.value = layer
            n = self.session.n_channels(layer) if layer is not None else 1
            self.channel_index.max = max(0, (n or 1) - 1)
        finally:
            self._updating = False
        self._update_summary()

    def _set_channel(self, channel: int) -> None:
        self._updating = True
        try:
            self.channel_index.value = channel
        finally:
            self._updating = False
        self._update_summary()

    def _write_session_class(self, index: int) -> None:
        if self.session.class_index != index:
            self._updating = True
            try:
                self.session.class_index = index
            finally:
                self._updating = False

    def _update_summary(self, change: Any = None) -> None:
        if self.mode.value == "class":
            labels = [self._class_name(c) for c in self._class_targets]
            if not labels:
                text = "No class picked yet."
            elif len(labels) == 1:
                text = f"→ one image of <b>{esc(labels[0])}</b>"
            else:
                shown = ", ".join(labels[:8]) + (
                    f", … ({len(labels)} in all)" if len(labels) > 8 else ""
                )
                text = f"→ {len(labels)} images in one batch: {esc(shown)}"
        else:
            layer = self.layer_select.value
            if layer is None:
                text = "No convolution layer in this model."
            else:
                first, count = self._channel_range()
                n = self.session.n_channels(layer)
                if count == 1:
                    text = f"→ one image of channel <b>{first}</b> of {esc(layer)} ({n} channels)"
                else:
                    text = (
                        f"→ {count} images in one batch: channels <b>{first}–{first + count - 1}"
                        f"</b> of {esc(layer)}"
                    )
        self.target_summary.value = text

    # --- callbacks --------------------------------------------------------------------

    def _on_mode(self, change: Any) -> None:
        is_class = self.mode.value == "class"
        self.class_box.layout.display = None if is_class else "none"
        self.channel_box.layout.display = None if not is_class else "none"
        self.class_objective.layout.display = None if is_class else "none"
        if change is not None and change["new"] == "class" and not self._n_classes:
            self._updating = True
            self.mode.value = "channel"
            self._updating = False
            raise CnnvizError(
                "the number of output classes of this model is unknown (several outputs?): "
                "use a channel target"
            )
        self._update_summary()

    def _on_search(self, change: dict) -> None:
        options = self._class_options(change["new"])
        self._updating = True
        try:
            self.class_list.options = options
        finally:
            self._updating = False
        self._sync_class_list()
        if not options:
            self.messages.show_note(f"No class matches <b>{esc(change['new'])}</b>.")
        elif self.messages.kind == "note":
            self.messages.clear()

    def _on_class_pick(self, change: dict) -> None:
        if self._updating:
            return
        new = [int(v) for v in change["new"]]
        added = [v for v in new if v not in change["old"]]
        self._class_targets = new
        if self.mode.value != "class":
            self.mode.value = "class"
        pick = added[0] if len(added) == 1 else (new[0] if new else None)
        if pick is not None:
            self._write_session_class(pick)
        self._update_summary()

    def _on_layer_pick(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self._set_layer(change["new"])
        if self.channel_index.value > self.channel_index.max:
            self._set_channel(self.channel_index.max)
        if self.session.layer != change["new"]:
            self._updating = True
            try:
                self.session.select(change["new"], channel=int(self.channel_index.value))
            finally:
                self._updating = False

    def _on_channel_pick(self, change: dict) -> None:
        if self._updating:
            return
        self._update_summary()
        layer = self.layer_select.value
        if layer is None:
            return
        self._updating = True
        try:
            if self.session.layer != layer:
                self.session.select(layer, channel=int(change["new"]))
            elif self.session.channel != change["new"]:
                self.session.channel = int(change["new"])
        finally:
            self._updating = False

    def _on_preset(self, change: dict) -> None:
        self._apply_preset(change["new"])

    def _apply_preset(self, name: str, **overrides: Any) -> None:
        p = PRESETS[name]
        values = {"steps": p.steps, "lr": p.lr, "tv": p.tv, "lp": p.lp, "blur": p.blur}
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        for key, value in values.items():
            getattr(self, key).value = value
        self.preset_info.value = esc(p.description)

    def _on_transparency(self, change: dict) -> None:
        with self._lock:
            if self.running or self.shown is None:
                return  # a live preview has no map yet: the finished run is drawn with it
            self._show_record(self.shown)

    def _on_history_click(self, item: _HistoryItem) -> None:
        self.show_record(item.record)

    def _on_session_class(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        index = int(change["new"])
        if index not in {v for _, v in self.class_list.options}:
            self.class_search.value = ""  # hidden by the search: show every class
        self._class_targets = [index]
        self._sync_class_list()
        self.mode.value = "class"
        self._update_summary()

    def _on_session_layer(self, change: dict) -> None:
        if self._updating:
            return
        layer = self._conv_of_session()
        if layer is not None and layer != self.layer_select.value:
            self._set_layer(layer)
            if self.channel_index.value > self.channel_index.max:
                self._set_channel(0)

    def _on_session_channel(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        layer = self._conv_of_session()
        if layer is None:
            return
        if layer != self.layer_select.value:
            self._set_layer(layer)
        self._set_channel(int(change["new"]))
        self.mode.value = "channel"

    # --- export buttons ---------------------------------------------------------------

    def _file_stem(self) -> str:
        title = self.shown.title if self.shown is not None else "run"
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", title).strip("_") or "run"
        return f"optimized_{stem}"

    def _link(self, name: str, data: bytes, mime: str) -> str:
        link = base64.b64encode(data).decode("ascii")
        return (
            f"saved <code>{esc(os.path.abspath(name))}</code> ({len(data) / 1024:.0f} KB) · "
            f'<a download="{html.escape(name)}" href="data:{mime};base64,{link}">download</a>'
        )

    def _on_save_png(self, _button: Any) -> None:
        name = self._file_stem() + ".png"
        self.export_status.value = self._link(name, self.to_png(name), "image/png")

    def _on_save_gif(self, _button: Any) -> None:
        name = self._file_stem() + ".gif"
        self.export_status.value = self._link(name, self.to_gif(name), "image/gif")
