"""explore(model): every panel on one shared session, as tabs."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets

from ..errors import CnnvizError
from ..session import Session
from .class_optimizer import ClassOptimizer
from .common import error_message, esc, style_sheet
from .convolution_explainer import ConvolutionExplainer
from .filter_gallery import FilterGallery
from .layer_browser import LayerBrowser
from .unit_atlas import UnitAtlas

# (tab title, module, class): panels written elsewhere, shown when their module imports
OPTIONAL_PANELS = [
    ("Explain an image", "cnnviz_widgets.widgets.image_explainer", "ImageExplainer"),
]

PanelSpec = Any  # a widget, a panel class / factory taking the session, or (title, either)


class Explorer(widgets.VBox):
    """The panels of :func:`explore` in tabs over one :class:`Session`.

    Attributes:
        session: the shared session.
        panels: ``{tab title: panel widget}`` in tab order.
        tabs: the ``ipywidgets.Tab``.
    """

    def __init__(
        self, session: Session, panels: dict[str, widgets.Widget], scale: float = 1.0
    ) -> None:
        self.session = session
        self.scale = check_scale(scale)
        self.panels = panels
        self.head = widgets.HTML()
        self.head.add_class("cnnviz-explorer-head")
        self.tabs = widgets.Tab(children=list(panels.values()), titles=list(panels))
        self.tabs.add_class("cnnviz-explorer-tabs")
        super().__init__(
            [
                style_sheet(),
                style_sheet("explore"),
                scale_sheet(self.scale),
                self.head,
                self.tabs,
            ]
        )
        self.add_class("cnnviz-explorer")
        if self.scale != 1.0:
            self.add_class(scale_class(self.scale))
        self._observed = ["layer", "channel", "class_index"]
        session.observe(self._update_head, names=self._observed)
        self._update_head()

    def show(self, title: str) -> widgets.Widget:
        """Bring a tab to the front (by title); returns its panel."""
        names = list(self.panels)
        if title not in names:
            raise KeyError(f"no tab {title!r}: the tabs are {', '.join(names)}")
        self.tabs.selected_index = names.index(title)
        return self.panels[title]

    def _update_head(self, change: Any = None) -> None:
        s = self.session
        loaded = s.loaded
        parts = [f'<b class="cnnviz-model">{esc(loaded.name)}</b>']
        shape = tuple(loaded.model.inputs[0].shape) if len(loaded.model.inputs) == 1 else None
        if shape is not None:
            parts.append(f'<span class="cnnviz-sub">input {esc(shape[1:])}</span>')
        if s.n_classes:
            parts.append(f'<span class="cnnviz-sub">{s.n_classes} classes</span>')
        picked = []
        if s.layer is not None:
            picked.append(f"layer <code>{esc(s.layer)}</code>")
        if s.channel is not None:
            picked.append(f"channel <code>{s.channel}</code>")
        if s.class_index is not None:
            picked.append(f"class <code>{esc(s.class_name())}</code>")
        selection = " · ".join(picked) if picked else "nothing selected yet"
        self.head.value = " · ".join(parts) + f" &nbsp;—&nbsp; selected: {selection}"

    def close(self) -> None:
        """Close every panel (a running optimization is stopped) and the explorer."""
        if self._observed:  # close() may run twice (explicitly, then from __del__)
            self.session.unobserve(self._update_head, names=self._observed)
            self._observed = []
            for panel in self.panels.values():
                panel.close()
        super().close()


def check_scale(scale: Any) -> float:
    """``scale`` as a float in [0.5, 4], or a message naming the problem."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise CnnvizError(f"scale must be a number such as 1.5, got {scale!r}")
    if not 0.5 <= float(scale) <= 4:
        raise CnnvizError(f"scale {scale} is outside 0.5..4: 1.5 suits a projector, 2 a large room")
    return float(scale)


def scale_class(scale: float) -> str:
    """The CSS class that enlarges a widget ``scale`` times (``cnnviz-scale-150``)."""
    return f"cnnviz-scale-{round(scale * 100)}"


def scale_sheet(scale: float) -> widgets.HTML:
    """A style sheet enlarging everything inside ``.cnnviz-scale-N`` ``scale`` times: text,
    canvases and pictures together (CSS ``zoom``: the layout reflows at the larger size,
    and clicks on a canvas land where they are drawn)."""
    if scale == 1.0:
        return widgets.HTML("")
    return widgets.HTML(f"<style>.{scale_class(scale)} {{ zoom: {scale:g}; }}</style>")


def _optional_panels() -> list[tuple[str, Callable[[Session], widgets.Widget]]]:
    found = []
    for title, module_name, class_name in OPTIONAL_PANELS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # not written yet, or its dependencies are missing
        cls = getattr(module, class_name, None)
        if cls is not None:
            found.append((title, cls))
    return found


def _error_tab(err: BaseException) -> widgets.HTML:
    tab = widgets.HTML(f'<div class="cnnviz-message-error">{error_message(err)}</div>')
    tab.add_class("cnnviz-panel")
    return tab


def explore(
    model: Any,
    *,
    extra_panels: Sequence[PanelSpec] = (),
    data: Any = None,
    scale: float = 1.0,
    **load_kwargs: Any,
) -> Explorer:
    """Every panel of cnnviz_widgets on one model, in tabs that share one session.

    Args:
        model: a :class:`~cnnviz_widgets.session.Session`, or anything ``load_model``
            takes (``"shapes"``, ``"vgg16"``, a path, a ``keras.Model``).
        extra_panels: more tabs: each a widget, a class or function called with the
            session (``MyPanel``), or a ``(title, widget_or_class)`` pair.
        data: a data set for the unit atlas's dataset examples (see :class:`UnitAtlas`;
            default for the embedded shapes models: generated shapes images).
        scale: how much larger everything is shown: text, numbers and pictures together
            (``1.5`` for a projector; 0.5 to 4).
        **load_kwargs: passed to ``load_model`` when a model is given (``weights=None``).

    Returns:
        An :class:`Explorer` widget (tabs: Layers, Filters, Class optimization, the image
        explainer when it is installed, the unit atlas and Convolution).  Its session is
        ``.session``::

            app = cw.explore("shapes")
            app                      # show it
            app.session.layer = "conv2"
    """
    scale = check_scale(scale)  # before any work: a bad scale is a message at once
    session = Session.of(model, **load_kwargs)
    specs: list[tuple[str, Any]] = [
        ("Layers", LayerBrowser),
        ("Filters", FilterGallery),
        ("Class optimization", ClassOptimizer),
        *_optional_panels(),
        ("Unit atlas", lambda s: UnitAtlas(s, data)),
        ("Convolution", ConvolutionExplainer),
    ]
    for spec in extra_panels:
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            specs.append(spec)
        else:
            if isinstance(spec, widgets.Widget):
                title = type(spec).__name__
            else:
                title = getattr(spec, "__name__", type(spec).__name__)
            specs.append((title, spec))
    panels: dict[str, widgets.Widget] = {}
    for title, spec in specs:
        try:
            panel = spec if isinstance(spec, widgets.Widget) else spec(session)
        except Exception as err:  # one broken panel must not take the others down
            panel = _error_tab(err)
        while title in panels:
            title += " "
        panels[title] = panel
    return Explorer(session, panels, scale)
