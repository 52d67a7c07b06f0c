"""A class-optimization run as a record (settings, preview frames, objective, result) and
the strip of finished runs, newest first; a click on one shows it again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ipywidgets as widgets
import numpy as np

from ..engine import Result
from .canvas import PixelCanvas
from .common import esc
from .pictures import thumbnail

MAX_HISTORY = 24  # finished runs kept in the strip
MAX_GIF_FRAMES = 120  # preview frames kept per run (thinned when a run is long)

__all__ = ["HistoryItem", "HistoryStrip", "RunRecord"]


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
        result: the engine's :class:`~cnnviz_widgets.engine.optvis.results.Result` (``None``
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


class HistoryItem:
    """A finished run in the strip: thumbnail and caption; a click shows it again."""

    def __init__(self, record: RunRecord, on_click: Callable[[HistoryItem], None]) -> None:
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


class HistoryStrip:
    """The finished runs as thumbnails, newest first (at most ``MAX_HISTORY``).

    Attributes:
        items: the :class:`HistoryItem` objects, oldest first.
        box: the strip; ``head`` its title; ``section`` both (hidden while empty).
    """

    def __init__(self, on_click: Callable[[HistoryItem], None]) -> None:
        self.on_click = on_click
        self.items: list[HistoryItem] = []
        self.box = widgets.HBox()
        self.box.add_class("cnnviz-history")
        self.head = widgets.HTML('<div class="cnnviz-section">History</div>')
        self.section = widgets.VBox([self.head, self.box])
        self.section.layout.display = "none"

    def add(self, record: RunRecord) -> list[RunRecord]:
        """Add a finished run; returns the records dropped from the strip (the oldest)."""
        self.items.append(HistoryItem(record, self.on_click))
        dropped = []
        while len(self.items) > MAX_HISTORY:
            old = self.items.pop(0)
            dropped.append(old.record)
            old.close()
        n = len(self.items)
        self.box.children = tuple(i.box for i in reversed(self.items))
        self.section.layout.display = None
        self.head.value = (
            f'<div class="cnnviz-section">History <span class="cnnviz-muted">'
            f"({n} run{'s' if n > 1 else ''}; click one to show it again)</span></div>"
        )
        return dropped

    def select(self, record: RunRecord | None) -> None:
        """Outline the item of ``record`` (``None``: none)."""
        for item in self.items:
            item.select(item.record is record)

    def close(self) -> None:
        for item in self.items:
            item.close()
