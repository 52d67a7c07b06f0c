"""UnitAtlas: every unit of the session's layer as a grid that fills in while it computes;
click a unit for its page (visualization, dataset examples with the activation outlined,
weights, the classes it feeds).

Nothing is computed in the constructor: opening the store (which hashes the model's
weights: about a second for VGG16) and every run go to the shared background runner
(:mod:`.runner`: a worker thread, a painter redrawing at most ~10 times a second, Stop,
errors in the panel), so ``explore(model)`` returns at once on a large model.  Everything
finished goes to the atlas's store: reopening the panel (or a restarted kernel) paints the
stored units and computes only the missing ones.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw

from ..engine import (
    Atlas,
    AtlasProgress,
    AtlasUnit,
    Job,
    JobProgress,
    ShapesStream,
    atlas_job,
    default_cam_layer,
    get_layer,
    open_atlas,
    output_shape,
)
from ..errors import CnnvizError
from .atlas_grid import AtlasGrid, stored_scores
from .canvas import HIGHLIGHT, PixelCanvas
from .common import Panel, esc, style_sheet
from .pictures import BACKGROUND, font, opaque_rgba
from .runner import RunBar, Runner, duration
from .save_figure import SaveFigure, atlas_figures

__all__ = ["UnitAtlas"]

NO_UNIT = (
    '<span class="cnnviz-muted cnnviz-atlas-hint">Click a unit in the grid to see its page: '
    "its visualization, its dataset examples with where it peaks, its weights. Or type its "
    "number in <b>find</b>.</span>"
)

TILE = 56  # pixels of a unit's tile in the grid (see .atlas_grid)
PAGE_VIS = 160  # pixels of the visualization on a unit's page
PAGE_EXAMPLE = 84  # pixels of each dataset example


def _fit(image: np.ndarray, size: int) -> Image.Image:
    """An image as a ``size``-pixel square tile (nearest when enlarged, Lanczos when
    reduced), RGBA."""
    tile = Image.fromarray(opaque_rgba(image), "RGBA")
    scale = size / max(tile.size)
    method = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return tile.resize(
        (max(1, round(tile.width * scale)), max(1, round(tile.height * scale))), method
    )


def _at_least(box, shape, share: float = 0.15) -> tuple[int, int, int, int]:
    """The peak cell's box, grown about its centre to at least ``share`` of the image's
    side (a cell of an early layer is a pixel or two: too small to see)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = shape
    side_x, side_y = max(x1 - x0, round(w * share)), max(y1 - y0, round(h * share))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0 = int(min(max(cx - side_x / 2, 0), w - side_x))
    y0 = int(min(max(cy - side_y / 2, 0), h - side_y))
    return x0, y0, x0 + side_x, y0 + side_y


def _label(name: str, face, draw, width: int) -> str:
    """A label as shown under an example: underscores as spaces, shortened to ``width``."""
    text = name.replace("_", " ")
    while len(text) > 4 and draw.textlength(text, font=face) > width:
        text = text[:-2] + "…"
    return text


