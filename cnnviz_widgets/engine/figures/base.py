"""The figure machinery: the :class:`Figured` mixin, the builder registry, a figure on the
Agg canvas, and saving by suffix."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...errors import CnnvizError

__all__ = ["FIGURE_FORMATS", "Figured", "figure_of", "new_figure", "register", "save_figure"]

FIGURE_FORMATS = (".png", ".svg", ".pdf")
# the modules whose builders register themselves on import (imported on first use, so
# that importing the engine does not load matplotlib's figure machinery)
_BUILDER_MODULES = ("attribution", "examples", "layers", "optvis", "atlas")
_BUILDERS: dict[str, Callable] = {}


def register(*class_names: str):
    """Decorator: ``fn(result, *, size=None, **options) -> Figure`` draws results whose
    class (or a base class) is named one of ``class_names``."""

    def deco(fn):
        for name in class_names:
            _BUILDERS[name] = fn
        return fn

    return deco


def builder_for(cls: type) -> Callable:
    """The figure builder of ``cls``: its own, else its nearest base class's."""
    if not _BUILDERS:
        for name in _BUILDER_MODULES:
            importlib.import_module(f"{__package__}.{name}")
    for klass in cls.__mro__:
        if klass.__name__ in _BUILDERS:
            return _BUILDERS[klass.__name__]
    raise CnnvizError(f"no figure is defined for a {cls.__name__}")


def figure_of(result, **options):
    """The figure of any result with a builder (those without :class:`Figured`, such as a
    filter :class:`~..layers.filters.Montage`, too)."""
    return builder_for(type(result))(result, **options)


class Figured:
    """``to_figure()`` and ``save_figure(path)`` for a result (see :mod:`..figures`)."""

    def to_figure(self, **options):
        """This result as a ``matplotlib.figure.Figure`` with titles, colour bars and
        labelled panels (options: ``size=(width, height)`` in inches, and per result
        kind: see ``help(type(result).to_figure)`` and :mod:`cnnviz_widgets.engine.figures`).

        The figure is not shown anywhere: display it in a notebook by leaving it as the
        cell's value, or save it with :meth:`save_figure`."""
        return builder_for(type(self))(self, **options)

    def save_figure(self, path, *, dpi: int = 300, size=None, **options) -> Path:
        """Draw this result (:meth:`to_figure`) and write it to ``path``: PNG, SVG or PDF
        by the suffix.

        Args:
            path: a ``.png``, ``.svg`` or ``.pdf`` file name.
            dpi: dots per inch of the PNG (and of the images inside an SVG/PDF); 300 is
                print resolution.
            size: ``(width, height)`` in inches (default: the figure's own).
            **options: passed to :meth:`to_figure`.

        Returns:
            The path written.
        """
        _check_suffix(path)
        return save_figure(self.to_figure(size=size, **options), path, dpi=dpi)


def new_figure(size, default: tuple[float, float]):
    """An empty figure on the Agg canvas, laid out by matplotlib's constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, h = _size(size, default)
    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _size(size, default) -> tuple[float, float]:
    if size is None:
        return float(default[0]), float(default[1])
    try:
        w, h = (float(v) for v in size)
    except (TypeError, ValueError):
        raise CnnvizError(f"size is (width, height) in inches, got {size!r}") from None
    if not (0 < w <= 100 and 0 < h <= 100):
        raise CnnvizError(f"size is (width, height) in inches, each in (0, 100], got {size!r}")
    return w, h


def _check_suffix(path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_FORMATS:
        raise CnnvizError(
            f"cannot tell the figure format from {str(path)!r}: end the name with "
            f"{', '.join(FIGURE_FORMATS)}"
        )
    return suffix


def save_figure(fig, path, *, dpi: int = 300, size=None) -> Path:
    """Write a ``matplotlib.figure.Figure`` to ``path`` (PNG, SVG or PDF by suffix).

    Args:
        fig: the figure.
        path: the file; its folder must exist.
        dpi: dots per inch (PNG; images embedded in SVG/PDF).
        size: ``(width, height)`` in inches to resize the figure to first.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = _check_suffix(path)
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise CnnvizError(
            f"cannot save to {str(path)!r}: folder {str(path.parent)!r} does not exist"
        )
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not 10 <= dpi <= 2400:
        raise CnnvizError(f"dpi is a number of dots per inch in 10..2400, got {dpi!r}")
    if size is not None:
        fig.set_size_inches(*_size(size, (1, 1)))
    if fig.canvas is None or not hasattr(fig.canvas, "print_figure"):
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi, format=suffix[1:])
    return path


# ---------------------------------------------------------------------------- drawing
def show(ax, image, title: str | None = None, **kw):
    """An image in an axes without ticks; uint8 or floats in [0, 1], gray or RGB(A)."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim == 2 and "cmap" not in kw:
        kw["cmap"] = "gray"
        if img.dtype == np.uint8:
            kw.setdefault("vmin", 0)
            kw.setdefault("vmax", 255)
    elif img.dtype != np.uint8 and img.ndim == 3:
        img = np.clip(img, 0.0, 1.0)
    im = ax.imshow(img, interpolation="nearest", **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return im


def blank(ax, text: str = "") -> None:
    """An empty panel (no image) with an optional word in the middle."""
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if text:
        ax.text(
            0.5,
            0.5,
            text,
            ha="center",
            va="center",
            fontsize=8,
            color="0.4",
            transform=ax.transAxes,
        )
