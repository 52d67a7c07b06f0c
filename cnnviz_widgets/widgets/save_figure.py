"""A "save figure" control for any panel: a file name, a dpi, a Save button and a message.

The panel hands it what to draw as callables returning a ``matplotlib.figure.Figure``
(built by the results' own ``to_figure``: what the panel shows, at print resolution);
with several, a menu picks one.  The file's suffix picks the format (PNG, SVG, PDF).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..engine.figures import FIGURE_FORMATS, save_figure
from ..errors import CnnvizError
from .common import download_link, error_message

__all__ = ["SaveFigure", "atlas_figures", "gallery_figures", "optimizer_figures"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".pdf": "application/pdf"}


class SaveFigure(widgets.HBox):
    """File name + dpi + "Save figure" + a message (CSS class ``cnnviz-save-figure``).

    Args:
        figures: ``{label: callable}`` of what can be saved (each callable returns a
            ``matplotlib.figure.Figure``, or raises ``CnnvizError`` saying why there is
            nothing to draw yet), or one callable.
        filename: the default file name (its suffix picks the format).
        dpi: dots per inch (300: print).

    Attributes:
        filename, dpi, what, button, message: the controls.
        last_path: the last file written, or ``None``.
    """

    def __init__(
        self,
        figures: dict[str, Callable[[], Any]] | Callable[[], Any],
        filename: str = "figure.png",
        dpi: int = 300,
    ) -> None:
        if callable(figures):
            figures = {"figure": figures}
        self.figures = dict(figures)
        # the labels take their own width: at ipywidgets' default label width the dpi
        # box showed "30(" for 300
        label = {"description_width": "initial"}
        self.filename = widgets.Text(
            value=filename,
            description="figure",
            style=label,
            layout=widgets.Layout(width="260px"),
        )
        self.dpi = widgets.BoundedIntText(
            value=dpi,
            min=10,
            max=2400,
            description="dpi",
            style=label,
            layout=widgets.Layout(width="110px"),
        )
        self.what = widgets.Dropdown(
            options=list(self.figures), layout=widgets.Layout(width="150px")
        )
        self.what.layout.display = None if len(self.figures) > 1 else "none"
        self.button = widgets.Button(description="Save figure", icon="download")
        self.message = widgets.HTML()
        self.message.add_class("cnnviz-muted")
        self.last_path: Path | None = None
        self.button.on_click(lambda _: self.save())
        super().__init__([self.what, self.filename, self.dpi, self.button, self.message])
        self.add_class("cnnviz-controls")
        self.add_class("cnnviz-save-figure")

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Draw the chosen figure and write it to ``path`` (default: the file name box).
        Problems are shown in the control's message (and ``None`` returned)."""
        try:
            name = str(path) if path is not None else self.filename.value.strip()
            if Path(name).suffix.lower() not in FIGURE_FORMATS:
                raise CnnvizError(
                    f"cannot tell the figure format from {name!r}: end the file name with "
                    f"{', '.join(FIGURE_FORMATS)}"
                )
            folder = Path(name).expanduser().parent
            if not folder.is_dir():  # before drawing: say the cheap problem first
                raise CnnvizError(f"cannot save to {name!r}: folder {str(folder)!r} does not exist")
            fig = self.figures[self.what.value]()
            written = save_figure(fig, name, dpi=int(self.dpi.value))
        except Exception as err:  # shown in the panel, never raised into the kernel
            self.message.value = f'<span class="cnnviz-message-error">{error_message(err)}</span>'
            return None
        self.last_path = written
        data = written.read_bytes()
        w, h = fig.get_size_inches()
        size = f"{w:.1f} x {h:.1f} in at {int(self.dpi.value)} dpi"
        self.message.value = (
            download_link(str(written), data, _MIME[written.suffix.lower()]) + f" · {size}"
        )
        return written


# ------------------------------------------------------------- what each panel saves
def _need(value, why: str):
    if value is None:
        raise CnnvizError(why)
    return value


def gallery_figures(panel) -> dict:
    """The filter gallery's figure: the montage it shows."""
    from ..engine.figures import figure_of

    return {
        "filters": lambda: figure_of(
            _need(panel.montage, "no filters are shown yet: pick a layer with kernels")
        )
    }


def atlas_figures(panel) -> dict:
    """The unit atlas's figures: its grid, and the page of the unit shown."""

    def grid():
        return _need(panel.atlas, "the atlas is still opening: wait a moment").to_figure()

    def page():
        atlas = _need(panel.atlas, "the atlas is still opening: wait a moment")
        shown = _need(panel.shown, "no unit is shown: click one in the grid first")
        return atlas.unit(shown).to_figure()

    return {"atlas grid": grid, "unit page": page}


def optimizer_figures(panel) -> dict:
    """The class optimizer's figure: the run shown (images and objective curve)."""

    def result():
        record = _need(panel.shown, "no run yet: press Run first")
        return _need(record.result, "this run has no result (it failed)").to_figure()

    return {"run": result}


def explainer_figures(panel) -> dict:
    """The Explain panel's figures: the explanation shown (image, map and colour bars) and
    the feature maps shown."""

    def explanation():
        shown = "no explanation yet: pick an image and a method"
        return _need(panel.attribution, shown).to_figure()

    def feature_maps():
        shown = "no feature maps yet: pick an image and a layer"
        return _need(panel.features, shown).to_figure()

    return {"explanation": explanation, "feature maps": feature_maps}
