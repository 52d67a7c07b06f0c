"""Figures of activation maximization: the images and the objective along the run."""

from __future__ import annotations

import numpy as np

from .base import new_figure, register, show


@register("Result")
def optimization_figure(res, *, size=None, history: bool = True, alpha: bool = False):
    """The optimized images (each titled with its final objective) and, beside them, the
    objective per step for each image.

    Args:
        size: ``(width, height)`` in inches.
        history: draw the objective's curve.
        alpha: draw the transparency map (where the model took its evidence) under each
            image, when the run has one.
    """
    b = len(res.images)
    with_alpha = alpha and res.alpha is not None
    rows = 2 if with_alpha else 1
    cols = b + (1 if history else 0)
    fig = new_figure(size, (2.0 * b + (3.2 if history else 0), 2.2 * rows + 0.5))
    grid = fig.add_gridspec(rows, cols, width_ratios=[1] * b + ([1.8] if history else []))
    last = res.history[-1] if len(res.history) else np.full(b, np.nan)
    for i in range(b):
        show(fig.add_subplot(grid[0, i]), res.images[i], f"#{i}: {last[i]:.3g}")
        if with_alpha:
            im = show(
                fig.add_subplot(grid[1, i]), res.alpha[i], "evidence", cmap="magma", vmin=0, vmax=1
            )
    if with_alpha:
        fig.colorbar(im, ax=fig.axes[-1], shrink=0.8)
    if history:
        ax = fig.add_subplot(grid[:, b])
        steps = np.arange(1, len(res.history) + 1)
        for i in range(b):
            ax.plot(steps, res.history[:, i], lw=1, label=f"#{i}")
        ax.set_xlabel("step")
        ax.set_ylabel("objective")
        ax.grid(alpha=0.3)
        if 1 < b <= 8:
            ax.legend(fontsize=7)
    state = "stopped" if res.stopped else (res.error or "done")
    fig.suptitle(f"{res.objective or 'objective'}: {res.steps} steps ({state})", fontsize=10)
    return fig
