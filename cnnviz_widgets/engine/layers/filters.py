"""Filter images: convolution kernels as pictures, tiled into one RGBA montage.

Supported layers: Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D (its depthwise,
spatial kernel) and Conv1D (each kernel shown as one row).  Reads the weights only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import matplotlib
import numpy as np

from ...errors import CnnvizError, NoKernelError
from ..model.introspect import find_layer, has_kernel, iter_layers
from ..model.loading import as_keras_model

VIEWS = ("auto", "channel", "rgb", "mean", "maxabs")
NORMALIZATIONS = ("filter", "layer", "symmetric")
DEFAULT_CMAP = {"filter": "gray", "layer": "gray", "symmetric": "RdBu_r"}
TARGET_TILE_PX = 24


def _numpy(variable) -> np.ndarray:
    return np.array(keras.ops.convert_to_numpy(variable), np.float32)  # always a copy


def kernel_array(layer) -> np.ndarray:
    """The layer's kernel as ``(kh, kw, in_channels, n_filters)`` float32 (a copy).

    Conv2DTranspose kernels are stored ``(kh, kw, out, in)`` and are transposed; depthwise
    kernels become one single-channel filter per output channel; Conv1D kernels become
    ``(1, k, in, out)``.
    """
    if isinstance(layer, keras.layers.Conv2DTranspose):
        k = _numpy(layer.kernel)
        return np.ascontiguousarray(k.transpose(0, 1, 3, 2))
    if isinstance(layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)):
        depthwise = isinstance(layer, keras.layers.DepthwiseConv2D)
        k = _numpy(layer.kernel if depthwise else layer.depthwise_kernel)  # (kh, kw, in, mult)
        kh, kw = k.shape[:2]
        return k.reshape(kh, kw, 1, -1)
    if isinstance(layer, keras.layers.Conv1D):
        return _numpy(layer.kernel)[None]
    if isinstance(layer, keras.layers.Conv2D):
        return _numpy(layer.kernel)
    raise AssertionError(type(layer))


def filter_count(layer) -> int:
    """How many filters :func:`kernel_array` gives for a convolution layer (from the kernel's
    shape, without copying the weights)."""
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return int(layer.kernel.shape[2])
    if isinstance(layer, keras.layers.SeparableConv2D):
        return int(np.prod(layer.depthwise_kernel.shape[2:]))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(np.prod(layer.kernel.shape[2:]))
    return int(layer.kernel.shape[-1])


def _by_norm(k: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``index`` ordered by the filters' L2 norm, largest first (ties keep their order)."""
    norms = np.sqrt((k.reshape(-1, k.shape[3]) ** 2).sum(axis=0))
    return index[np.argsort(-norms[index], kind="stable")]


def strongest_filters(model, layer) -> np.ndarray:
    """Every filter of a convolution layer, largest L2 norm (over the whole kernel) first."""
    found, _ = _kernel_layer(model, layer)
    k = kernel_array(found)
    return _by_norm(k, np.arange(k.shape[3]))


def _kernel_layer(model, layer):
    model = as_keras_model(model)
    found, path = find_layer(model, layer)
    if not has_kernel(found):
        conv = [p for _, p, _, lay, _ in iter_layers(model) if has_kernel(lay)]
        shown = ", ".join(conv[:12]) + (f", ... ({len(conv)} in all)" if len(conv) > 12 else "")
        raise NoKernelError(
            f"layer {path!r} is a {type(found).__name__}, which has no convolution kernel "
            f"to show. Layers with filters: {shown or 'none in this model'}"
        )
    return found, path


