"""Figures of dataset examples: one row per unit, its best images with the peak's cell."""

from __future__ import annotations

import numpy as np

from ...errors import CnnvizError
from .base import blank, new_figure, register, show


def outline_box(ax, box, color: str = "yellow"):
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    ax.add_patch(
        Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2, edgecolor=color)
    )


def unit_label(top, unit: int) -> str:
    """The row's label: the unit's name, and a warning for a dead or near-dead unit."""
    label = top.name(unit)
    flag = getattr(top, "health", None)
    if flag is not None:
        word = flag(unit)
        if word != "alive":
            label += f"\n{word.upper()}: fired on {top.fired_on(unit)}/{top.seen}"
    return label


@register("TopExamples")
def top_examples_figure(
    top, *, units=None, k: int | None = None, size=None, boxes: bool = True, scores: bool = True
):
    """A grid: one row per unit (labelled with its name and, for a dead or near-dead unit,
    how many images it fired on), its best images left to right with the score and the map
    cell where the unit peaks.

    Args:
        units: the units (channels or classes) to draw, default the first 8 ranked.
        k: images per row (default all kept, at most 8).
        size: ``(width, height)`` in inches.
        boxes: draw the peak's cell.
        scores: write each image's score above it.
    """
    if units is None:
        units = [int(u) for u in top.units[:8]]
    else:
        units = [int(u) for u in np.atleast_1d(units)]
    if not units:
        raise CnnvizError("no unit to draw: pass units=[...] with at least one")
    for u in units:
        top.row(u)  # a clear error for a unit that was not ranked
    cols = min(int(k), top.k) if k else min(top.k, 8)
    fig = new_figure(size, (1.25 * cols + 1.2, 1.35 * len(units) + 0.6))
    axes = np.atleast_2d(fig.subplots(len(units), cols, squeeze=False))
    for i, u in enumerate(units):
        images = top.images(u)
        r = top.row(u)
        dead = top.fired is not None and top.fired_on(u) == 0  # ties: no peak to show
        for j in range(cols):
            ax = axes[i, j]
            if j >= len(images):
                blank(ax, "no image")
            else:
                title = f"{top.scores[r, j]:.3g}" if scores else None
                show(ax, images[j], title)
                box = top.box(u, j) if boxes and not dead else None
                if box is not None:
                    outline_box(ax, box)
            if j == 0:
                ax.set_ylabel(unit_label(top, u), fontsize=8, rotation=0, ha="right", va="center")
    what = "log-odds" if top.kind == "class" else f"{top.score} activation"
    seen = f"{top.seen} images" + (" (stopped)" if top.stopped else "")
    fig.suptitle(f"{top.layer}: top images per {top.kind} ({what}; {seen})", fontsize=10)
    return fig
