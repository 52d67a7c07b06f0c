"""Figures of a layer's activations on one image."""

from __future__ import annotations

import math

import numpy as np

from ...errors import CnnvizError
from .base import blank, new_figure, register, show


@register("FeatureMaps")
def feature_maps_figure(
    fm,
    *,
    channels=None,
    k: int = 16,
    by: str = "mean",
    columns: int | None = None,
    size=None,
    cmap: str = "viridis",
):
    """The image and a labelled grid of channels with one shared colour scale.

    Args:
        channels: the channels to draw (default the ``k`` largest by ``by``).
        k: how many channels by default.
        by: the statistic that picks them: ``"mean"``, ``"max"``, ``"std"``, ``"active"``.
        columns: grid columns (default about square).
        size: ``(width, height)`` in inches.
        cmap: the maps' colormap.
    """
    chosen = fm.top(k, by) if channels is None else np.atleast_1d(channels).astype(int)
    n = fm.maps.shape[-1]
    bad = [int(c) for c in chosen if not 0 <= c < n]
    if bad or not len(chosen):
        raise CnnvizError(f"channels must be in 0..{n - 1}, got {bad or 'none'}")
    cols = int(columns) if columns else max(1, math.ceil(math.sqrt(len(chosen) + 1)))
    rows = math.ceil((len(chosen) + 1) / cols)
    fig = new_figure(size, (1.6 * cols + 1.0, 1.6 * rows + 0.6))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False)).ravel()
    show(axes[0], fm.image, "image")
    maps = fm.maps[..., chosen]
    top = float(maps.max()) if maps.size else 1.0
    low = min(0.0, float(maps.min())) if maps.size else 0.0
    im = None
    for i, c in enumerate(chosen, 1):
        im = show(
            axes[i],
            fm.maps[..., c],
            f"ch {int(c)}",
            cmap=cmap,
            vmin=low,
            vmax=top if top > low else low + 1.0,
        )
    for ax in axes[len(chosen) + 1 :]:
        blank(ax)
    fig.colorbar(im, ax=list(axes), shrink=0.6, label="activation")
    h, w = fm.maps.shape[:2]
    how = f"the {len(chosen)} largest by {by}" if channels is None else f"{len(chosen)} channels"
    fig.suptitle(f"{fm.layer}: {h}x{w} maps, {how} of {n}", fontsize=10)
    return fig


@register("Montage")
def montage_figure(montage, *, size=None, numbers: bool = True):
    """A filter montage (what the filter gallery shows) with its layer, view and the raw
    value range the colours span; each tile numbered with its filter index.

    Args:
        size: ``(width, height)`` in inches (default: by the montage's pixel size).
        numbers: write each tile's filter index in its corner.
    """
    h, w = montage.image.shape[:2]
    scale = 7.0 / max(h, w)
    fig = new_figure(size, (max(3.0, w * scale) + 1.2, max(2.5, h * scale) + 0.6))
    ax = fig.subplots()
    show(ax, montage.image)
    if numbers and len(montage.order) <= 256:
        for position, index in enumerate(montage.order):
            x, y, _, _ = montage.tile_box(position)
            ax.text(
                x + 1,
                y + 1,
                str(int(index)),
                fontsize=5,
                color="white",
                va="top",
                ha="left",
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.5, "lw": 0},
            )
    low, high = montage.value_range
    if montage.cmap:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        bar = ScalarMappable(Normalize(low, high), montage.cmap)
        fig.colorbar(bar, ax=ax, shrink=0.7, label="weight")
    fig.suptitle(
        f"{montage.layer}: {len(montage.order)} filters ({montage.view}, "
        f"{montage.normalization} scale, {low:.3g} .. {high:.3g})",
        fontsize=10,
    )
    return fig
