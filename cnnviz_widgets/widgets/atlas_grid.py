"""The unit atlas's grid: every unit as a tile of fixed size with its number, a page of
:data:`PAGE_SIZE` units at a time, in the order of a score, with a box to find a unit by
its number.

A layer of 512–2,048 units stays legible: tiles never shrink (a page is at most
:data:`COLUMNS` × :data:`ROWS` tiles of :data:`TILE` pixels), numbers are drawn on every
tile, and the pages are turned with ◀ ▶.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw

from ..errors import CnnvizError
from .canvas import PixelCanvas
from .pictures import BACKGROUND, font

TILE = 56  # pixels of a unit's tile
GAP = 2
COLUMNS = 10  # tiles per row at most
ROWS = 10  # rows per page at most
PAGE_SIZE = COLUMNS * ROWS
EMPTY = (64, 64, 64, 255)  # a tile not computed yet

# how the units can be ordered: (label, key); a score is highest first
SORTS = [
    ("unit number", "unit"),
    ("visualization value, highest first", "value"),
    ("best example's score, highest first", "example"),
]


def stored_scores(atlas: Any, key: str) -> tuple[dict[int, float], str | None]:
    """``({unit: score}, note)`` of an atlas's stored units: the visualization's value
    (``"value"``) or the best dataset example's score (``"example"``); the note says why
    there is none."""
    if atlas is None:
        return {}, None
    out: dict[int, float] = {}
    store = atlas.vis_store if key == "value" else atlas.examples_store
    if store is None and key == "example" and atlas.examples_in_memory is not None:
        top = atlas.examples_in_memory
        return {int(u): float(np.max(top.scores[i])) for i, u in enumerate(top.units)}, None
    if store is None:
        why = "press Run first" if atlas.has_data else "this atlas has no data"
        return out, f"no dataset examples to order by: {why}"
    for c in store.done() & set(atlas.units):
        got = store.load(c)
        if got is None:
            continue
        if key == "value" and got["meta"].get("value") is not None:
            out[c] = float(got["meta"]["value"])
        elif key == "example" and len(got.get("scores", ())):
            out[c] = float(np.max(got["scores"]))
    return out, None if out else "no unit is computed yet: press Run, then order them"


class AtlasGrid:
    """The grid of a unit atlas, with its page, sort and find controls.

    Args:
        redraw: called (no arguments) when the page or the order changed.
        find: called with the unit number typed in the find box (an ``int``), or with the
            text when it is not a whole number (the panel answers it).
        scores: ``scores(key)`` gives ``{unit: score}`` for a sort key (units without a
            score are left out and go last).

    Attributes:
        canvas: the :class:`PixelCanvas` (CSS class ``cnnviz-atlas-grid``).
        box: the grid and its controls, to put in a layout.
        units: the layer's units; ``order``: as shown; ``page``: the page shown (from 0).
    """

    def __init__(
        self,
        redraw: Callable[[], None],
        find: Callable[[int | str], None],
        scores: Callable[[str], dict[int, float]],
    ) -> None:
        self._redraw, self._find, self._scores = redraw, find, scores
        self.units: list[int] = []
        self.order: list[int] = []
        self.page = 0
        self.canvas = PixelCanvas("cnnviz-atlas-grid")
        self.prev_button = widgets.Button(icon="chevron-left", tooltip="previous page")
        self.next_button = widgets.Button(icon="chevron-right", tooltip="next page")
        for button in (self.prev_button, self.next_button):
            button.layout = widgets.Layout(width="36px")
        self.page_label = widgets.HTML()
        self.page_label.add_class("cnnviz-atlas-page")
        self.find_box = widgets.Text(
            placeholder="a unit number",
            description="find",
            continuous_update=False,
            layout=widgets.Layout(width="200px"),
        )
        self.find_box.add_class("cnnviz-atlas-find")
        self.sort = widgets.Dropdown(
            options=SORTS, value="unit", description="order", layout=widgets.Layout(width="320px")
        )
        self.sort.add_class("cnnviz-atlas-sort")
        self.prev_button.on_click(lambda _: self.turn(-1))
        self.next_button.on_click(lambda _: self.turn(+1))
        self.find_box.observe(self._on_find, "value")
        self.sort.observe(lambda _: self.sort_by(self.sort.value), "value")
        self.pager = widgets.HBox([self.prev_button, self.page_label, self.next_button])
        self.pager.add_class("cnnviz-atlas-pager")
        controls = widgets.HBox([self.pager, self.find_box, self.sort])
        controls.add_class("cnnviz-atlas-nav")
        canvas_box = widgets.Box([self.canvas.canvas])
        canvas_box.add_class("cnnviz-canvas-box")
        self.box = widgets.VBox([controls, canvas_box])
        self.box.add_class("cnnviz-atlas-grid-box")

    # --- what is shown -------------------------------------------------------------------

    def set_units(self, units: list[int]) -> None:
        """A new layer's units: in the current sort's order, from the first page."""
        self.units = [int(u) for u in units]
        self.page = 0
        self._order()

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.order) / PAGE_SIZE))

    def page_units(self) -> list[int]:
        """The units on the page shown, in order."""
        return self.order[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]

    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the page shown: a small layer is a square, a large one
        :data:`COLUMNS` wide."""
        n = max(1, min(len(self.order), PAGE_SIZE))
        columns = min(COLUMNS, max(1, math.ceil(math.sqrt(n))))
        return max(1, math.ceil(len(self.page_units()) / columns)), columns

    def tile_box(self, unit: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of a unit's tile in the grid image (the unit must be on the
        page shown: :meth:`show_page_of` turns to it)."""
        shown = self.page_units()
        if int(unit) not in shown:
            raise CnnvizError(f"unit {unit} is not on the page shown: turn to it first")
        _, columns = self.shape()
        r, c = divmod(shown.index(int(unit)), columns)
        return GAP + c * (TILE + GAP), GAP + r * (TILE + GAP), TILE, TILE

    def unit_at(self, x: float, y: float) -> int | None:
        """The unit under canvas pixel ``(x, y)``, or ``None`` (a gap, past the end)."""
        ix, iy = self.canvas.to_image_coordinates(x, y)
        _, columns = self.shape()
        c, r = int((ix - GAP) // (TILE + GAP)), int((iy - GAP) // (TILE + GAP))
        inside = (ix - GAP) % (TILE + GAP) < TILE and (iy - GAP) % (TILE + GAP) < TILE
        index = r * columns + c
        shown = self.page_units()
        if not inside or not (0 <= c < columns and 0 <= index < len(shown)) or r < 0:
            return None
        return shown[index]

    def draw(
        self,
        tiles: dict[int, np.ndarray],
        shown: int | None,
        marks: dict[int, str] | None = None,
    ) -> None:
        """Draw the page: each unit's tile (``tiles``; an empty grey tile when missing)
        with its number and its mark (``marks``: ``"DEAD"``, ``"NEAR-DEAD"``), the unit
        ``shown`` outlined."""
        marks = marks or {}
        rows, columns = self.shape()
        size = (GAP + columns * (TILE + GAP), GAP + rows * (TILE + GAP))
        picture = Image.new("RGBA", size, BACKGROUND)
        draw = ImageDraw.Draw(picture, "RGBA")
        face = font(12)
        for unit in self.page_units():
            x, y, w, h = self.tile_box(unit)
            tile = tiles.get(unit)
            if tile is None:
                draw.rectangle((x, y, x + w - 1, y + h - 1), fill=EMPTY)
                draw.text(
                    (x + w / 2, y + h / 2), str(unit), fill=(200, 200, 200, 255), font=face,
                    anchor="mm",
                )  # fmt: skip
                continue
            picture.paste(Image.fromarray(tile, "RGBA"), (x, y))
            # the number on a dark band in the tile's corner, legible on any picture
            width = draw.textlength(str(unit), font=face)
            draw.rectangle((x, y + h - 15, x + width + 5, y + h - 1), fill=(0, 0, 0, 170))
            draw.text((x + 3, y + h - 8), str(unit), fill=(255, 255, 255, 255), font=face,
                      anchor="lm")  # fmt: skip
            if unit in marks:
                draw.text((x + 3, y + 2), marks[unit], fill=(255, 90, 90, 255), font=font(11))
        highlight = self.tile_box(shown) if shown in self.page_units() else None
        self.canvas.show(np.asarray(picture, np.uint8), highlight=highlight)
        self._label()

    def _label(self) -> None:
        shown = self.page_units()
        n = len(self.order)
        order = dict((k, v) for v, k in SORTS)[self.sort.value]
        if self.pages == 1:
            self.page_label.value = f"{n} units · {order}"
        else:
            self.page_label.value = (
                f"page {self.page + 1} of {self.pages} · {len(shown)} of {n} units · {order}"
            )
        many = self.pages > 1
        self.prev_button.disabled = not many or self.page == 0
        self.next_button.disabled = not many or self.page >= self.pages - 1

    # --- navigation ----------------------------------------------------------------------

    def turn(self, step: int) -> None:
        """Turn ``step`` pages (negative: back), within the pages there are."""
        page = min(max(self.page + int(step), 0), self.pages - 1)
        if page != self.page:
            self.page = page
            self._redraw()

    def show_page_of(self, unit: int) -> bool:
        """Turn to the page holding ``unit``; ``True`` when the page changed."""
        if int(unit) not in self.order:
            raise CnnvizError(f"unit {unit} is not in this atlas")
        page = self.order.index(int(unit)) // PAGE_SIZE
        changed, self.page = page != self.page, page
        return changed

    def sort_by(self, key: str) -> None:
        """Order the units by ``key`` (``"unit"``, ``"value"``, ``"example"``) and show the
        first page."""
        if self.sort.value != key:
            self.sort.value = key  # the observer comes back here
            return
        self.page = 0
        self._order()
        self._redraw()

    def _order(self) -> None:
        key = self.sort.value
        if key == "unit":
            self.order = sorted(self.units)
            return
        scores = self._scores(key)
        # highest first; units without a score (not computed) after, by number
        self.order = sorted(self.units, key=lambda u: (u not in scores, -scores.get(u, 0.0), u))

    def _on_find(self, change: dict) -> None:
        text = str(change["new"]).strip()
        if not text:
            return
        try:
            wanted: int | str = int(text)
        except ValueError:
            wanted = text
        self.find_box.value = ""  # the same number again finds it again
        self._find(wanted)
