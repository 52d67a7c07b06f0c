"""One filter enlarged, with its weights as numbers (cells coloured like the picture)."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..engine import LoadedModel, Montage, filter_montage, filter_values
from .canvas import PixelCanvas
from .common import esc

DETAIL_TARGET = 168  # pixels of the enlarged filter
MAX_TABLE = 16  # larger kernels show only their top-left corner as numbers
VIEW_WORDS = {
    "rgb": "input channels as red, green, blue",
    "mean": "mean over input channels",
    "maxabs": "largest |weight| over input channels",
}

__all__ = ["FilterDetail", "kernel_table", "weight"]


def weight(v: float) -> str:
    """A weight with its sign in 3 significant digits: ``+0.00208``, ``-1.25``, ``+312``
    (small weights, such as VGG16's, do not all print as ``+0.000``)."""
    return f"{v:+.3g}"


def _text_color(rgba: np.ndarray) -> str:
    r, g, b = (float(c) for c in rgba[:3])
    return "#000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"


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
            cells.append(f"<td{style}>{weight(float(values[i, j]))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if kh > MAX_TABLE or kw > MAX_TABLE:
        note = f'<div class="cnnviz-muted">top-left {MAX_TABLE}×{MAX_TABLE} of {kh}×{kw}</div>'
    return f'<table class="cnnviz-kernel">{"".join(rows)}</table>{note}'


class FilterDetail:
    """The Selected-filter column: the filter enlarged (``cnnviz-filter-canvas``), its
    shape and range, and its weights.

    Attributes:
        head, numbers: the texts; ``pixels`` the enlarged filter; ``box`` the column.
    """

    def __init__(self) -> None:
        self.pixels = PixelCanvas("cnnviz-filter-canvas")
        self.head = widgets.HTML()
        self.numbers = widgets.HTML()
        self.canvas_box = widgets.Box([self.pixels.canvas])
        self.canvas_box.add_class("cnnviz-canvas-box")
        self.box = widgets.VBox(
            [self.head, self.canvas_box, self.numbers],
            layout=widgets.Layout(flex="0 1 340px", min_width="300px", padding="0 0 0 14px"),
        )
        self.box.add_class("cnnviz-detail-box")

    def clear(self) -> None:
        """No filter selected: say how to pick one."""
        self.head.value = (
            '<div class="cnnviz-section">Selected filter</div>'
            '<div class="cnnviz-muted">Click a filter in the montage.</div>'
        )
        self.numbers.value = ""
        self.pixels.clear()
        self.canvas_box.layout.display = "none"

    def show(
        self,
        loaded: LoadedModel,
        path: str,
        channel: int,
        montage: Montage,
        in_channel: int,
        cmap: str | None,
    ) -> None:
        """Filter ``channel`` of ``path`` as ``montage`` draws it (view, scale, colours)."""
        options = {
            "view": montage.view,
            "channel": in_channel,
            "normalization": montage.normalization,
            "cmap": cmap,
            "filters": [channel],
            "padding": 0,
        }
        colors = filter_montage(loaded, path, scale=1, **options).image  # one colour a weight
        kh, kw = colors.shape[:2]
        self.pixels.show(colors, zoom=max(1, DETAIL_TARGET // max(kh, kw)))
        self.canvas_box.layout.display = None
        values = filter_values(
            loaded, path, view=montage.view, channel=in_channel, filters=[channel]
        )[0]
        what = VIEW_WORDS.get(montage.view, f"input channel {in_channel}")
        self.head.value = (
            f'<div class="cnnviz-section">Filter {channel} of {esc(path)}</div>'
            f'<div class="cnnviz-muted">{kh}×{kw} · {what}<br>'
            f"min {weight(values.min())} · max {weight(values.max())} · "
            f"mean {weight(values.mean())}</div>"
        )
        if values.ndim == 3:  # rgb view: one table per input channel
            self.numbers.value = "".join(
                f'<div class="cnnviz-muted">{name}</div>' + kernel_table(values[..., c])
                for c, name in enumerate(("red (input 0)", "green (input 1)", "blue (input 2)"))
            )
        else:
            self.numbers.value = kernel_table(values, colors)
