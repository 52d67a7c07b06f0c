"""The ClassOptimizer's read-outs beside the preview: the objective curve, the shown run's
summary and its PNG/GIF export buttons, as one part with its own box."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .common import row
from .objective_curve import curve_svg


def _export_button(description: str, icon: str, tooltip: str) -> widgets.Button:
    return widgets.Button(
        description=description,
        icon=icon,
        tooltip=tooltip,
        disabled=True,
        layout=widgets.Layout(width="84px"),
    )


class Readouts:
    """The curve (``curve``, CSS class ``cnnviz-curve``), the summary (``result_info``),
    the export buttons (``save_png``, ``save_gif``) and their status line
    (``export_status``); ``box`` holds them in a column."""

    def __init__(self) -> None:
        self.curve = widgets.HTML(curve_svg(np.zeros(0), np.zeros((0, 1)), 1))
        self.curve.add_class("cnnviz-curve")
        self.result_info = widgets.HTML()
        self.result_info.add_class("cnnviz-result-info")
        self.save_png = _export_button("PNG", "download", "write the shown images to a PNG file")
        self.save_gif = _export_button("GIF", "film", "write the shown run as an animated GIF")
        self.export_status = widgets.HTML()
        self.export_status.add_class("cnnviz-muted")
        self.box = widgets.VBox(
            [self.curve, self.result_info, row(self.save_png, self.save_gif), self.export_status],
            layout=widgets.Layout(flex="0 1 316px", padding="0 0 0 14px"),
        )

    def clear(self, steps: int) -> None:
        """A run starts: an empty curve for ``steps``, no summary, nothing to export."""
        self.result_info.value = ""
        self.export_status.value = ""
        self.curve.value = curve_svg(np.zeros(0), np.zeros((0, 1)), steps)
        self.save_png.disabled = self.save_gif.disabled = True

    def show_curve(self, steps: np.ndarray, values: np.ndarray, total: int) -> None:
        """The objective per image over ``steps`` of ``total``."""
        self.curve.value = curve_svg(steps, values, total)
