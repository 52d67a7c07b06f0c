"""FilterGallery: every filter of a convolution layer as one crisp montage on a canvas."""

from __future__ import annotations

import base64
import io
import math
import os
from collections import OrderedDict
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image, ImageDraw

from ..engine import (
    Montage,
    filter_montage,
    filter_values,
    first_conv_per_block,
    get_layer,
    kernel_array,
)
from ..engine.filters import strongest_filters
from ..errors import CnnvizError, NoKernelError
from .canvas import PixelCanvas, zoom_nearest
from .common import Panel, esc, style_sheet
from .pictures import BACKGROUND, fit_zoom, font, png_bytes

VIEW_OPTIONS = [
    ("auto (rgb for 3 inputs, else mean)", "auto"),
    ("one input channel", "channel"),
    ("rgb (3 input channels)", "rgb"),
    ("mean over input channels", "mean"),
    ("max |w| over input channels", "maxabs"),
]
NORMALIZATION_OPTIONS = [
    ("each filter to its own range", "filter"),
    ("one range for the layer", "layer"),
    ("symmetric around 0", "symmetric"),
]
CMAP_OPTIONS = [
    ("auto (gray / RdBu_r)", ""),
    ("gray", "gray"),
    ("viridis", "viridis"),
    ("magma", "magma"),
    ("RdBu_r (diverging)", "RdBu_r"),
    ("coolwarm (diverging)", "coolwarm"),
    ("PiYG (diverging)", "PiYG"),
]
ZOOM_OPTIONS = [("auto", 0), ("1×", 1), ("2×", 2), ("3×", 3), ("4×", 4), ("6×", 6), ("8×", 8)]
PAGE_SIZES = [64, 128, 256, 512, 1024, 2048]
AUTO_ZOOM_TARGET = 480  # pixels on the longer side the auto zoom aims for
DETAIL_TARGET = 168  # pixels of the enlarged filter
OVERVIEW_TILE = 112  # pixels of a filter in the overview
OVERVIEW_COLUMNS = 6
MAX_TABLE = 16  # larger kernels show only their top-left corner as numbers


def auto_zoom(shape: tuple[int, ...], target: int = AUTO_ZOOM_TARGET) -> int:
    """The whole-pixel zoom that brings an image's longer side near ``target`` (1..8)."""
    return fit_zoom(shape, target)


def _showable(fig: Any) -> Any:
    """Let a pyplot-free Figure show itself in a notebook (``_repr_png_``)."""

    def repr_png() -> bytes:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()

    fig._repr_png_ = repr_png
    return fig


def _text_color(rgba: np.ndarray) -> str:
    r, g, b = (float(c) for c in rgba[:3])
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


def _number(v: float) -> str:
    return f"{v:+.3f}" if abs(v) < 10 else f"{v:+.3g}"