def filter_values(
    model,
    layer,
    *,
    view: str = "channel",
    channel: int = 0,
    filters=None,
) -> np.ndarray:
    """The raw (unnormalised) values shown for each filter.

    Args:
        model: a built ``keras.Model`` or ``LoadedModel``.
        layer: index, name, path or layer object (see ``get_layer``).
        view: ``"channel"`` (one input channel: ``kernel[:, :, channel, f]``), ``"rgb"``
            (the 3 input channels as colour), ``"mean"`` (mean over input channels),
            ``"maxabs"`` (largest absolute value over input channels) or ``"auto"`` (rgb
            for 3 input channels, else mean).
        channel: the input channel for ``view="channel"``.
        filters: a slice, list or array of filter indices (default: all).

    Returns:
        ``(n, kh, kw)`` float32, or ``(n, kh, kw, 3)`` for the rgb view.
    """
    found, path = _kernel_layer(model, layer)
    k = kernel_array(found)
    if filters is not None:
        k = k[..., filters] if isinstance(filters, slice) else k[..., np.asarray(filters)]
    return _view_values(k, view, channel, path)[0]


def _view_values(k: np.ndarray, view: str, channel: int, path: str) -> tuple[np.ndarray, str]:
    """``(values, resolved view)`` from a ``(kh, kw, in, n)`` kernel."""
    n_in = k.shape[2]
    if view == "auto":
        view = "rgb" if n_in == 3 else "mean"
    if view not in VIEWS:
        raise CnnvizError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    if view == "channel":
        if not -n_in <= channel < n_in:
            raise CnnvizError(
                f"input channel {channel} is out of range for {path!r}, whose filters see "
                f"{n_in} input channel(s): use 0..{n_in - 1}, or view='mean'"
            )
        return np.ascontiguousarray(k[:, :, channel, :].transpose(2, 0, 1)), view
    if view == "rgb":
        if n_in != 3:
            raise CnnvizError(
                f"the rgb view needs filters that see 3 input channels; {path!r} sees "
                f"{n_in}: use view='mean', 'maxabs' or 'channel'"
            )
        return np.ascontiguousarray(k.transpose(3, 0, 1, 2)), view
    if view == "mean":
        return np.ascontiguousarray(k.mean(axis=2).transpose(2, 0, 1)), view
    return np.ascontiguousarray(np.abs(k).max(axis=2).transpose(2, 0, 1)), view


