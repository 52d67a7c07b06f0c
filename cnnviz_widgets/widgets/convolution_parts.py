"""The parts of the :class:`~.convolution_explainer.ConvolutionExplainer`, each with its own
box: the pictures (the feature map to click, the image with the unit's receptive field, the
layer's input with the patch) and the numbers (the arithmetic line, the patch × kernel =
products grids on one colour scale with its legend, the sums per input channel)."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from ..engine import ConvolutionTrace, ReceptiveField, to_rgba
from .canvas import PixelCanvas
from .common import esc
from .pictures import opaque_rgba

NUMBERS_UP_TO = 5  # kernels up to 5x5 show their numbers in the grids; larger: colour only
STRONGEST = -1  # input-channel view: the channel that contributes most at the position
SUM = -2  # input-channel view: the products summed over the input channels
CANVAS_TARGET = 256  # pixels the image and the maps aim for
MAP_CMAP = "viridis"
GRID_CMAP = "RdBu_r"  # blue negative, red positive, white zero


def canvas_zoom(shape: tuple[int, ...], target: int = CANVAS_TARGET) -> int:
    """The whole-pixel zoom that brings a map's longer side near ``target`` (at least 1):
    an 8x8 map is shown 32x larger, so that each unit is easy to click."""
    return max(1, target // max(shape[0], shape[1], 1))


def scaled_map(values: np.ndarray, cmap: str = MAP_CMAP) -> np.ndarray:
    """A 2-D map as RGBA through ``cmap``, scaled to its own min..max (constant: dark)."""
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    return to_rgba(scaled, cmap)


def _fmt(value: float) -> str:
    text = f"{value:.2f}" if value == 0 or 0.01 <= abs(value) < 1e4 else f"{value:.2g}"
    return text.replace("-", "−")


def legend_html(scale: float) -> str:
    """The grids' colour scale as a bar from ``-scale`` (blue) through 0 (white) to
    ``+scale`` (red), with its three values."""
    stops = ", ".join(
        "rgb({},{},{})".format(*(int(v) for v in to_rgba(np.array([[t]]), GRID_CMAP)[0, 0, :3]))
        for t in np.linspace(0, 1, 9)
    )
    return (
        '<div class="cnnviz-conv-legend" title="one colour scale for the three grids">'
        f'<span>{esc(_fmt(-scale))}</span><span class="cnnviz-conv-legend-bar" '
        f'style="background: linear-gradient(to right, {stops})"></span>'
        f"<span>{esc(_fmt(scale))}</span>"
        '<span class="cnnviz-muted">one colour scale for patch, kernel and products '
        "(0 is white)</span></div>"
    )


def grid_html(
    values: np.ndarray, padded: np.ndarray | None, numbers: bool, title: str, scale: float
) -> str:
    """A ``(kh, kw)`` grid as an HTML table, each cell coloured by its value (blue
    negative, red positive, symmetric around 0 within ``scale``), with its number when
    ``numbers``; padding cells are grey and say "pad"."""
    scale = scale if scale > 0 else 1.0
    colours = to_rgba(0.5 + 0.5 * np.clip(values / scale, -1, 1), GRID_CMAP)
    rows = []
    for i in range(values.shape[0]):
        cells = []
        for j in range(values.shape[1]):
            value = float(values[i, j])
            if padded is not None and padded[i, j]:
                cells.append('<td class="cnnviz-conv-pad" title="padding: 0">pad</td>')
                continue
            r, g, b = (int(v) for v in colours[i, j, :3])
            ink = "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#fff"
            text = _fmt(value) if numbers else ""
            cells.append(
                f'<td style="background: rgb({r},{g},{b}); color: {ink}" '
                f'title="{_fmt(value)}">{text}</td>'
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    kind = "cnnviz-conv-numbers" if numbers else "cnnviz-conv-colours"
    return (
        f'<div class="cnnviz-conv-grid"><div class="cnnviz-conv-grid-title">{title}</div>'
        f'<table class="cnnviz-conv-table {kind}">{"".join(rows)}</table></div>'
    )


def _column(pixels: PixelCanvas, caption: widgets.HTML) -> widgets.VBox:
    box = widgets.Box([pixels.canvas])
    box.add_class("cnnviz-canvas-box")
    col = widgets.VBox([box, caption])
    col.add_class("cnnviz-conv-column")
    return col


class ConvolutionPictures:
    """The feature map to click (first: it is what the panel is about), the image with
    the unit's receptive field, and the layer's input with the patch outlined.

    Attributes:
        image_pixels, map_pixels, input_pixels: the canvases (CSS classes
            ``cnnviz-conv-image``, ``cnnviz-conv-map``, ``cnnviz-conv-input``).
        image_caption, map_caption, input_caption: their captions.
        input_column: the input's column (hidden for a first layer: its input is the image).
        box: the three columns.
    """

    def __init__(self) -> None:
        self.image_pixels = PixelCanvas("cnnviz-conv-image")
        self.map_pixels = PixelCanvas("cnnviz-conv-map")
        self.input_pixels = PixelCanvas("cnnviz-conv-input")
        self.image_caption = widgets.HTML()
        self.map_caption = widgets.HTML()
        self.input_caption = widgets.HTML()
        for caption in (self.image_caption, self.map_caption, self.input_caption):
            caption.add_class("cnnviz-conv-caption")
        self.input_column = _column(self.input_pixels, self.input_caption)
        self.box = widgets.HBox(
            [
                _column(self.map_pixels, self.map_caption),
                _column(self.image_pixels, self.image_caption),
                self.input_column,
            ]
        )
        self.box.add_class("cnnviz-conv-pictures")

    def draw_image(
        self, image: np.ndarray, field: ReceptiveField | None, error: BaseException | None
    ) -> None:
        """The image, the unit's receptive field outlined (or why there is none)."""
        rgba = opaque_rgba(image)
        box = None
        if field is not None:
            top, left, bottom, right = field.box
            if bottom > top and right > left:
                box = (left, top, right - left, bottom - top)
        self.image_pixels.show(rgba, canvas_zoom(rgba.shape), box)
        if field is None:
            self.image_caption.value = (
                f'<b>The image</b> <span class="cnnviz-muted">(no receptive field: '
                f"{esc(error)})</span>"
            )
            return
        fh, fw = field.size
        top, left, bottom, right = field.box
        where = (
            f"rows {top}..{bottom - 1}, columns {left}..{right - 1}"
            if box
            else "only padding, no pixel"
        )
        self.image_caption.value = (
            f"<b>The image</b>: the pixels that can change this value ({where}; a "
            f"{fh}×{fw} receptive field)"
        )

    def draw_map(self, trace: ConvolutionTrace, outputs: np.ndarray) -> None:
        """The channel's feature map, the position explained outlined."""
        out = outputs[..., trace.channel]
        y, x = trace.position
        self.map_pixels.show(scaled_map(out), canvas_zoom(out.shape), (x, y, 1, 1))
        h, w = out.shape
        self.map_caption.value = (
            f"<b>{esc(trace.layer)}</b>, channel {trace.channel}: {h}×{w} values, "
            f"{esc(_fmt(float(out.min())))}..{esc(_fmt(float(out.max())))}. "
            f"<b>Click a value</b>; shown: (y={y}, x={x}) = {esc(_fmt(trace.value))}"
        )

    def draw_input(self, trace: ConvolutionTrace, inputs: np.ndarray, k: int | None) -> None:
        """The layer's input map (input channel ``k`` of the trace, ``None``: their sum)
        with the patch the kernel sees outlined."""
        self.input_column.layout.display = None
        if k is None:
            values = inputs[..., trace.input_channels].sum(axis=-1)
            what = "summed over the channels the kernel sees"
        else:
            values = inputs[..., int(trace.input_channels[k])]
            what = f"channel {int(trace.input_channels[k])}"
        h, w = values.shape
        top, left, bottom, right = trace.input_box
        top, left = max(top, 0), max(left, 0)
        bottom, right = min(bottom, h), min(right, w)
        box = (left, top, right - left, bottom - top) if bottom > top and right > left else None
        self.input_pixels.show(scaled_map(values), canvas_zoom(values.shape), box)
        self.input_caption.value = (
            f"<b>The layer's input</b>, {esc(what)}: {h}×{w}, the patch the kernel sees outlined"
        )

    def hide_input(self) -> None:
        """A first layer: its input is the image, shown already."""
        self.input_column.layout.display = "none"
        self.input_pixels.clear()


