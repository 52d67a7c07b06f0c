"""The explainer's feature maps: one layer's activations for the image as a montage, a
click selects a channel in the session, and the selected channel's statistics and map."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..engine import FeatureMaps, feature_maps, is_spatial, spatial_layers
from ..session import Session
from .canvas import PixelCanvas
from .common import esc, fmt_value
from .pictures import fit_zoom

FEATURE_SORTS = [
    ("strongest mean first", "mean"),
    ("strongest max first", "max"),
    ("most active first", "active"),
    ("largest spread first", "std"),
    ("channel order", None),
]
MONTAGE_TARGET = 300  # pixels the feature-map montage aims for
MONTAGE_MAX = 1024  # a larger montage is shown subsampled (every k-th pixel)
CHANNEL_TARGET = 128  # pixels of the selected channel's map


class FeatureMapsView:
    """Feature maps of ``session.layer`` (``cam_default`` while the session has none).

    Args:
        session: the panels' shared :class:`Session`.
        cam_default: the layer shown when the session has no layer (``None``: none).
        guarded: the panel's wrapper that shows a callback's errors in the panel.
        cmap: the colormap control the channel's map follows.

    Attributes:
        layer, sort: the layer (it is ``session.layer``) and order dropdowns.
        pixels: the montage (``cnnviz-featuremap-canvas``); ``channel_pixels`` the
            selected channel over the image.
        info, detail, head: the texts under, beside and above the montage.
        features: the :class:`~cnnviz_widgets.FeatureMaps` shown, or ``None``.
        children: the widgets to place in the panel, in order.
    """

    def __init__(
        self,
        session: Session,
        cam_default: str | None,
        guarded: Callable[[Callable[..., Any]], Callable[..., Any]],
        cmap: widgets.Dropdown,
    ) -> None:
        self.session = session
        self.cam_default = cam_default
        self.cmap = cmap
        self.features: FeatureMaps | None = None
        self._step = 1  # the montage's subsampling on the canvas
        self._updating = False
        self.layer = widgets.Dropdown(
            options=[
                (f"{r.path} · {r.class_name} · {r.output_shape}", r.path)
                for r in self.session.table
                if r.class_name != "InputLayer"
            ],
            value=None,
            description="Layer",
            layout=widgets.Layout(width="420px"),
            style={"description_width": "52px"},
        )
        self.layer.add_class("cnnviz-ex-fm-layer")
        self.sort = widgets.Dropdown(
            options=FEATURE_SORTS,
            value="mean",
            description="Order",
            layout=widgets.Layout(width="250px"),
            style={"description_width": "52px"},
        )
        self.pixels = PixelCanvas("cnnviz-featuremap-canvas")
        self.channel_pixels = PixelCanvas("cnnviz-channel-canvas")
        self.info = widgets.HTML()
        self.info.add_class("cnnviz-muted")
        self.info.add_class("cnnviz-ex-fm-info")
        self.detail = widgets.HTML()
        fm_box = widgets.Box([self.pixels.canvas])
        fm_box.add_class("cnnviz-canvas-box")
        self.channel_box = widgets.Box([self.channel_pixels.canvas])
        self.channel_box.add_class("cnnviz-canvas-box")
        self.detail_box = widgets.VBox([self.detail, self.channel_box])
        self.detail_box.add_class("cnnviz-ex-fm-detail")

        controls = widgets.HBox([self.layer, self.sort])
        controls.add_class("cnnviz-controls")
        body = widgets.HBox(
            [widgets.VBox([fm_box, self.info]), self.detail_box],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="14px"),
        )
        self.head = widgets.HTML()
        self.children = [self.head, controls, body]
        self.layer.observe(guarded(self._on_layer), names="value")
        self.pixels.canvas.on_mouse_down(guarded(self._on_click))

    def render(self, image: np.ndarray | None) -> FeatureMaps | None:
        """Redraw the feature maps of ``session.layer`` (the Grad-CAM layer when the session
        has no layer) for ``image``."""
        self.features = None
        self.pixels.clear()
        self.channel_pixels.clear()
        self.channel_box.layout.display = "none"
        self.detail.value = ""
        if image is None:
            self.info.value = ""
            return None
        layer = self.session.layer or self.cam_default
        if layer is None:
            self._note("This model has no layer with a spatial output: no feature maps.")
            return None
        row = self.session.table.row(layer)
        shape = row.output_shape
        self._set_head(layer)
        if not (isinstance(shape, tuple) and is_spatial(shape)):
            listed = ", ".join(spatial_layers(self.session.loaded)[-8:]) or "none"
            self._note(
                f"<b>{esc(layer)}</b> is a {esc(row.class_name)} layer with output "
                f"{esc(shape)}: it has no spatial maps to show. Pick a layer with an "
                f"(h, w, channels) output, such as {esc(listed)}."
            )
            return None
        fm = feature_maps(self.session.loaded, image, layer, sort=self.sort.value)
        self.features = fm
        picture = fm.montage.image
        # a large montage (VGG16's first layers: 64 maps of 224 px) is shown subsampled
        self._step = max(1, -(-max(picture.shape[:2]) // MONTAGE_MAX))
        picture = np.ascontiguousarray(picture[:: self._step, :: self._step])
        self.pixels.show(picture, fit_zoom(picture.shape, MONTAGE_TARGET), self._highlight())
        dead = len(fm.stats.dead)
        how = dict((v, label) for label, v in FEATURE_SORTS).get(fm.sort, "")
        self.info.value = (
            f"{fm.maps.shape[-1]} channels of {fm.maps.shape[0]}×{fm.maps.shape[1]}, {esc(how)}"
            f" (each map scaled to its own range) · {dead} silent on this image"
            "<br>Click a map to select that channel (the class optimizer follows)."
        )
        self.show_channel()
        return fm

    def _note(self, text: str) -> None:
        self.info.value = f'<div class="cnnviz-message-note">{text}</div>'

    def _set_head(self, layer: str) -> None:
        if self.session.layer is None:
            how = (
                " (no layer is selected in the session: this is the Grad-CAM layer; pick "
                "another below or in the layer browser)"
            )
        else:
            how = " (the layer selected in the session)"
        self.head.value = (
            f'<div class="cnnviz-section">Feature maps of <code>{esc(layer)}</code>'
            f'<span class="cnnviz-muted">{esc(how)}</span></div>'
        )

    def _highlight(self) -> tuple[int, int, int, int] | None:
        fm, channel = self.features, self.session.channel
        if fm is None or channel is None or self.session.layer != fm.layer:
            return None
        where = np.flatnonzero(np.asarray(fm.order) == channel)
        if not len(where):
            return None
        x, y, w, h = fm.montage.tile_box(int(where[0]))
        k = self._step
        return x // k, y // k, -(-w // k), -(-h // k)

    def show_channel(self) -> None:
        """Show the session's channel: its statistics and its map over the image."""
        fm = self.features
        channel = self.session.channel
        if fm is None or channel is None or self.session.layer != fm.layer:
            self.channel_pixels.clear()
            self.channel_box.layout.display = "none"
            top = fm.top(5, by=self.sort.value or "mean") if fm is not None else []
            listing = ", ".join(str(int(c)) for c in top)
            self.detail.value = (
                '<div class="cnnviz-section">Channel statistics</div>'
                f'<span class="cnnviz-muted">Strongest channels: {listing}. Click a map for '
                "its statistics and its map over the image.</span>"
                if fm is not None
                else ""
            )
            return
        if channel >= fm.maps.shape[-1]:
            return
        s = fm.stats.row(channel)
        rank = int(np.flatnonzero(np.asarray(fm.order) == channel)[0]) + 1
        rows = "".join(
            f"<tr><th>{k}</th><td>{v}</td></tr>"
            for k, v in (
                ("mean", fmt_value(s["mean"])),
                ("max", fmt_value(s["max"])),
                ("min", fmt_value(s["min"])),
                ("std", fmt_value(s["std"])),
                ("active", f"{s['active'] * 100:.0f} % of positions > 0"),
                ("rank", f"{rank} of {fm.maps.shape[-1]} ({esc(self.sort.label)})"),
            )
        )
        self.detail.value = (
            f'<div class="cnnviz-section">Channel {channel} of <code>{esc(fm.layer)}</code>'
            f'</div><table class="cnnviz-kv">{rows}</table>'
            '<div class="cnnviz-muted">its map over the image:</div>'
        )
        rgba = fm.overlay(channel, self.cmap.value, 0.6)
        self.channel_pixels.show(rgba, fit_zoom(rgba.shape, CHANNEL_TARGET))
        self.channel_box.layout.display = None

    def sync_layer(self) -> None:
        """Show the layer whose maps are drawn (the session's) in the dropdown."""
        value = self.session.layer or self.cam_default  # the layer whose maps are shown
        if value not in {v for _, v in self.layer.options}:
            value = None
        if self.layer.value != value:
            self._updating = True
            try:
                self.layer.value = value
            finally:
                self._updating = False

    def _on_layer(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self.session.layer = change["new"]  # its observer redraws

    def _on_click(self, x: float, y: float) -> None:
        fm = self.features
        if fm is None:
            return
        ix, iy = self.pixels.to_image_coordinates(x, y)
        channel = fm.montage.filter_at(ix * self._step, iy * self._step)
        if channel is not None:
            self.session.select(fm.layer, channel)

    def on_session_channel(self) -> None:
        """The session's channel changed: outline its map and show its statistics."""
        if self.features is None or self.features.layer != self.session.layer:
            return
        self.pixels.set_highlight(self._highlight())
        self.show_channel()