def normalize(
    values: np.ndarray, mode: str = "filter", value_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """Scale filter values to [0, 1]; returns ``(scaled, (low, high))``.

    ``"filter"``: each filter to its own min..max (a constant filter becomes 0.5);
    ``"layer"``: every filter to one min..max; ``"symmetric"``: ``-m..m`` with ``m`` the
    largest absolute value, so zero maps to 0.5 (use a diverging colormap).  Pass
    ``value_range`` to reuse a range computed over a whole layer (paging).  For
    ``"filter"`` the range returned is the overall min..max, for information.
    """
    if mode not in NORMALIZATIONS:
        raise CnnvizError(f"unknown normalization {mode!r}: use one of {', '.join(NORMALIZATIONS)}")
    v = values.astype(np.float32, copy=False)
    if mode == "filter":
        axes = tuple(range(1, v.ndim))
        lo = v.min(axis=axes, keepdims=True)
        hi = v.max(axis=axes, keepdims=True)
        span = np.where(hi > lo, hi - lo, 1.0)
        scaled = np.where(hi > lo, (v - lo) / span, 0.5)
        overall = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
        return scaled.astype(np.float32), overall
    if value_range is None:
        if mode == "symmetric":
            m = float(np.abs(v).max()) if v.size else 0.0
            value_range = (-m, m) if m > 0 else (-1.0, 1.0)
        else:
            value_range = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
    lo, hi = value_range
    return ((v - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32), (lo, hi)


def to_rgba(scaled: np.ndarray, cmap: str | None = "gray") -> np.ndarray:
    """[0, 1] values to uint8 RGBA through a matplotlib colormap; ``cmap=None``: the last
    axis already holds RGB."""
    if cmap is None:
        rgb = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
        alpha = np.full((*rgb.shape[:-1], 1), 255, np.uint8)
        return np.concatenate([rgb, alpha], axis=-1)
    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError:
        raise CnnvizError(
            f"unknown colormap {cmap!r}: use a matplotlib colormap name such as 'gray', "
            "'viridis', 'RdBu_r'"
        ) from None
    return colormap(np.clip(scaled, 0.0, 1.0), bytes=True)


@dataclass(frozen=True)
class Montage:
    """All the filters of a layer tiled into one picture.

    Attributes:
        image: ``(height, width, 4)`` uint8 RGBA.
        order: the filter index shown at each tile, row by row.
        tile: ``(height, width)`` of a tile in pixels (after ``scale``).
        grid: ``(rows, columns)``.
        padding: pixels between tiles (and around them).
        layer: the layer's path.
        value_range: the ``(low, high)`` raw values the normalisation mapped to 0..1.
        view, normalization, cmap: how it was drawn.
    """

    image: np.ndarray
    order: np.ndarray
    tile: tuple[int, int]
    grid: tuple[int, int]
    padding: int
    layer: str
    value_range: tuple[float, float]
    view: str
    normalization: str
    cmap: str | None

    def tile_box(self, position: int) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of the tile at ``position`` (0 = first tile)."""
        row, col = divmod(position, self.grid[1])
        th, tw = self.tile
        p = self.padding
        return p + col * (tw + p), p + row * (th + p), tw, th

    def filter_at(self, x: float, y: float, nearest: bool = False) -> int | None:
        """The filter index under pixel ``(x, y)`` of the image, or ``None`` (padding,
        outside).  With ``nearest``, a point on the padding between two tiles goes to the
        nearer one (a click on the 1-pixel gap still picks a tile; the outer border not)."""
        th, tw = self.tile
        p = self.padding
        col, cx = divmod(int(x) - p, tw + p)
        row, cy = divmod(int(y) - p, th + p)
        rows, cols = self.grid
        if nearest and 0 <= col < cols - 1 and cx >= tw:  # between two tiles: the nearer
            col, cx = (col + 1, 0) if cx - tw >= p / 2 else (col, 0)
        if nearest and 0 <= row < rows - 1 and cy >= th:
            row, cy = (row + 1, 0) if cy - th >= p / 2 else (row, 0)
        if not (0 <= col < self.grid[1] and 0 <= row < self.grid[0]) or cx >= tw or cy >= th:
            return None
        position = row * self.grid[1] + col
        return int(self.order[position]) if position < len(self.order) else None


def tile_images(
    tiles: np.ndarray,
    columns: int | None = None,
    padding: int = 1,
    background=(40, 40, 40, 255),
) -> tuple[np.ndarray, tuple[int, int]]:
    """Tile ``(n, h, w, 4)`` uint8 images row by row; returns ``(image, (rows, columns))``."""
    n, h, w, c = tiles.shape
    if columns is None:
        columns = max(1, math.ceil(math.sqrt(n * h / max(w, 1))))
    columns = max(1, min(columns, max(n, 1)))
    rows = max(1, math.ceil(n / columns))
    out = np.empty((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    out[...] = np.asarray(background, np.uint8)
    full = np.zeros((rows * columns, h, w, c), np.uint8)
    full[:n] = tiles
    full[n:] = np.asarray(background, np.uint8)
    body = full.reshape(rows, columns, h, w, c)
    # place each tile at its slot inside the padded grid, in one strided assignment
    view = out[padding:, padding:].reshape(rows, h + padding, columns, w + padding, c)
    view[:, :h, :, :w] = body.transpose(0, 2, 1, 3, 4)
    return out, (rows, columns)


def select_indices(n: int, which, what: str, path: str) -> np.ndarray:
    """``arange(n)`` picked by ``which`` (``None``: all; an int, a list or a slice), with a
    message naming the valid range when an index is out of it.  ``what`` names the items
    ("filters", "channels") and ``path`` the layer, for that message."""
    index = np.arange(n)
    if which is None:
        return index
    try:
        index = index[which] if isinstance(which, slice) else index[np.asarray(which)]
    except IndexError:
        raise CnnvizError(
            f"{what} {which!r} out of range: {path!r} has {what} 0..{n - 1}; give indices "
            "in that range (a list of integers) or a slice"
        ) from None
    return np.atleast_1d(index)


def filter_montage(
    model,
    layer,
    *,
    view: str = "auto",
    channel: int = 0,
    normalization: str = "filter",
    cmap: str | None = None,
    sort: str | None = None,
    filters=None,
    scale: int | None = None,
    columns: int | None = None,
    padding: int = 1,
) -> Montage:
    """All filters of a convolution layer as one RGBA montage, in filter order.

    Args:
        model: a built ``keras.Model`` or ``LoadedModel``.
        layer: index, name, path (``"vgg16/block5_conv1"``) or layer object.
        view: ``"auto"`` (rgb when the layer sees 3 channels, else mean), ``"channel"``,
            ``"rgb"``, ``"mean"`` or ``"maxabs"`` (see :func:`filter_values`).
        channel: input channel for ``view="channel"``.
        normalization: ``"filter"``, ``"layer"`` or ``"symmetric"`` (see :func:`normalize`).
        cmap: matplotlib colormap for single-channel views; default ``"gray"``, or
            ``"RdBu_r"`` with ``"symmetric"``.  Ignored by the rgb view.
        sort: ``None`` (filter order) or ``"norm"`` (largest L2 norm first).
        filters: a slice or list of filter indices to show (for paging large layers).
        scale: pixels per kernel weight (default: tiles of about 24 px).
        columns: tiles per row (default: a near-square grid).
        padding: pixels between tiles.

    Returns:
        A :class:`Montage`; ``montage.image`` is ``(H, W, 4)`` uint8.
    """
    found, path = _kernel_layer(model, layer)
    k = kernel_array(found)
    n_filters = k.shape[3]
    index = select_indices(n_filters, filters, "filters", path)
    if sort == "norm":
        index = _by_norm(k, index)
    elif sort is not None:
        raise CnnvizError(f"unknown sort {sort!r}: use None or 'norm'")
    values, view = _view_values(k, view, channel, path)
    layer_range = None
    if normalization != "filter":  # the whole layer's range, so every page shares one scale
        _, layer_range = normalize(values, normalization)
    scaled, value_range = normalize(values[index], normalization, layer_range)
    cmap_used = None if view == "rgb" else (cmap or DEFAULT_CMAP.get(normalization, "gray"))
    tiles = to_rgba(scaled, cmap_used)
    kh, kw = tiles.shape[1:3]
    if scale is None:
        scale = max(1, min(16, math.ceil(TARGET_TILE_PX / max(kh, kw))))
    if scale > 1:
        tiles = np.repeat(np.repeat(tiles, scale, axis=1), scale, axis=2)
    image, grid = tile_images(tiles, columns=columns, padding=padding)
    return Montage(
        image=image,
        order=index,
        tile=(kh * scale, kw * scale),
        grid=grid,
        padding=padding,
        layer=path,
        value_range=value_range,
        view=view,
        normalization=normalization,
        cmap=cmap_used,
    )


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A display image as 3 channels (gray repeated, alpha dropped)."""
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image[..., :3]


def overlay_rgba(image, heat, cmap: str, opacity: float, weighted: bool) -> np.ndarray:
    """``heat`` (in [0, 1]) coloured by ``cmap`` over ``image``: opaque uint8 RGBA; with
    ``weighted`` each pixel's opacity is scaled by its heat."""
    if not 0.0 <= float(opacity) <= 1.0:
        raise CnnvizError(f"opacity is a fraction in [0, 1], got {opacity}")
    colour = to_rgba(heat, cmap)[..., :3].astype(np.float32) / 255.0
    a = float(opacity) * (np.clip(heat, 0.0, 1.0)[..., None] if weighted else 1.0)
    rgb = as_rgb(image) * (1.0 - a) + colour * a
    out = np.empty((*heat.shape, 4), np.uint8)
    out[..., :3] = np.clip(np.rint(rgb * 255.0), 0, 255)
    out[..., 3] = 255
    return out


def heat_rgba(heat, cmap: str, opacity: float, weighted: bool) -> np.ndarray:
    """``heat`` coloured by ``cmap`` as a layer of its own: its alpha is the opacity."""
    if not 0.0 <= float(opacity) <= 1.0:
        raise CnnvizError(f"opacity is a fraction in [0, 1], got {opacity}")
    out = to_rgba(heat, cmap).copy()
    alpha = float(opacity) * (np.clip(heat, 0.0, 1.0) if weighted else 1.0)
    out[..., 3] = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    return out