def kernel_table(values: np.ndarray, colors: np.ndarray | None = None) -> str:
    """An HTML table of a ``(kh, kw)`` kernel, cells coloured like the picture."""
    kh, kw = values.shape
    rows = []
    for i in range(min(kh, MAX_TABLE)):
        cells = []
        for j in range(min(kw, MAX_TABLE)):
            style = ""
            if colors is not None:
                r, g, b = (int(c) for c in colors[i, j, :3])
                style = f' style="background: rgb({r},{g},{b}); color: {_text_color(colors[i, j])}"'
            cells.append(f"<td{style}>{_number(float(values[i, j]))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if kh > MAX_TABLE or kw > MAX_TABLE:
        note = f'<div class="cnnviz-muted">top-left {MAX_TABLE}×{MAX_TABLE} of {kh}×{kw}</div>'
    return f'<table class="cnnviz-kernel">{"".join(rows)}</table>{note}'


class FilterGallery(Panel):
    """All filters of the selected convolution layer as one montage on a canvas.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model (name,
            path, ``keras.Model``, ``LoadedModel``).
        mode: ``"filters"`` (the montage of ``session.layer``) or ``"overview"`` (the first
            filter of the first convolution of each block, seen through input channel 0, in
            gray: the keras-vis CNN-visualization tutorial's figure).
        page_size: filters per page (large layers are paged).
        **load_kwargs: passed to ``load_model`` when a model is given.

    Clicking a filter sets ``session.channel`` and shows it enlarged with its numbers;
    clicking a layer in the overview selects that layer.  When ``session.layer`` is not a
    convolution the panel says so and lists the layers that have filters.  If the session
    has no layer yet, the gallery selects the first convolution.

    Attributes:
        montage: the :class:`~cnnviz_widgets.Montage` on the canvas (filters mode) or
            ``None``.
        pixels: the montage's :class:`PixelCanvas` (``pixels.canvas`` has the CSS class
            ``cnnviz-gallery-canvas``); ``detail_pixels`` shows the enlarged filter.
        layer_select, mode_toggle, view, in_channel, normalization, cmap, zoom, sort,
            page_size, prev_page, next_page, save_png: the controls.
    """

    def __init__(
        self,
        model_or_session: Any,
        *,
        mode: str = "filters",
        page_size: int = 512,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-filter-gallery", **load_kwargs)
        if mode not in ("filters", "overview"):
            raise CnnvizError(f"unknown mode {mode!r}: use 'filters' or 'overview'")
        if page_size not in PAGE_SIZES:
            raise CnnvizError(f"page_size {page_size} is not offered: use one of {PAGE_SIZES}")
        session = self.session
        self.montage: Montage | None = None
        self.page = 0
        self._cache: OrderedDict[tuple, Montage] = OrderedDict()
        self._orders: dict[str, np.ndarray] = {}
        self._kernel_shapes: dict[str, tuple[int, int, int, int]] = {}
        self._overview_boxes: list[tuple[int, int, int, int, str]] = []
        self._updating = False
        self.last_draw_seconds: float | None = None

        conv_rows = [r for r in session.table if r.has_kernel]
        self.title = widgets.HTML()
        self.title.add_class("cnnviz-title")
        self.mode_toggle = widgets.ToggleButtons(
            options=[("All filters", "filters"), ("Overview", "overview")],
            tooltips=["every filter of one layer", "the first filter of each block"],
            value=mode,
            style={"button_width": "110px"},
        )
        self.mode_toggle.add_class("cnnviz-mode")
        self.layer_select = widgets.Dropdown(
            options=[
                (f"{r.path} · {r.class_name} · {self._filter_shape(r.path)}", r.path)
                for r in conv_rows
            ],
            value=None,
            description="Layer",
            layout=widgets.Layout(width="380px"),
            style={"description_width": "52px"},
        )
        self.layer_select.add_class("cnnviz-gallery-layer")
        small = {"description_width": "initial"}
        self.view = widgets.Dropdown(
            options=VIEW_OPTIONS,
            value="auto",
            description="View",
            layout=widgets.Layout(width="300px"),
            style={"description_width": "52px"},
        )
        self.in_channel = widgets.BoundedIntText(
            value=0,
            min=0,
            max=0,
            description="input channel",
            disabled=True,
            layout=widgets.Layout(width="170px"),
            style=small,
        )
        self.normalization = widgets.Dropdown(
            options=NORMALIZATION_OPTIONS,
            value="filter",
            description="Scale",
            layout=widgets.Layout(width="290px"),
            style={"description_width": "52px"},
        )
        self.cmap = widgets.Dropdown(
            options=CMAP_OPTIONS,
            value="",
            description="Colours",
            layout=widgets.Layout(width="250px"),
            style=small,
        )
        self.zoom = widgets.Dropdown(
            options=ZOOM_OPTIONS,
            value=0,
            description="Zoom",
            layout=widgets.Layout(width="140px"),
            style={"description_width": "52px"},
        )
        self.sort = widgets.Checkbox(
            value=False,
            description="strongest first (L2 norm)",
            indent=False,
            layout=widgets.Layout(width="190px"),
        )
        self.page_size = widgets.Dropdown(
            options=[(f"{n} per page", n) for n in PAGE_SIZES],
            value=page_size,
            layout=widgets.Layout(width="130px"),
        )
        self.prev_page = widgets.Button(
            description="◀", tooltip="previous page", layout=widgets.Layout(width="36px")
        )
        self.next_page = widgets.Button(
            description="▶", tooltip="next page", layout=widgets.Layout(width="36px")
        )
        self.page_label = widgets.HTML()
        self.page_label.add_class("cnnviz-muted")
        self.save_png = widgets.Button(
            description="Save PNG",
            icon="download",
            tooltip="write the picture to a PNG file",
            layout=widgets.Layout(width="110px"),
        )
        self.export_status = widgets.HTML()
        self.export_status.add_class("cnnviz-muted")

        self.pixels = PixelCanvas("cnnviz-gallery-canvas")
        self.detail_pixels = PixelCanvas("cnnviz-filter-canvas")
        self.info = widgets.HTML()
        self.info.add_class("cnnviz-muted")
        self.detail_head = widgets.HTML()
        self.detail_numbers = widgets.HTML()
        canvas_box = widgets.Box([self.pixels.canvas])
        canvas_box.add_class("cnnviz-canvas-box")
        self.detail_canvas_box = widgets.Box([self.detail_pixels.canvas])
        self.detail_canvas_box.add_class("cnnviz-canvas-box")
        self.detail = widgets.VBox(
            [self.detail_head, self.detail_canvas_box, self.detail_numbers],
            layout=widgets.Layout(flex="0 1 340px", min_width="300px", padding="0 0 0 14px"),
        )
        self.detail.add_class("cnnviz-detail-box")

        header = widgets.HBox(
            [self.title, self.mode_toggle],
            layout=widgets.Layout(justify_content="space-between", align_items="center"),
        )
        header.add_class("cnnviz-controls")
        self.layer_controls = widgets.HBox([self.layer_select, self.view, self.in_channel])
        self.style_controls = widgets.HBox([self.normalization, self.cmap, self.zoom, self.sort])
        self.paging = widgets.HBox(
            [self.prev_page, self.page_label, self.next_page, self.page_size]
        )
        self.export_row = widgets.HBox([self.save_png, self.export_status])
        for box in (self.layer_controls, self.style_controls, self.paging, self.export_row):
            box.add_class("cnnviz-controls")
        footer = widgets.HBox([self.paging, self.export_row])
        footer.add_class("cnnviz-controls")
        self.body = widgets.HBox(
            [widgets.VBox([canvas_box, self.info]), self.detail],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        self.children = [
            style_sheet(),
            header,
            self.layer_controls,
            self.style_controls,
            self.messages,
            self.body,
            footer,
        ]

        rerender = self.guarded(self._on_control)
        for control in (self.view, self.in_channel, self.normalization, self.cmap, self.sort):
            control.observe(rerender, names="value")
        self.zoom.observe(self.guarded(self._on_zoom), names="value")
        self.page_size.observe(self.guarded(self._on_page_size), names="value")
        self.mode_toggle.observe(self.guarded(self._on_mode), names="value")
        self.layer_select.observe(self.guarded(self._on_layer_select), names="value")
        self.prev_page.on_click(self.guarded(lambda _: self.turn_page(-1)))
        self.next_page.on_click(self.guarded(lambda _: self.turn_page(+1)))
        self.save_png.on_click(self.guarded(self._on_save))
        self.pixels.canvas.on_mouse_down(self.guarded(self._on_click))
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(self._on_session_channel, names=["channel"])

        if session.layer is None and conv_rows and mode == "filters":
            session.layer = conv_rows[0].path  # its observer renders it
        else:
            self.guarded(self._sync_layer_select)()
            self.guarded(self.render)()

    # --- public API -------------------------------------------------------------------

    def render(self) -> None:
        """Redraw the canvas from the session and the controls."""
        self._update_visibility()
        if self.mode_toggle.value == "overview":
            self._render_overview()
        else:
            self._render_filters()

    def turn_page(self, step: int) -> None:
        """Show the next (``+1``) or previous (``-1``) page of filters."""
        pages = self._page_count()
        new = min(max(self.page + step, 0), max(pages - 1, 0))
        if new != self.page:
            self.page = new
            self.render()

    def to_png(self, path: str | os.PathLike | None = None) -> bytes:
        """The picture on the canvas (at its zoom, without the selection outline) as PNG
        bytes; also written to ``path`` when given."""
        if self.pixels.sent is None:
            raise CnnvizError(
                "nothing to export yet: select a convolution layer (the panel lists them)"
            )
        data = png_bytes(self.pixels.sent)
        if path is not None:
            with open(path, "wb") as file:
                file.write(data)
        return data

    def to_figure(self, dpi: int = 100):
        """The picture as a ``matplotlib.figure.Figure`` (no pyplot needed), with a title.

        The figure shows itself as PNG when it is a cell's result, even without pyplot.

        In overview mode: one axes per block, the raw values of
        ``layer.get_weights()[0][:, :, 0, 0]`` in gray (the keras-vis CNN-visualization
        tutorial's figure).
        In filters mode: the montage, with a colour bar for single-channel views.
        """
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure

        if self.mode_toggle.value == "overview":
            paths = first_conv_per_block(self.session.loaded)
            if not paths:
                raise CnnvizError("this model has no convolution layer to show")
            fig = Figure(figsize=(min(2.4 * len(paths), 14), 2.8), dpi=dpi)
            axes = fig.subplots(1, len(paths), squeeze=False)[0]
            for ax, path in zip(axes, paths):
                values = filter_values(self.session.loaded, path, view="channel", channel=0)[0]
                ax.imshow(values, cmap="gray", interpolation="nearest")
                ax.set_title(f"{self.session.table.row(path).index}: {path}", fontsize=9)
                ax.axis("off")
            fig.suptitle(
                f"{self.session.loaded.name}: first filter of each block, input channel 0",
                fontsize=10,
            )
            return _showable(fig)
        montage = self.montage
        if montage is None:
            raise CnnvizError(
                "nothing to export yet: select a convolution layer (the panel lists them)"
            )
        height, width = montage.image.shape[:2]
        scale = max(1.0, 420 / max(height, width))
        fig = Figure(figsize=(width * scale / dpi + 1.4, height * scale / dpi + 0.8), dpi=dpi)
        ax = fig.add_subplot()
        ax.imshow(montage.image, interpolation="nearest")
        ax.set_axis_off()
        first, last = int(montage.order.min()), int(montage.order.max())
        ax.set_title(
            f"{montage.layer}: filters {first}–{last}, view {montage.view}, "
            f"{montage.normalization} scale",
            fontsize=9,
        )
        if montage.cmap is not None:
            low, high = montage.value_range
            mappable = ScalarMappable(Normalize(low, high), cmap=montage.cmap)
            bar = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
            if montage.normalization == "filter":
                bar.set_ticks([low, high], labels=["each filter's min", "max"])
            bar.ax.tick_params(labelsize=8)
        return _showable(fig)

    # --- filters mode -----------------------------------------------------------------

    def _kernel_shape(self, path: str) -> tuple[int, int, int, int]:
        """``(kh, kw, input channels, filters)`` as the engine shows the layer."""
        if path not in self._kernel_shapes:
            layer, _ = get_layer(self.session.loaded, path)
            self._kernel_shapes[path] = tuple(int(d) for d in kernel_array(layer).shape)
        return self._kernel_shapes[path]

    def _filter_shape(self, path: str) -> str:
        kh, kw, n_in, n = self._kernel_shape(path)
        return f"{n} filters {kh}×{kw}×{n_in}"

    def _input_channels(self, path: str) -> int:
        return self._kernel_shape(path)[2]

    def _page_count(self) -> int:
        n = self.session.n_channels() if self._current_conv() else None
        return max(1, math.ceil(n / self.page_size.value)) if n else 1

    def _current_conv(self) -> str | None:
        row = self.session.layer_row
        return row.path if row is not None and row.has_kernel else None

    def _page_filters(self, path: str) -> tuple[Any, int, int, int]:
        """``(filters argument, first, stop, total)`` for the current page."""
        n = self.session.n_channels(path) or 0
        size = self.page_size.value
        self.page = min(self.page, max(0, math.ceil(n / size) - 1))
        start, stop = self.page * size, min(n, (self.page + 1) * size)
        if self.sort.value:
            order = self._norm_order(path)
            return order[start:stop], start, stop, n
        return slice(start, stop), start, stop, n

    def _norm_order(self, path: str) -> np.ndarray:
        """Every filter of the layer, strongest (L2 norm over the whole kernel) first."""
        if path not in self._orders:
            self._orders[path] = strongest_filters(self.session.loaded, path)
        return self._orders[path]

    def _montage(self, path: str, filters: Any) -> Montage:
        key = (
            path,
            self.view.value,
            self.in_channel.value if self.view.value == "channel" else 0,
            self.normalization.value,
            self.cmap.value,
            self.sort.value,
            self.page,
            self.page_size.value,
        )
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        montage = filter_montage(
            self.session.loaded,
            path,
            view=self.view.value,
            channel=self.in_channel.value,
            normalization=self.normalization.value,
            cmap=self.cmap.value or None,
            filters=filters,
        )
        self._cache[key] = montage
        while len(self._cache) > 12:
            self._cache.popitem(last=False)
        return montage

    def _render_filters(self) -> None:
        path = self.session.layer
        self.title.value = "Filters"
        if path is None or self._current_conv() is None:
            self._show_nothing(path)
            return
        self.title.value = f'Filters <span class="cnnviz-sub">of {esc(path)}</span>'
        n_in = self._input_channels(path)
        self.in_channel.max = max(0, n_in - 1)
        self.in_channel.disabled = self.view.value != "channel"
        filters, start, stop, n = self._page_filters(path)
        try:
            montage = self._montage(path, filters)
        except CnnvizError:
            self._clear_pictures()
            raise
        self.montage = montage
        if self.messages.kind == "note":
            self.messages.clear()
        zoom = self.zoom.value or auto_zoom(montage.image.shape)
        self.pixels.show(montage.image, zoom, self._highlight_box())
        pages = self._page_count()
        self.page_label.value = f"filters {start}–{stop - 1} of {n}" + (
            f" · page {self.page + 1}/{pages}"
        )
        self.prev_page.disabled = self.page == 0
        self.next_page.disabled = self.page >= pages - 1
        self.paging.layout.display = None if pages > 1 else "none"
        low, high = montage.value_range
        scale = {
            "filter": "each filter scaled to its own range",
            "layer": "one scale for the layer",
            "symmetric": "0 in the middle of the colours",
        }[montage.normalization]
        self.info.value = (
            f"{len(montage.order)} filters · view <b>{esc(montage.view)}</b>"
            + (f" (input channel {self.in_channel.value})" if montage.view == "channel" else "")
            + f" · {scale} · values {low:.3g} … {high:.3g}"
            + (" · strongest first" if self.sort.value else "")
            + "<br>Click a filter to enlarge it and read its numbers."
        )
        self._show_detail()

    def _highlight_box(self) -> tuple[int, int, int, int] | None:
        channel = self.session.channel
        if self.montage is None or channel is None:
            return None
        positions = np.flatnonzero(np.asarray(self.montage.order) == channel)
        return self.montage.tile_box(int(positions[0])) if positions.size else None

    def _show_detail(self) -> None:
        channel = self.session.channel
        montage = self.montage
        path = self._current_conv()
        if channel is None or montage is None or path is None:
            self.detail_head.value = (
                '<div class="cnnviz-section">Selected filter</div>'
                '<div class="cnnviz-muted">Click a filter in the montage.</div>'
            )
            self.detail_numbers.value = ""
            self.detail_pixels.clear()
            self.detail_canvas_box.layout.display = "none"
            return
        loaded = self.session.loaded
        options = {
            "view": montage.view,
            "channel": self.in_channel.value,
            "normalization": montage.normalization,
            "cmap": self.cmap.value or None,
            "filters": [channel],
            "padding": 0,
        }
        colors = filter_montage(loaded, path, scale=1, **options).image  # one colour a weight
        kh, kw = colors.shape[:2]
        self.detail_pixels.show(colors, zoom=max(1, DETAIL_TARGET // max(kh, kw)))
        self.detail_canvas_box.layout.display = None
        values = filter_values(
            loaded, path, view=montage.view, channel=self.in_channel.value, filters=[channel]
        )[0]
        what = {
            "rgb": "input channels as red, green, blue",
            "mean": "mean over input channels",
            "maxabs": "largest |weight| over input channels",
            "channel": f"input channel {self.in_channel.value}",
        }[montage.view]
        self.detail_head.value = (
            f'<div class="cnnviz-section">Filter {channel} of {esc(path)}</div>'
            f'<div class="cnnviz-muted">{kh}×{kw} · {what}<br>'
            f"min {values.min():+.3f} · max {values.max():+.3f} · "
            f"mean {values.mean():+.3f}</div>"
        )
        if values.ndim == 3:  # rgb view: one table per input channel
            tables = "".join(
                f'<div class="cnnviz-muted">{name}</div>' + kernel_table(values[..., c])
                for c, name in enumerate(("red (input 0)", "green (input 1)", "blue (input 2)"))
            )
        else:
            tables = kernel_table(values, colors)
        self.detail_numbers.value = tables

    def _show_nothing(self, path: str | None) -> None:
        self._clear_pictures()
        conv = self.session.conv_layers
        listed = ", ".join(conv[:16]) + (f", … ({len(conv)} in all)" if len(conv) > 16 else "")
        if not conv:
            text = "This model has no convolution layer, so there are no filters to show."
        elif path is None:
            text = f"Pick a convolution layer to see its filters: {esc(listed)}."
        else:
            row = self.session.layer_row
            text = (
                f"<b>{esc(path)}</b> is a {esc(row.class_name)} layer: it has no convolution "
                f"kernel, so there are no filters to show. Layers with filters: "
                f"{esc(listed)}."
            )
        self.messages.show_note(text)
        self.info.value = ""
        self.paging.layout.display = "none"

    def _clear_pictures(self) -> None:
        self.montage = None
        self.pixels.clear()
        self._show_detail()

    # --- overview mode ----------------------------------------------------------------

    def overview_image(self) -> tuple[np.ndarray, list[tuple[int, int, int, int, str]]]:
        """The overview picture (uint8 RGBA) and each tile's ``(x, y, w, h, path)``."""
        loaded = self.session.loaded
        paths = first_conv_per_block(loaded)
        if not paths:
            raise NoKernelError("this model has no convolution layer, so no filters to show")
        face, small = font(14), font(12)
        tiles = []
        for path in paths:
            tile = filter_montage(
                loaded,
                path,
                view="channel",
                channel=0,
                normalization="filter",
                cmap="gray",
                filters=[0],
                scale=1,
                padding=0,
            ).image
            kh, kw = tile.shape[:2]
            tiles.append(zoom_nearest(tile, max(1, OVERVIEW_TILE // max(kh, kw))))
        gap, label_h, pad = 22, 40, 16
        col_w = max(max(t.shape[1] for t in tiles), 120)
        row_h = label_h + max(t.shape[0] for t in tiles)
        columns = min(len(tiles), OVERVIEW_COLUMNS)
        rows = math.ceil(len(tiles) / columns)
        width = 2 * pad + columns * col_w + (columns - 1) * gap
        height = 2 * pad + rows * row_h + (rows - 1) * gap
        canvas = Image.new("RGBA", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        boxes = []
        for k, (path, tile) in enumerate(zip(paths, tiles)):
            r, c = divmod(k, columns)
            x0, y0 = pad + c * (col_w + gap), pad + r * (row_h + gap)
            th, tw = tile.shape[:2]
            tx = x0 + (col_w - tw) // 2
            ty = y0 + label_h
            canvas.paste(Image.fromarray(tile, "RGBA"), (tx, ty))
            row = self.session.table.row(path)
            name = path if len(path) <= 18 else "…" + path[-17:]
            draw.text((x0 + col_w / 2, y0), name, fill=(235, 235, 235, 255), font=face, anchor="ma")
            draw.text(
                (x0 + col_w / 2, y0 + 19),
                f"layer {row.index} · filter 0, in 0",
                fill=(170, 170, 170, 255),
                font=small,
                anchor="ma",
            )
            boxes.append((tx, ty, tw, th, path))
        return np.asarray(canvas, dtype=np.uint8), boxes

    def _render_overview(self) -> None:
        self.montage = None
        if self.messages.kind == "note":
            self.messages.clear()
        image, boxes = self.overview_image()
        self._overview_boxes = boxes
        self.title.value = (
            'Filters <span class="cnnviz-sub">overview: the first filter of the first '
            "convolution of each block</span>"
        )
        self.pixels.show(image, 1)
        self.info.value = (
            "Each picture is <code>layer.get_weights()[0][:, :, 0, 0]</code>: filter 0 seen "
            "through input channel 0, in gray (white = largest weight).<br>"
            "Click a filter to open its layer."
        )
        self._show_detail()

    # --- callbacks --------------------------------------------------------------------

    def _update_visibility(self) -> None:
        overview = self.mode_toggle.value == "overview"
        for box in (self.layer_controls, self.style_controls):
            box.layout.display = "none" if overview else None
        self.detail.layout.display = "none" if overview else None
        if overview:
            self.paging.layout.display = "none"

    def _on_control(self, change: dict) -> None:
        if change["owner"] is self.sort or change["owner"] is self.page_size:
            self.page = 0
        self.render()

    def _on_zoom(self, change: dict) -> None:
        if self.pixels.image is not None and self.mode_toggle.value == "filters":
            zoom = self.zoom.value or auto_zoom(self.pixels.image.shape)
            self.pixels.show(self.pixels.image, zoom, self.pixels.highlight)

    def _on_page_size(self, change: dict) -> None:
        self.page = 0
        self.render()

    def _on_mode(self, change: dict) -> None:
        self.render()

    def _sync_layer_select(self) -> None:
        conv = self._current_conv()
        if self.layer_select.value != conv:
            self._updating = True
            try:
                self.layer_select.value = conv
            finally:
                self._updating = False

    def _on_layer_select(self, change: dict) -> None:
        if not self._updating and change["new"] is not None:
            self.session.layer = change["new"]

    def _on_session_layer(self, change: dict) -> None:
        self.page = 0
        self._sync_layer_select()
        if self.mode_toggle.value == "filters":
            self.render()

    def _on_session_channel(self, change: dict) -> None:
        if self.mode_toggle.value != "filters":
            return
        if self.montage is not None and self.montage.layer != self.session.layer:
            return  # the layer is changing: its observer redraws everything
        channel = change["new"]
        if channel is not None and self.montage is not None:
            if channel not in np.asarray(self.montage.order):  # on another page
                path = self._current_conv()
                position = channel
                if self.sort.value:
                    position = int(np.flatnonzero(self._norm_order(path) == channel)[0])
                self.page = position // self.page_size.value
                self.render()
                return
        self.pixels.set_highlight(self._highlight_box())
        self._show_detail()

    def _on_click(self, x: float, y: float) -> None:
        ix, iy = self.pixels.to_image_coordinates(x, y)
        if self.mode_toggle.value == "overview":
            for bx, by, bw, bh, path in self._overview_boxes:
                if bx <= ix < bx + bw and by <= iy < by + bh:
                    self.session.layer = path
                    self.mode_toggle.value = "filters"
                    self.session.channel = 0
                    return
            return
        if self.montage is None:
            return
        index = self.montage.filter_at(ix, iy)
        if index is not None:
            self.session.channel = index

    def _on_save(self, _button: Any) -> None:
        if self.mode_toggle.value == "overview":
            name = "filters_overview.png"
        else:
            layer = (self.session.layer or "filters").replace("/", "_")
            name = f"filters_{layer}.png"
        data = self.to_png(name)
        link = base64.b64encode(data).decode("ascii")
        self.export_status.value = (
            f"saved <code>{esc(os.path.abspath(name))}</code> ({len(data) / 1024:.0f} KB) · "
            f'<a download="{esc(name)}" href="data:image/png;base64,{link}">download</a>'
        )
