"""UnitAtlas: every unit of the session's layer as a grid that fills in while it computes;
click a unit for its page (visualization, dataset examples with the activation outlined,
weights, the classes it feeds).

The work is :func:`cnnviz_widgets.atlas` in a background thread (the ClassOptimizer's way:
a daemon thread, Stop through a ``threading.Event``, redraws at most ~10 times a second),
and everything finished goes to the atlas's store: reopening the panel (or a restarted
kernel) paints the stored units at once and computes only the missing ones.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw

from ..engine import atlas as run_atlas
from ..engine import open_atlas
from ..engine.atlas import Atlas, AtlasProgress, AtlasUnit
from ..engine.internals import output_shape
from ..engine.introspect import get_layer
from ..engine.scoring import default_cam_layer
from ..errors import CnnvizError
from .canvas import HIGHLIGHT, PixelCanvas
from .common import Panel, esc, style_sheet
from .pictures import BACKGROUND, font, opaque_rgba

__all__ = ["UnitAtlas"]

TILE = 56  # pixels of a unit's tile in the grid
GAP = 2
COLUMNS = 16  # tiles per row at most
REDRAW_INTERVAL = 0.1  # seconds between grid redraws while computing (~10 per second)
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


def unit_page(unit: AtlasUnit, label_names: list[str] | None = None) -> np.ndarray:
    """A unit's page as one RGBA picture: its visualization and kernel, then its dataset
    examples with the cell where the unit peaks outlined, captioned with score and label."""
    face = font(12)
    examples = unit.examples if unit.examples is not None else np.zeros((0, 1, 1, 3), np.uint8)
    per_row = 6
    rows = max(1, math.ceil(len(examples) / per_row)) if len(examples) else 0
    width = max(PAGE_VIS + 120, per_row * (PAGE_EXAMPLE + 6) + 6)
    height = 10 + PAGE_VIS + 22 + rows * (PAGE_EXAMPLE + 22) + 6
    page = Image.new("RGBA", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(page)
    light = (232, 232, 232, 255)
    if unit.image is not None:
        page.paste(_fit(unit.image, PAGE_VIS), (6, 6))
        draw.text((6, PAGE_VIS + 10), "visualization", fill=light, font=face)
    else:
        draw.text((10, 40), "not computed yet", fill=light, font=face)
    if unit.kernel is not None:
        page.paste(_fit(unit.kernel, 96), (PAGE_VIS + 16, 6))
        draw.text((PAGE_VIS + 16, 106), "weights", fill=light, font=face)
    names = unit.label_names or label_names
    top = PAGE_VIS + 30
    for j, example in enumerate(examples):
        r, c = divmod(j, per_row)
        x, y = 6 + c * (PAGE_EXAMPLE + 6), top + r * (PAGE_EXAMPLE + 22)
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
        caption = f"{unit.example_scores[j]:.3g}"
        label = int(unit.example_labels[j]) if unit.example_labels is not None else -1
        if label >= 0:
            name = names[label] if names and label < len(names) else str(label)
            caption += f" {name}"
        while len(caption) > 4 and draw.textlength(caption, font=face) > PAGE_EXAMPLE:
            caption = caption[:-2] + "…"
        draw.text((x, y + PAGE_EXAMPLE + 3), caption, fill=light, font=face)
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
    spatial output).  Run computes what the store does not hold yet; Stop ends it after the
    step in progress (finished units stay stored, the grid keeps the last images).  A click
    on a unit shows its page and sets ``session.channel``, so the other panels follow; a
    channel selected elsewhere shows its page here.

    Attributes:
        atlas: the :class:`~cnnviz_widgets.engine.atlas.Atlas` shown.
        grid: the grid's canvas (CSS class ``cnnviz-atlas-grid``); ``page`` the unit page's
            (``cnnviz-atlas-unit``).
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
        preset: str = "lucid",
        k: int = 9,
        backend: str = "local",
        key: str | None = None,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-unit-atlas", **load_kwargs)
        if data is None and self.session.loaded.name.startswith("shapes"):
            from ..engine.datasources import ShapesStream

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
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_draw = 0.0
        self._closed = False
        self._tiles: dict[int, np.ndarray] = {}

        self.title = widgets.HTML()
        self.title.add_class("cnnviz-title")
        self.steps = widgets.BoundedIntText(
            value=steps, min=1, max=4096, description="steps", layout=widgets.Layout(width="150px")
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.progress = widgets.IntProgress(value=0, min=0, max=1)
        self.status = widgets.HTML()
        self.status.add_class("cnnviz-muted")
        self.grid = PixelCanvas("cnnviz-atlas-grid")
        self.page = PixelCanvas("cnnviz-atlas-unit")
        self.page_info = widgets.HTML()
        self.run_button.on_click(self.guarded(lambda _: self.run()))
        self.stop_button.on_click(self.guarded(lambda _: self.stop()))
        self.grid.canvas.on_mouse_down(self.guarded(self._on_click))
        controls = widgets.HBox(
            [self.steps, self.run_button, self.stop_button, self.progress, self.status]
        )
        controls.add_class("cnnviz-controls")
        grid_box = widgets.Box([self.grid.canvas])
        grid_box.add_class("cnnviz-canvas-box")
        detail = widgets.VBox([self.page.canvas, self.page_info])
        detail.add_class("cnnviz-detail-box")
        self.children = [
            style_sheet(),
            style_sheet("unit_atlas"),
            self.title,
            controls,
            self.messages,
            widgets.HBox([grid_box, detail]),
        ]
        self.observe_session(self._on_layer, ["layer"])
        self.observe_session(self._on_channel, ["channel"])
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
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _settings(self) -> dict:
        return dict(self.options, steps=int(self.steps.value))

    def reload(self) -> None:
        """Open the layer's atlas as stored (nothing is computed) and draw it."""
        with self._lock:
            self.atlas = open_atlas(self.session.loaded, self.layer, self.data, **self._settings())
            self.live = {}
            self._tiles = {}
            done = self.atlas.vis_store.done()
            for c in self.atlas.units:
                if c in done:
                    self._tiles[c] = self._tile(self.atlas.image(c))
            n = len(self.atlas.units)
            self.title.value = (
                f"Unit atlas of <code>{esc(self.atlas.layer)}</code> "
                f'<span class="cnnviz-sub">{n} units · visualization, dataset examples, '
                "weights</span>"
            )
            self._status_text(f"{len(self.atlas.done())} of {n} units stored")
            for note in self.atlas.notes:
                self.messages.show_note(esc(note))
            self._draw_grid()
            channel = self.session.channel
            if channel is not None and channel in self.atlas.units:
                self.show_unit(channel)

    def _status_text(self, text: str) -> None:
        self.status.value = esc(text)
        with self.progress.hold_sync():
            self.progress.max = max(1, len(self.atlas.units) if self.atlas else 1)
            self.progress.value = len(self.atlas.done()) if self.atlas else 0

    def _tile(self, image: np.ndarray) -> np.ndarray:
        return np.asarray(_fit(image, TILE), np.uint8)

    def _grid_shape(self) -> tuple[int, int]:
        n = len(self.atlas.units)
        columns = min(COLUMNS, max(1, math.ceil(math.sqrt(n))))
        return max(1, math.ceil(n / columns)), columns

    def tile_box(self, channel: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of a unit's tile in the grid image."""
        position = self.atlas.units.index(int(channel))
        _, columns = self._grid_shape()
        r, c = divmod(position, columns)
        return GAP + c * (TILE + GAP), GAP + r * (TILE + GAP), TILE, TILE

    def _draw_grid(self) -> None:
        rows, columns = self._grid_shape()
        picture = Image.new(
            "RGBA", (GAP + columns * (TILE + GAP), GAP + rows * (TILE + GAP)), BACKGROUND
        )
        draw = ImageDraw.Draw(picture)
        face = font(11)
        for c in self.atlas.units:
            x, y, w, h = self.tile_box(c)
            tile = self._tiles.get(c)
            if tile is None and c in self.live:
                tile = self._tile(self.live[c])
            if tile is None:
                draw.rectangle((x, y, x + w - 1, y + h - 1), fill=(64, 64, 64, 255))
                draw.text(
                    (x + w / 2, y + h / 2),
                    str(c),
                    fill=(170, 170, 170, 255),
                    font=face,
                    anchor="mm",
                )
            else:
                picture.paste(Image.fromarray(tile, "RGBA"), (x, y))
        highlight = self.tile_box(self.shown) if self.shown in self.atlas.units else None
        self.grid.show(np.asarray(picture, np.uint8), highlight=highlight)
        self.draw_count += 1

    def show_unit(self, channel: int) -> AtlasUnit:
        """Show a unit's page: visualization, weights, dataset examples, classes fed."""
        with self._lock:
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
            if unit.classes:
                fed = ", ".join(f"{esc(name)} ({w:+.2f})" for _, name, w in unit.classes)
                parts.append(f"feeds most: {fed}")
            self.page_info.value = "<br>".join(parts)
            if self.shown in self.atlas.units:
                self.grid.set_highlight(self.tile_box(self.shown))
            return unit

    # --- events ----------------------------------------------------------------------

    def _on_click(self, x: float, y: float) -> None:
        ix, iy = self.grid.to_image_coordinates(x, y)
        for c in self.atlas.units:
            bx, by, bw, bh = self.tile_box(c)
            if bx <= ix < bx + bw and by <= iy < by + bh:
                if self.session.layer != self.atlas.layer:
                    self.session.layer = self.atlas.layer
                if self.session.channel == c:
                    self.show_unit(c)
                else:
                    self.session.channel = c  # the observer shows the page
                return

    def _on_channel(self, change: dict) -> None:
        c = change["new"]
        if c is not None and self.atlas is not None and c in self.atlas.units:
            if self.session.layer in (None, self.atlas.layer):
                self.show_unit(c)

    def _on_layer(self, change: dict) -> None:
        if self.running:
            self.messages.show_note(
                "the layer changed while the atlas computes: press Stop, then the atlas of "
                "the new layer opens"
            )
            return
        if self.atlas is None or self.layer != self.atlas.layer:
            self.shown = None
            self.page.clear()
            self.page_info.value = ""
            self.reload()

    # --- runs ------------------------------------------------------------------------

    def run(self, wait: bool = False, timeout: float | None = None) -> None:
        """Compute the units the store does not hold yet, in a background thread."""
        with self._lock:
            if self._closed:
                raise CnnvizError("this panel is closed: make a new UnitAtlas")
            if self.running:
                raise CnnvizError("the atlas is computing already: press Stop first")
            self.reload()  # the layer or the steps may have changed since it was drawn
            self._stop = threading.Event()
            self.messages.clear()
            self.run_button.disabled = True
            self.stop_button.disabled = False
            self._status_text("compiling the step… (once per batch size)")
            thread = threading.Thread(
                target=self._work,
                args=(self.layer, self._settings(), self._stop),
                name="cnnviz-unit-atlas",
                daemon=True,
            )
            self._thread = thread
            thread.start()
        if wait:
            self.wait(timeout)

    def stop(self) -> None:
        """End the run after the step in progress; finished units stay stored."""
        if self.running:
            self._stop.set()
            self.stop_button.disabled = True
            self.status.value = "stopping after this step…"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; ``True`` when no run is going any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def _work(self, layer: str, settings: dict, stop: threading.Event) -> None:
        error = None
        try:
            result = run_atlas(
                self.session.loaded,
                layer,
                self.data,
                backend=self.backend,
                progress=self._on_progress,
                stop=stop,
                **settings,
            )
            with self._lock:
                if not self._closed:
                    self.atlas = result
        except Exception as err:  # the panel and the kernel go on
            error = err
        with self._lock:
            self.run_button.disabled = False
            self.stop_button.disabled = True
            if self._closed:
                return
            if error is not None:
                self.messages.show_error(error)
            n = len(self.atlas.units)
            done = len(self.atlas.done())
            stopped = " (stopped)" if stop.is_set() and done < n else ""
            self._status_text(f"{done} of {n} units done{stopped}")
            self._draw_grid()
            if self.shown is not None:
                self.show_unit(self.shown)

    def _on_progress(self, p: AtlasProgress) -> None:
        """The run's thread: new units and live images in; redraw at most ~10 times a
        second (always when units are finished)."""
        with self._lock:
            if self._closed:
                self._stop.set()
                return
            for c in p.new:
                if p.phase == "visualization":
                    image = self.atlas.image(c)
                    if image is not None:
                        self._tiles[c] = self._tile(image)
                        self.live.pop(c, None)
            for c, image in p.live.items():
                if c not in self._tiles:
                    self.live[c] = image
            now = time.monotonic()
            if p.new or p.final or now - self._last_draw >= REDRAW_INTERVAL:
                self._last_draw = now
                if p.phase == "examples":
                    where = f"{p.seen}" + (f" of {p.images}" if p.images else "")
                    text = f"dataset examples: {where} images ranked"
                else:
                    text = f"visualizations: {len(self._tiles)} of {len(self.atlas.units)} units"
                self.status.value = esc(text)
                self.progress.value = len(self._tiles)
                self._draw_grid()
                if p.new and self.shown in p.new:
                    self.show_unit(self.shown)

    def close(self) -> None:
        """Stop the run (if any), then close the panel."""
        with self._lock:
            self._closed = True
            self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.grid.canvas.close()
        self.page.canvas.close()
        super().close()