class ConvolutionNumbers:
    """The arithmetic line, the grids (patch × kernel = products, on one colour scale with
    its legend) and the sums per input channel.

    Attributes:
        arithmetic, grids, sums: the three HTML widgets; ``box`` holds them.
    """

    def __init__(self) -> None:
        self.arithmetic = widgets.HTML()
        self.arithmetic.add_class("cnnviz-conv-arith")
        self.grids = widgets.HTML()
        self.grids.add_class("cnnviz-conv-grids")
        self.sums = widgets.HTML()
        self.sums.add_class("cnnviz-conv-sums")
        self.box = widgets.VBox([self.arithmetic, self.grids, self.sums])

    def draw(self, trace: ConvolutionTrace, k: int | None, strongest: bool) -> None:
        """Show ``trace`` for input channel ``k`` of it (``None``: summed over the input
        channels); ``strongest``: ``k`` was chosen as the largest contribution."""
        self.arithmetic.value = (
            f'<span class="cnnviz-conv-where">{esc(trace.layer)}[y={trace.position[0]}, '
            f"x={trace.position[1]}, channel {trace.channel}]</span> "
            f'<span class="cnnviz-conv-line">{esc(trace.text())}</span>'
        )
        kh, kw, n_in = trace.kernel.shape
        numbers = kh <= NUMBERS_UP_TO and kw <= NUMBERS_UP_TO
        if k is None:
            products = trace.products.sum(axis=-1)
            scale = float(np.abs(products).max())
            title = f"products summed over the {n_in} input channels"
            body = grid_html(products, trace.padded, numbers, title, scale)
            head = "Sum over the input channels"
        else:
            patch, kernel = trace.patch[..., k], trace.kernel[..., k]
            products = trace.products[..., k]
            # one scale for the three grids: a colour means the same number in each
            scale = max(float(np.abs(a).max()) for a in (patch, kernel, products))
            body = (
                grid_html(patch, trace.padded, numbers, "patch (input)", scale)
                + '<div class="cnnviz-conv-op">×</div>'
                + grid_html(kernel, None, numbers, "kernel", scale)
                + '<div class="cnnviz-conv-op">=</div>'
                + grid_html(products, trace.padded, numbers, "products", scale)
                + '<div class="cnnviz-conv-op cnnviz-conv-partial">summed: '
                + f"{esc(_fmt(float(products.sum())))} from this channel</div>"
            )
            head = f"Input channel {int(trace.input_channels[k])}" + (
                " (the largest contribution here)" if strongest else ""
            )
        what = {
            "conv2d": f"the kernel sees {n_in} input channel{'s' if n_in > 1 else ''}",
            "depthwise": "a depthwise kernel sees one input channel",
            "separable": "a separable convolution: the kernel is the depthwise kernels "
            "times this channel's pointwise weights",
        }[trace.kind]
        extra = "" if numbers else " (a large kernel: hover over a cell for its number)"
        geometry = (
            f"{kh}×{kw} kernel, stride {trace.strides[0]}×{trace.strides[1]}, dilation "
            f"{trace.dilation[0]}×{trace.dilation[1]}, padding '{trace.padding}'"
        )
        self.grids.value = (
            f'<div class="cnnviz-section">{esc(head)} <span class="cnnviz-muted">· '
            f"{esc(geometry)}; {esc(what)}{esc(extra)}</span></div>"
            f'<div class="cnnviz-conv-row">{body}</div>{legend_html(scale or 1.0)}'
        )
        self.sums.value = sums_html(trace)


def sums_html(trace: ConvolutionTrace) -> str:
    """The products summed per input channel: their total is the sum in the line."""
    sums = trace.channel_sums
    if len(sums) == 1:
        return ""
    order = np.argsort(-np.abs(sums), kind="stable")
    shown = order[:8]
    parts = " + ".join(
        f"<span title='input channel {int(trace.input_channels[i])}'>"
        f"c{int(trace.input_channels[i])} {esc(_fmt(float(sums[i])))}</span>"
        for i in sorted(shown)
    )
    rest = len(sums) - len(shown)
    if rest:
        rest_sum = float(sums[order[8:]].sum())
        parts += f" + {rest} smaller ones {esc(_fmt(rest_sum))}"
    return (
        '<div class="cnnviz-muted">Per input channel (the products of each channel '
        f"summed): {parts} = {esc(_fmt(trace.total))}</div>"
    )