def unit_page(unit: AtlasUnit, label_names: list[str] | None = None) -> np.ndarray:
    """A unit's page as one RGBA picture: its visualization and kernel, then its dataset
    examples with the cell where the unit peaks outlined, each captioned with its score
    and, when the data has labels, its label on a line of its own."""
    face = font(12)
    examples = unit.examples if unit.examples is not None else np.zeros((0, 1, 1, 3), np.uint8)
    labels = unit.example_labels
    labelled = labels is not None and bool((np.asarray(labels) >= 0).any())
    caption = 36 if labelled else 22  # one or two lines under each example
    per_row = 6
    rows = max(1, math.ceil(len(examples) / per_row)) if len(examples) else 0
    width = max(PAGE_VIS + 120, per_row * (PAGE_EXAMPLE + 6) + 6)
    height = 10 + PAGE_VIS + 22 + rows * (PAGE_EXAMPLE + caption) + 6
    page = Image.new("RGBA", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(page)
    light = (232, 232, 232, 255)
    muted = (170, 170, 170, 255)
    if unit.image is not None:
        page.paste(_fit(unit.image, PAGE_VIS), (6, 6))
        draw.text((6, PAGE_VIS + 10), "visualization", fill=light, font=face)
    else:
        draw.text((10, 40), "not computed yet", fill=light, font=face)
    if unit.kernel is not None:
        page.paste(_fit(unit.kernel, 96), (PAGE_VIS + 16, 6))
        draw.text((PAGE_VIS + 16, 106), "weights", fill=light, font=face)
        if unit.kernel_view:
            draw.text((PAGE_VIS + 16, 120), unit.kernel_view, fill=muted, font=face)
    if unit.health in ("dead", "near-dead"):  # its examples are ties: say so on the page
        text = f"{unit.health.upper()}: fired on {unit.fired} of {unit.seen} images"
        draw.text((PAGE_VIS + 16, 140), text, fill=(255, 90, 90, 255), font=face)
    names = unit.label_names or label_names
    top = PAGE_VIS + 30
    for j, example in enumerate(examples):
        r, c = divmod(j, per_row)
        x, y = 6 + c * (PAGE_EXAMPLE + 6), top + r * (PAGE_EXAMPLE + caption)
        tile = _fit(example, PAGE_EXAMPLE)
        page.paste(tile, (x, y))
        if unit.example_boxes is not None and j < len(unit.example_boxes):
            sx = tile.width / example.shape[1]
            sy = tile.height / example.shape[0]
            x0, y0, x1, y1 = _at_least(unit.example_boxes[j], example.shape[:2])
            draw.rectangle(
                (x + x0 * sx, y + y0 * sy, x + x1 * sx - 1, y + y1 * sy - 1),
                outline=HIGHLIGHT,
                width=2,
            )
        below = y + PAGE_EXAMPLE + 3
        label = int(labels[j]) if labels is not None else -1
        if labelled and label >= 0:
            name = names[label] if names and label < len(names) else str(label)
            draw.text((x, below), _label(name, face, draw, PAGE_EXAMPLE), fill=light, font=face)
            below += 14
        draw.text((x, below), f"score {unit.example_scores[j]:.3g}", fill=muted, font=face)
    return np.asarray(page, dtype=np.uint8)


class UnitAtlas(Panel):
    """Every unit of the session's layer: a grid of feature visualizations that fills in as
    they are computed, and a page per unit.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model.
        data: the data set for the dataset examples (anything
            :func:`cnnviz_widgets.top_examples` takes); ``None``: for the embedded shapes
            models, 1,000 generated shapes images (``ShapesStream(1000)``), else none.
        store: the atlas store's root directory (default: ``$CNNVIZ_STORE/atlas`` or
            ``~/.cache/cnnviz_widgets/atlas``).
        channels: the units to show (default: all of the layer).
        steps, batch, seed, preset, k, backend, key: as :func:`cnnviz_widgets.atlas`
            (``steps`` default 128).
        **load_kwargs: passed to ``load_model`` when a model is given.

    The layer is ``session.layer`` (or, while the session has none, the last layer with a
    spatial output).  The panel opens the layer's store in the background (the
    constructor returns at once; :meth:`wait` waits for it).  Run computes what the store
    does not hold yet; Stop ends it after the step in progress (finished units stay
    stored, the grid keeps the last images).  A click on a unit shows its page and sets
    ``session.channel``, so the other panels follow; a channel selected elsewhere shows its
    page here.

    Attributes:
        atlas: the :class:`~cnnviz_widgets.engine.dataset.atlas.Atlas` shown (``None`` until the
            store is open).
        grid: the grid's canvas (CSS class ``cnnviz-atlas-grid``); ``page`` the unit page's
            (``cnnviz-atlas-unit``).
        runner: the :class:`~cnnviz_widgets.widgets.runner.Runner` of the opening and the
            runs; ``run_bar`` its Run, Stop, progress bar and status line.
        shown: the unit whose page is shown, or ``None``.
        live: ``{channel: image}`` drawn for units still being optimized.
    """

    def __init__(
        self,
        model_or_session: Any,
        data: Any = None,
        *,
        store: Any = None,
        channels: Any = None,
        steps: int = 128,
        batch: int = 16,
        seed: int = 0,
        preset: str = "auto",
        k: int = 9,
        backend: str = "local",
        key: str | None = None,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-unit-atlas", **load_kwargs)
        if data is None and self.session.loaded.name.startswith("shapes"):
            data = ShapesStream(1000, seed=0)
        self.data = data
        self.options = dict(
            store=store, channels=channels, batch=batch, seed=seed, preset=preset, k=k, key=key
        )
        self.backend = backend
        self.atlas: Atlas | None = None
        self.shown: int | None = None
        self.live: dict[int, np.ndarray] = {}
        self.draw_count = 0
        self._lock = threading.RLock()
        self._tiles: dict[int, np.ndarray] = {}
        self._marks: dict[int, str] = {}  # dead / near-dead units, once known
        self._job = ""  # what the runner runs: "open" or "run"
        self._then = ""  # what to do when it ends: "", "open" or "run"
        self._status = ""  # the run's status line, drawn by the painter

        self.title = widgets.HTML()
        self.title.add_class("cnnviz-title")
        self.steps = widgets.BoundedIntText(
            value=steps, min=1, max=4096, description="steps", layout=widgets.Layout(width="150px")
        )
        run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        run_button.add_class("cnnviz-atlas-run")
        self.run_bar = RunBar(run_button, progress_width="180px")
        self.runner = Runner("cnnviz-unit-atlas", self.messages, self.run_bar, self._lock)
        self.grid_view = AtlasGrid(
            self.guarded(self._draw_grid), self.guarded(self.find), self._scores
        )
        self.grid = self.grid_view.canvas
        self.page = PixelCanvas("cnnviz-atlas-unit")
        self.page_info = widgets.HTML(NO_UNIT)
        self.run_bar.run_button.on_click(self.guarded(lambda _: self.run()))
        self.grid.canvas.on_mouse_down(self.guarded(self._on_click))
        controls = widgets.HBox([self.steps, self.run_bar])
        controls.add_class("cnnviz-controls")
        detail = widgets.VBox([self.page_info, self.page.canvas])
        detail.add_class("cnnviz-detail-box")
        body = widgets.HBox([self.grid_view.box, detail])
        body.add_class("cnnviz-atlas-body")
        self.children = [
            style_sheet(),
            style_sheet("unit_atlas"),
            self.title,
            controls,
            self.messages,
            body,
            SaveFigure(atlas_figures(self), "atlas.pdf"),
        ]
        self.observe_session(self._on_layer, ["layer"])
        self.observe_session(self._on_channel, ["channel"])
        self.observe_session(self._on_output, ["output"])
        self.guarded(self.reload)()

    # --- what is shown ---------------------------------------------------------------

    @property
    def layer(self) -> str:
        """The atlas's layer: ``session.layer``, or the last layer with a spatial output."""
        layer = self.session.layer
        if layer is not None:
            shape = output_shape(get_layer(self.session.loaded, layer)[0])
            if shape is not None and len(shape) in (2, 4):
                return layer
        return default_cam_layer(self.session.loaded)

    @property
    def running(self) -> bool:
        """The store is being opened or a run computes."""
        return self.runner.running

    def _settings(self) -> dict:
        settings = dict(self.options, steps=int(self.steps.value))
        if self.session.output is not None:  # the units' classes are the session's output's
            settings["output"] = self.session.output
        return settings

    def reload(self) -> None:
        """Open the layer's atlas as stored and draw it, in the background (nothing is
        computed; :meth:`wait` waits for it).  During a run it happens when the run ends."""
        with self._lock:
            if self.runner.running:
                if self._job == "open":  # an older layer or settings: open again after it
                    self.runner.stop()
                self._then = self._then or "open"
                return
            layer = self.layer
            self.title.value = (
                f"Unit atlas of <code>{esc(layer)}</code> "
                '<span class="cnnviz-sub">opening the store…</span>'
            )
            self.run_bar.start(1, "opening the store (hashing the model's weights)…")
            self._job = "open"
            settings = self._settings()

            def work(report, stopping) -> Atlas | None:
                opened = open_atlas(self.session.loaded, layer, self.data, **settings)
                return opened if self._take_atlas(opened, stopping) else None

            self.runner.run_job(
                Job(work, f"open the atlas of {layer}"), finish=self._opened, after=self._after
            )

    def _take_atlas(self, opened: Atlas, stopping) -> bool:
        """The worker thread: make ``opened`` the atlas shown, with the tiles of its stored
        units (``False``, showing nothing, when ``stopping()`` turns true meanwhile)."""
        done = opened.vis_store.done()
        tiles = {}
        for c in opened.units:
            if stopping():
                return False
            if c in done:
                tiles[c] = self._tile(opened.image(c))
        with self._lock:
            self._show_atlas(opened, tiles)
        return True

    def _show_atlas(self, opened: Atlas, tiles: dict) -> None:
        """Make ``opened`` the atlas shown (under the lock)."""
        if self.atlas is None or (self.atlas.layer, self.atlas.units) != (
            opened.layer,
            opened.units,
        ):
            self.atlas = opened
            self.grid_view.set_units(opened.units)
        self.atlas, self._tiles, self.live, self._marks = opened, tiles, {}, {}
        n = len(opened.units)
        self.title.value = (
            f"Unit atlas of <code>{esc(opened.layer)}</code> "
            f'<span class="cnnviz-sub">{n} units · visualization, dataset examples, '
            "weights</span>"
        )
        self._draw_grid()

    def _opened(self, opened: Atlas | None, error: BaseException | None) -> None:
        """The opening's end (worker thread, under the lock)."""
        if opened is None and error is None:  # stopped
            self.run_bar.end(0, "warning", "")
            return
        if error is not None:
            self.title.value = '<span class="cnnviz-sub">Unit atlas: not opened</span>'
            self.run_bar.end(0, "danger", "failed: see the message")
            self.messages.show_error(error)
            return
        n, done = len(opened.units), len(opened.done())
        self.run_bar.progress.max = max(1, n)
        self.run_bar.end(done, "success" if done == n else "info", f"{done} of {n} units stored")
        for note in opened.notes:
            self.messages.show_note(esc(note))
        channel = self.session.channel
        if channel is not None and channel in opened.units:
            self.show_unit(channel)

    def _tile(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(_fit(image, TILE), np.uint8)

    def tile_box(self, channel: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of a unit's tile in the grid image (on the page shown)."""
        return self.grid_view.tile_box(channel)

    def _draw_grid(self) -> None:
        if self.atlas is None:
            return
        with self._lock:
            tiles = dict(self._tiles)
            for c in self.grid_view.page_units():
                if c not in tiles and c in self.live:
                    tiles[c] = self._tile(self.live[c])
                elif c in self._tiles and c not in self._marks:
                    if (word := self.atlas.health(c)) != "unknown":
                        self._marks[c] = word  # DEAD / NEAR-DEAD, drawn on the tile
            marks = {c: w for c, w in self._marks.items() if w != "alive"}
            self.grid_view.draw(tiles, self.shown, marks)
            self.draw_count += 1

    def _scores(self, key: str) -> dict[int, float]:
        """``{unit: score}`` for the grid's order (see :func:`.atlas_grid.stored_scores`)."""
        scores, note = stored_scores(self.atlas, key)
        if note:
            self.messages.show_note(note)
        return scores

    def find(self, unit: int | str) -> None:
        """Show unit ``unit``'s page, turning the grid to it (the find box calls this)."""
        atlas = self.atlas
        if atlas is None:
            raise CnnvizError("the atlas is still opening: wait a moment, then try again")
        if not isinstance(unit, int) or unit not in atlas.units:
            first, last = min(atlas.units), max(atlas.units)
            raise CnnvizError(
                f"{unit!r} is not a unit of this atlas: type a whole number from {first} to {last}"
            )
        self.messages.clear()
        if self.grid_view.show_page_of(unit):
            self._draw_grid()
        if self.session.layer != atlas.layer:
            self.session.layer = atlas.layer
        if self.session.channel == unit:
            self.show_unit(unit)
        else:
            self.session.channel = unit  # the observer shows the page

    def show_unit(self, channel: int) -> AtlasUnit:
        """Show a unit's page: visualization, weights, dataset examples, classes fed."""
        with self._lock:
            if self.atlas is None:
                raise CnnvizError("the atlas is still opening: wait a moment, then click again")
            unit = self.atlas.unit(channel)
            self.shown = int(channel)
            self.page.show(unit_page(unit))
            parts = [f"<b>{esc(self.atlas.layer)}</b> · channel <b>{unit.channel}</b>"]
            if unit.value is not None:
                parts.append(f"visualization reaches {unit.value:.3g} (mean activation)")
            if unit.examples is None:
                parts.append(
                    "dataset examples: "
                    + ("not computed yet, press Run" if self.atlas.has_data else "no data given")
                )
            else:
                parts.append(
                    f"top {len(unit.examples)} dataset examples, best first; the outline marks "
                    "where the unit peaks"
                )
            if unit.health in ("dead", "near-dead"):
                ties = "these examples are" if unit.fired == 0 else "most of these examples are"
                parts.append(
                    f"<b>{unit.health.upper()}</b>: fired on {unit.fired} of {unit.seen} "
                    f"images; {ties} ties at zero and say nothing about the unit"
                )
            if unit.classes:
                fed = ", ".join(f"{esc(name)} ({w:+.2f})" for _, name, w in unit.classes)
                parts.append(f"feeds most: {fed}")
            self.page_info.value = "<br>".join(parts)
            if self.shown in self.grid_view.order and self.grid_view.show_page_of(self.shown):
                self._draw_grid()  # a unit chosen elsewhere: the grid turns to it
            elif self.shown in self.grid_view.page_units():
                self.grid.set_highlight(self.tile_box(self.shown))
            return unit

    # --- events ----------------------------------------------------------------------

    def _on_click(self, x: float, y: float) -> None:
        atlas = self.atlas
        if atlas is None:
            return
        c = self.grid_view.unit_at(x, y)
        if c is None:
            return
        if self.session.layer != atlas.layer:
            self.session.layer = atlas.layer
        if self.session.channel == c:
            self.show_unit(c)
        else:
            self.session.channel = c  # the observer shows the page

    def _on_output(self, change: dict) -> None:
        """Another output of a several-output model: its units' classes are that
        output's (the store is the same; a running atlas finishes with the old one)."""
        if self.runner.running and self._job == "run":
            self._then = "open"  # opened again with the new output's classes after the run
        else:
            self.reload()

    def _on_channel(self, change: dict) -> None:
        c = change["new"]
        if c is not None and self.atlas is not None and c in self.atlas.units:
            if self.session.layer in (None, self.atlas.layer):
                self.show_unit(c)

    def _on_layer(self, change: dict) -> None:
        if self.runner.running and self._job == "run":
            self.messages.show_note(
                "the layer changed while the atlas computes: press Stop, then the atlas of "
                "the new layer opens"
            )
            self._then = "open"
            return
        if self.atlas is None or self.layer != self.atlas.layer or self.runner.running:
            self.shown = None
            self.page.clear()
            self.page_info.value = NO_UNIT
            self.reload()

    # --- runs ------------------------------------------------------------------------

    def run(self, wait: bool = False, timeout: float | None = None) -> None:
        """Compute the units the store does not hold yet, in the background (while the
        store is still opening, the run starts when it is open)."""
        with self._lock:
            if self.runner.closed:
                raise CnnvizError("this panel is closed: make a new UnitAtlas")
            if self.runner.running:
                if self._job == "run":
                    raise CnnvizError("the atlas is computing already: press Stop first")
                self._then = "run"
            else:
                self._start_run()
        if wait:
            self.wait(timeout)

    def _start_run(self) -> None:
        layer, settings = self.layer, self._settings()
        self.messages.clear()
        self.run_bar.start(1, "opening the store…")
        job = atlas_job(self.session.loaded, layer, self.data, backend=self.backend, **settings)
        self._job = "run"
        self.runner.run_job(
            job,
            take=lambda p: self._take(p, job),
            paint=self._paint,
            finish=self._ran,
            after=self._after,
            unit=("unit", "units"),
        )

    def _take(self, p: JobProgress, job: Job) -> None:
        """The run's thread, every progress: take in the opened atlas, the new units and
        the live images (the painter draws them, at most ~10 times a second)."""
        item = p.item
        if not isinstance(item, AtlasProgress):
            return
        if item.phase == "open":  # the layer or the steps may have changed: show it anew
            self._take_atlas(item.atlas, lambda: job.stopped)
            with self._lock:
                self._status = "compiling the step… (once per batch size)"
            return
        with self._lock:
            for c in item.new:
                if item.phase == "visualization":
                    image = self.atlas.image(c)
                    if image is not None:
                        self._tiles[c] = self._tile(image)
                        self.live.pop(c, None)
            for c, image in item.live.items():
                if c not in self._tiles:
                    self.live[c] = image
            n = len(self.atlas.units)
            seconds = duration(p.seconds)
            if item.phase == "examples":
                where = f"{item.seen}" + (f" of {item.images}" if item.images else "")
                self._status = f"dataset examples: {where} images ranked · {seconds}"
            elif item.phase == "visualization":
                step = f" · step {item.step}" if item.step > 0 else ""
                self._status = f"visualizations: {len(self._tiles)} of {n} units{step} · {seconds}"

    def _paint(self, p: JobProgress, rate: float, text: bool) -> None:
        """The painter thread (under the lock): the grid as it is now, and the status."""
        if self.atlas is None or self._job != "run":
            return
        self.run_bar.status.value = esc(self._status)
        self.run_bar.progress.max = max(1, len(self.atlas.units))
        self.run_bar.progress.value = min(len(self._tiles), self.run_bar.progress.max)
        self._draw_grid()
        item = p.item
        if isinstance(item, AtlasProgress) and item.new and self.shown in item.new:
            self.show_unit(self.shown)

    def _ran(self, result: Atlas | None, error: BaseException | None) -> None:
        """A run's end (worker thread, under the lock)."""
        if result is not None:
            self.atlas = result
        if self.atlas is None:  # the opening failed
            self.run_bar.end(0, "danger", "failed: see the message")
            if error is not None:
                self.messages.show_error(error)
            return
        n, done = len(self.atlas.units), len(self.atlas.done())
        stopped = result is not None and result.stopped
        if error is not None:
            self.messages.show_error(error)
            self.run_bar.end(done, "danger", esc(f"{done} of {n} units done; failed"))
        elif stopped and done < n:
            self.run_bar.end(done, "warning", esc(f"{done} of {n} units done (stopped)"))
        else:
            self.run_bar.end(done, "success", esc(f"{done} of {n} units done"))
        self._draw_grid()
        if self.shown is not None and self.shown in self.atlas.units:
            self.show_unit(self.shown)

    def _after(self) -> None:
        """After a job (worker thread): what was asked for meanwhile."""
        then, self._then = self._then, ""
        if then == "run":
            self.guarded(self.run)()
        elif then == "open" or (self.atlas is not None and self.layer != self.atlas.layer):
            self.guarded(self.reload)()

    def stop(self) -> None:
        """End the run after the step in progress; finished units stay stored."""
        self._then = ""
        self.runner.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the opening or the run to end (and for what was asked meanwhile);
        ``True`` when nothing is going any more."""
        return self.runner.wait(timeout)

    def close(self) -> None:
        """Stop the run (if any), then close the panel."""
        self._then = ""
        self.runner.close()
        self.grid.canvas.close()
        self.page.canvas.close()
        super().close()
