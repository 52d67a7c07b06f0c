"""The objective curve of a class-optimization run: one SVG line per image of the batch."""

from __future__ import annotations

import numpy as np

from .common import fmt_value

MAX_CURVE_POINTS = 160  # points per line (the message stays small however long the run)
# one colour per image of a batch: its curve, and a swatch by its caption
PALETTE = [
    "#4e9af1", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948", "#76b7b2", "#ff9da7",
    "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf",
]  # fmt: skip

__all__ = ["MAX_CURVE_POINTS", "PALETTE", "curve_svg"]


def curve_svg(
    steps: np.ndarray,
    values: np.ndarray,
    total_steps: int,
    width: int = 300,
    height: int = 150,
) -> str:
    """The objective per step as an inline SVG, one line per image (the palette's colours).

    ``steps``: ``(n,)``; ``values``: ``(n, B)``.  Long histories are thinned to
    ``MAX_CURVE_POINTS`` points (the message stays small however long the run).
    """
    left, right, top, bottom = 46, 10, 18, 22
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="10.5">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
        'stroke="currentColor" stroke-opacity="0.25"/>',
        f'<text x="{left}" y="{top - 6}" fill="currentColor" fill-opacity="0.75">'
        "objective (maximized)</text>",
    ]
    values = np.asarray(values, np.float64).reshape(len(steps), -1) if len(steps) else values
    finite = np.isfinite(values) if len(steps) else np.zeros(0, bool)
    if len(steps) and finite.any():
        low, high = float(values[finite].min()), float(values[finite].max())
        if high - low < 1e-9:
            low, high = low - 1.0, high + 1.0
        span = high - low
        low, high = low - 0.05 * span, high + 0.05 * span
        xmax = max(int(total_steps), int(steps[-1]), 1)
        idx = np.unique(
            np.linspace(0, len(steps) - 1, min(len(steps), MAX_CURVE_POINTS)).astype(int)
        )
        xs = left + pw * np.asarray(steps, np.float64)[idx] / xmax
        if low < 0 < high:  # the zero line
            y0 = top + ph * (high - 0.0) / (high - low)
            parts.append(
                f'<line x1="{left}" x2="{left + pw}" y1="{y0:.1f}" y2="{y0:.1f}" '
                'stroke="currentColor" stroke-opacity="0.2" stroke-dasharray="3 3"/>'
            )
        for j in range(values.shape[1]):
            ys = top + ph * (high - values[idx, j]) / (high - low)
            ok = np.isfinite(ys)
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[ok], ys[ok]))
            color = PALETTE[j % len(PALETTE)]
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" '
                'stroke-width="1.6" stroke-linejoin="round"/>'
            )
        for v, y in ((high, top + 9), (low, top + ph)):
            parts.append(
                f'<text x="{left - 5}" y="{y:.1f}" text-anchor="end" fill="currentColor" '
                f'fill-opacity="0.7">{fmt_value(v)}</text>'
            )
        parts.append(
            f'<text x="{left}" y="{height - 6}" fill="currentColor" fill-opacity="0.7">0</text>'
            f'<text x="{left + pw}" y="{height - 6}" text-anchor="end" fill="currentColor" '
            f'fill-opacity="0.7">step {xmax}</text>'
        )
    else:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" '
            'fill="currentColor" fill-opacity="0.55">the curve appears when a run starts</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
