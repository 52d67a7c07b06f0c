"""FilterGallery: every filter of a convolution layer as one crisp montage on a canvas.

Layout and wiring: the settings are traits (:mod:`.gallery_controls`), the selected filter
is :mod:`.filter_detail`, the overview picture :mod:`.filter_overview`.
"""

from __future__ import annotations

import io
import math
import os
from collections import OrderedDict
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..engine import (
    Montage,
    filter_montage,
    filter_values,
    first_conv_per_block,
    get_layer,
    kernel_array,
    strongest_filters,
)
from ..errors import CnnvizError
from .canvas import PixelCanvas
from .common import Panel, download_link, esc, row, style_sheet, write_file
from .filter_detail import FilterDetail, kernel_table
from .filter_overview import overview_picture
from .gallery_controls import GalleryControls, GallerySettings
from .pictures import fit_zoom, png_bytes
from .save_figure import SaveFigure, gallery_figures

__all__ = ["FilterGallery", "auto_zoom", "kernel_table"]

AUTO_ZOOM_TARGET = 480  # pixels on the longer side the auto zoom aims for


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
        config: the :class:`~.gallery_controls.GallerySettings` (traits) the controls are
            linked to.
        montage: the :class:`~cnnviz_widgets.Montage` on the canvas (filters mode) or
            ``None``.
        pixels: the montage's :class:`PixelCanvas` (``pixels.canvas`` has the CSS class
            ``cnnviz-gallery-canvas``).
        controls: the controls (:class:`~.gallery_controls.GalleryControls`:
            ``layer_select``, ``mode_toggle``, ``view``, ``in_channel``, ``normalization``,
            ``cmap``, ``zoom``, ``sort``, ``page_size``, ``prev_page``, ``next_page``,
            ``page_label``, ``save_png``, ``export_status``, and their rows).
        filter_detail: the clicked filter enlarged, with its numbers
            (:class:`~.filter_detail.FilterDetail`: ``pixels``, ``head``, ``numbers``,
            ``box``).
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
        session = self.session
        self.config = GallerySettings(mode=mode, page_size=page_size)
        self.montage: Montage | None = None
        self.page = 0
        self._cache: OrderedDict[tuple, Montage] = OrderedDict()
        self._orders: dict[str, np.ndarray] = {}
        self._kernel_shapes: dict[str, tuple[int, int, int, int]] = {}
        self._overview_boxes: list[tuple[int, int, int, int, str]] = []
        self._updating = False

        # --- parts -------------------------------------------------------------------
        conv = session.conv_layers
        layers = [(f"{p} · {self._layer_kind(p)} · {self._filter_shape(p)}", p) for p in conv]
        c = self.controls = GalleryControls(self.config, layers)
        self.title = widgets.HTML()
        self.title.add_class("cnnviz-title")
        self.pixels = PixelCanvas("cnnviz-gallery-canvas")
        self.info = widgets.HTML()
        self.info.add_class("cnnviz-muted")
        self.filter_detail = FilterDetail()

        # --- layout ------------------------------------------------------------------
        canvas_box = widgets.Box([self.pixels.canvas])
        canvas_box.add_class("cnnviz-canvas-box")
        header = row(self.title, self.controls.mode_toggle)
        header.layout = widgets.Layout(justify_content="space-between", align_items="center")
        self.body = widgets.HBox(
            [widgets.VBox([canvas_box, self.info]), self.filter_detail.box],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        self.children = [
            style_sheet(),
            header,
            self.controls.layer_row,
            self.controls.style_row,
            self.messages,
            self.body,
            row(self.controls.paging, c.export_row),
            SaveFigure(gallery_figures(self), "filters.pdf"),
        ]

        # --- wiring ------------------------------------------------------------------
        drawing = ["view", "in_channel", "normalization", "cmap", "sort", "page_size", "mode"]
        self.config.observe(self.guarded(self._on_control), names=drawing)
        self.config.observe(self.guarded(self._on_zoom), names="zoom")
        self.controls.layer_select.observe(self.guarded(self._on_layer_select), names="value")
        self.controls.prev_page.on_click(self.guarded(lambda _: self.turn_page(-1)))
        self.controls.next_page.on_click(self.guarded(lambda _: self.turn_page(+1)))
        self.controls.save_png.on_click(self.guarded(self._on_save))
        self.pixels.canvas.on_mouse_down(self.guarded(self._on_click))
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(self._on_session_channel, names=["channel"])

        if session.layer is None and conv and mode == "filters":
            session.layer = conv[0]  # its observer renders it
        else:
            self.guarded(self._sync_layer_select)()
            self.guarded(self.render)()

    # --- public API -------------------------------------------------------------------

    def render(self) -> None:
        """Redraw the canvas from the session and the controls."""
        self._update_visibility()
        if self.config.mode == "overview":
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
        return write_file(png_bytes(self.pixels.sent), path)

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

        if self.config.mode == "overview":
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

    def _layer_kind(self, path: str) -> str:
        return self.session.table.row(path).class_name

    def _filter_shape(self, path: str) -> str:
        kh, kw, n_in, n = self._kernel_shape(path)
        return f"{n} filters {kh}×{kw}×{n_in}"

    def _input_channels(self, path: str) -> int:
        return self._kernel_shape(path)[2]

    def _page_count(self) -> int:
        n = self.session.n_channels() if self._current_conv() else None
        return max(1, math.ceil(n / self.config.page_size)) if n else 1

    def _current_conv(self) -> str | None:
        row = self.session.layer_row
        return row.path if row is not None and row.has_kernel else None

    def _page_filters(self, path: str) -> tuple[Any, int, int, int]:
        """``(filters argument, first, stop, total)`` for the current page."""
        n = self.session.n_channels(path) or 0
        size = self.config.page_size
        self.page = min(self.page, max(0, math.ceil(n / size) - 1))
        start, stop = self.page * size, min(n, (self.page + 1) * size)
        if self.config.sort:
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
            self.config.view,
            self.config.in_channel if self.config.view == "channel" else 0,
            self.config.normalization,
            self.config.cmap,
            self.config.sort,
            self.page,
            self.config.page_size,
        )
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        montage = filter_montage(
            self.session.loaded,
            path,
            view=self.config.view,
            channel=self.config.in_channel,
            normalization=self.config.normalization,
            cmap=self.config.cmap or None,
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
        self.controls.in_channel.max = max(0, n_in - 1)
        self.controls.in_channel.disabled = self.config.view != "channel"
        filters, start, stop, n = self._page_filters(path)
        try:
            montage = self._montage(path, filters)
        except CnnvizError:
            self._clear_pictures()
            raise
        self.montage = montage
        if self.messages.kind == "note":
            self.messages.clear()
        zoom = self.config.zoom or auto_zoom(montage.image.shape)
        self.pixels.show(montage.image, zoom, self._highlight_box())
        pages = self._page_count()
        self.controls.page_label.value = f"filters {start}–{stop - 1} of {n}" + (
            f" · page {self.page + 1}/{pages}"
        )
        self.controls.prev_page.disabled = self.page == 0
        self.controls.next_page.disabled = self.page >= pages - 1
        self.controls.paging.layout.display = None if pages > 1 else "none"
        low, high = montage.value_range
        scale = {
            "filter": "each filter scaled to its own range",
            "layer": "one scale for the layer",
            "symmetric": "0 in the middle of the colours",
        }[montage.normalization]
        self.info.value = (
            f"{len(montage.order)} filters · view <b>{esc(montage.view)}</b>"
            + (f" (input channel {self.config.in_channel})" if montage.view == "channel" else "")
            + f" · {scale} · values {low:.3g} … {high:.3g}"
            + (" · strongest first" if self.config.sort else "")
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
        channel, montage, path = self.session.channel, self.montage, self._current_conv()
        if channel is None or montage is None or path is None:
            self.filter_detail.clear()
            return
        cmap = self.config.cmap or None
        self.filter_detail.show(
            self.session.loaded, path, channel, montage, self.config.in_channel, cmap
        )

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
        self.controls.paging.layout.display = "none"

    def _clear_pictures(self) -> None:
        self.montage = None
        self.pixels.clear()
        self._show_detail()

    # --- overview mode ----------------------------------------------------------------

    def overview_image(self) -> tuple[np.ndarray, list[tuple[int, int, int, int, str]]]:
        """The overview picture (uint8 RGBA) and each tile's ``(x, y, w, h, path)``."""
        return overview_picture(self.session)

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
        overview = self.config.mode == "overview"
        for box in (self.controls.layer_row, self.controls.style_row):
            box.layout.display = "none" if overview else None
        self.filter_detail.box.layout.display = "none" if overview else None
        if overview:
            self.controls.paging.layout.display = "none"

    def _on_control(self, change: dict) -> None:
        if change["name"] in ("sort", "page_size"):
            self.page = 0
        self.render()

    def _on_zoom(self, change: dict) -> None:
        if self.pixels.image is not None and self.config.mode == "filters":
            zoom = self.config.zoom or auto_zoom(self.pixels.image.shape)
            self.pixels.show(self.pixels.image, zoom, self.pixels.highlight)

    def _sync_layer_select(self) -> None:
        conv = self._current_conv()
        if self.controls.layer_select.value != conv:
            self._updating = True
            try:
                self.controls.layer_select.value = conv
            finally:
                self._updating = False

    def _on_layer_select(self, change: dict) -> None:
        if not self._updating and change["new"] is not None:
            self.session.layer = change["new"]

    def _on_session_layer(self, change: dict) -> None:
        self.page = 0
        self._sync_layer_select()
        if self.config.mode == "filters":
            self.render()

    def _on_session_channel(self, change: dict) -> None:
        if self.config.mode != "filters":
            return
        if self.montage is not None and self.montage.layer != self.session.layer:
            return  # the layer is changing: its observer redraws everything
        channel = change["new"]
        if channel is not None and self.montage is not None:
            if channel not in np.asarray(self.montage.order):  # on another page
                path = self._current_conv()
                position = channel
                if self.config.sort:
                    position = int(np.flatnonzero(self._norm_order(path) == channel)[0])
                self.page = position // self.config.page_size
                self.render()
                return
        self.pixels.set_highlight(self._highlight_box())
        self._show_detail()

    def _on_click(self, x: float, y: float) -> None:
        ix, iy = self.pixels.to_image_coordinates(x, y)
        if self.config.mode == "overview":
            for bx, by, bw, bh, path in self._overview_boxes:
                if bx <= ix < bx + bw and by <= iy < by + bh:
                    self.session.layer = path
                    self.config.mode = "filters"
                    self.session.channel = 0
                    return
            return
        if self.montage is None:
            return
        index = self.montage.filter_at(ix, iy, nearest=True)
        if index is not None:
            self.session.channel = index

    def _on_save(self, _button: Any) -> None:
        if self.config.mode == "overview":
            name = "filters_overview.png"
        else:
            name = f"filters_{(self.session.layer or 'filters').replace('/', '_')}.png"
        self.controls.export_status.value = download_link(name, self.to_png(name), "image/png")
