"""Figures for papers: each result kind drawn as a ``matplotlib.figure.Figure`` (titles,
colour bars, labelled grids), and saved as PNG, SVG or PDF by the file's suffix.

Built on :class:`matplotlib.figure.Figure` with the Agg canvas, never pyplot: nothing is
shown, no global figure manager is touched, and it works without a display or Jupyter.
Results reach these functions through ``result.to_figure()`` and
``result.save_figure(path)`` (:class:`.base.Figured`); the builders register themselves per
result class in :mod:`.base`.
"""

from .base import FIGURE_FORMATS, Figured, figure_of, save_figure

__all__ = ["FIGURE_FORMATS", "Figured", "figure_of", "save_figure"]
