"""Jupyter panels over one shared :class:`~cnnviz_widgets.session.Session`.

Pure ipywidgets + ipycanvas (no custom JavaScript): they run in JupyterLab, Notebook 7,
Voila and VS Code.  Every panel accepts a model or a session::

    from cnnviz_widgets.widgets import FilterGallery, LayerBrowser
    from cnnviz_widgets.session import Session

    session = Session("shapes")
    LayerBrowser(session)   # pick a layer ...
    FilterGallery(session)  # ... and see its filters
"""

from ..session import SelectionError, Session
from .canvas import PixelCanvas, safe_hold, zoom_nearest
from .common import MessageArea, Panel
from .filter_gallery import FilterGallery
from .layer_browser import LayerBrowser

__all__ = [
    "FilterGallery",
    "LayerBrowser",
    "MessageArea",
    "Panel",
    "PixelCanvas",
    "SelectionError",
    "Session",
    "safe_hold",
    "zoom_nearest",
]
