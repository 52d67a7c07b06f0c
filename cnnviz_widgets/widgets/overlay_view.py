"""An image with an attribution heatmap over it: the canvas, a colour legend and a caption."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..engine import Attribution, to_rgba
from .canvas import PixelCanvas
from .common import esc
from .pictures import fit_zoom, opaque_rgba

OVERLAY_TARGET = 256  # CSS pixels the overlay's longer side aims for (small images)
METHOD_NAMES = {
    "grad_cam": "Grad-CAM",
    "grad_cam++": "Grad-CAM++",
    "saliency": "Saliency",
    "smoothgrad": "SmoothGrad",
    "occlusion": "Occlusion",
}

__all__ = ["METHOD_NAMES", "OverlayView", "colorbar_css", "overlay_zoom", "percent"]


def overlay_zoom(shape: tuple[int, ...], target: int = OVERLAY_TARGET) -> int:
    """Whole-pixel zoom that brings a small image's longer side near ``target`` (1..8)."""
    return fit_zoom(shape, target, nearest=True)


def colorbar_css(cmap: str, steps: int = 11) -> str:
    """A CSS ``linear-gradient`` through a matplotlib colormap (low on the left)."""
    colors = to_rgba(np.linspace(0.0, 1.0, steps)[None], cmap)[0]
    stops = ", ".join(f"rgb({r},{g},{b})" for r, g, b, _ in colors)
    return f"linear-gradient(to right, {stops})"


def percent(p: float) -> str:
    """A probability as a percentage: ``"99.8 %"``, ``"<0.1 %"``."""
    return "<0.1 %" if 0 < p < 0.0005 else f"{p * 100:.1f} %"


class OverlayView:
    """The explained image (CSS class ``cnnviz-explainer-canvas``) with its heatmap.

    Attributes:
        pixels: the :class:`PixelCanvas`, zoomed by whole pixels (``pixels.zoom``).
        legend, caption: the colour bar and what is shown; ``box`` the whole column.
    """

    def __init__(self) -> None:
        self.pixels = PixelCanvas("cnnviz-explainer-canvas")
        self.caption = widgets.HTML()
        self.caption.add_class("cnnviz-ex-caption")
        self.legend = widgets.HTML()
        image_box = widgets.Box([self.pixels.canvas])
        image_box.add_class("cnnviz-ex-image-box")
        self.box = widgets.VBox([image_box, self.legend, self.caption])
        self.box.add_class("cnnviz-ex-column")
        self.box.add_class("cnnviz-ex-left")

    def show(self, result: Attribution, cmap: str, opacity: float, weighted: bool) -> np.ndarray:
        """Draw ``result``'s heatmap over its image; returns the RGBA drawn (before zoom)."""
        rgba = result.overlay(cmap, float(opacity), weighted=bool(weighted))
        self.pixels.show(rgba, overlay_zoom(rgba.shape))
        self.legend.value = (
            '<div class="cnnviz-ex-legend">low<div class="cnnviz-ex-bar" '
            f'style="background: {colorbar_css(cmap)}"></div>high evidence</div>'
        )
        self.caption.value = self._caption(result)
        return rgba

    def show_plain(self, image: np.ndarray | None) -> None:
        """The image alone (``None``: an empty canvas)."""
        if image is None:
            self.pixels.clear()
            return
        rgba = opaque_rgba(image)
        self.pixels.show(rgba, overlay_zoom(rgba.shape))
        self.legend.value = ""
        self.caption.value = '<span class="cnnviz-muted">the image without a heatmap</span>'

    def _caption(self, result: Attribution) -> str:
        name = result.class_name or f"class {result.class_index}"
        where = f" at <code>{esc(result.layer)}</code>" if result.layer else ""
        extra = ""
        if result.method == "occlusion":
            extra = f" · patch {result.patch}, stride {result.stride}"
        elif result.method == "smoothgrad":
            extra = f" · {result.samples} samples, noise {result.noise:g}"
        h, w = result.heatmap.shape
        zoom = self.pixels.zoom
        size = f"{w}×{h} px" + (f", shown {zoom}× larger" if zoom > 1 else "")
        return (
            f"<b>{esc(METHOD_NAMES.get(result.method, result.method))}</b> for "
            f"<b>{esc(name)}</b> (p = {percent(result.probability)}){where}{extra}"
            f'<br><span class="cnnviz-muted">{size}</span>'
        )
