"""Figures of a unit atlas: the grid of visualizations, and one unit's page."""

from __future__ import annotations

import math

import numpy as np

from ...errors import CnnvizError
from .base import blank, new_figure, register, show
from .examples import outline_box


def _health_word(unit) -> str:
    fired, seen = getattr(unit, "fired", None), getattr(unit, "seen", None)
    if fired is None or not seen:
        return ""
    from ..dataset.unit_health import health_of

    word = health_of(int(fired), int(seen))
    return "" if word == "alive" else f" ({word})"


@register("Atlas")
def atlas_figure(atlas, *, units=None, columns: int | None = None, size=None):
    """The atlas as a labelled grid: each unit's visualization titled with its channel (a
    dead or near-dead unit says so; a unit not computed yet is an empty cell).

    Args:
        units: the channels to draw (default the atlas's, at most 64).
        columns: grid columns (default about square).
        size: ``(width, height)`` in inches.
    """
    chosen = list(atlas.units[:64]) if units is None else [int(u) for u in np.atleast_1d(units)]
    if not chosen:
        raise CnnvizError("no unit to draw: pass units=[...]")
    cols = int(columns) if columns else max(1, math.ceil(math.sqrt(len(chosen))))
    rows = math.ceil(len(chosen) / cols)
    fig = new_figure(size, (1.3 * cols + 0.4, 1.45 * rows + 0.6))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, c in zip(axes, chosen):
        unit = atlas.unit(c)
        if unit.image is None:
            blank(ax, f"ch {c}\nnot computed")
        else:
            show(ax, unit.image, f"ch {c}{_health_word(unit)}")
    for ax in axes[len(chosen) :]:
        blank(ax)
    fig.suptitle(f"{atlas.layer}: {len(chosen)} units", fontsize=10)
    return fig


@register("AtlasUnit")
def atlas_unit_figure(unit, *, k: int = 6, size=None):
    """One unit's page: its visualization, its filter, and its best dataset images with the
    peak's cell (titled with their scores), the classes it feeds, and whether it is dead.

    Args:
        k: dataset images drawn, at most.
        size: ``(width, height)`` in inches.
    """
    examples = unit.examples if unit.examples is not None else np.zeros((0, 1, 1, 3), np.uint8)
    m = min(int(k), len(examples))
    cols = 2 + max(m, 1)
    fig = new_figure(size, (1.6 * cols, 2.3))
    axes = fig.subplots(1, cols)
    if unit.image is None:
        blank(axes[0], "not computed")
    else:
        value = "" if unit.value is None else f"\nvalue {unit.value:.3g}"
        show(axes[0], unit.image, f"visualization{value}")
    if unit.kernel is None:
        blank(axes[1], "no kernel")
    else:
        show(axes[1], unit.kernel, f"filter\n{unit.kernel_view or ''}")
    if m == 0:
        blank(axes[2], "no examples")
    for j in range(m):
        score = unit.example_scores[j] if unit.example_scores is not None else float("nan")
        show(axes[2 + j], examples[j], f"#{j + 1}: {score:.3g}")
        if unit.example_boxes is not None and unit.health != "dead":
            outline_box(axes[2 + j], unit.example_boxes[j])
    title = f"{unit.layer}, channel {unit.channel}{_health_word(unit)}"
    fired, seen = getattr(unit, "fired", None), getattr(unit, "seen", None)
    if fired is not None and seen:
        title += f": fired on {fired} of {seen} images"
    if unit.classes:
        title += "\nfeeds " + ", ".join(f"{n} ({w:+.2f})" for _, n, w in unit.classes)
    fig.suptitle(title, fontsize=10)
    return fig
