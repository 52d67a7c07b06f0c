"""Jupyter panels over one shared :class:`~cnnviz_widgets.session.Session`.

Pure ipywidgets + ipycanvas (no custom JavaScript): they run in JupyterLab, Notebook 7,
Voila and VS Code.  Every panel accepts a model or a session::

    from cnnviz_widgets.widgets import (
        ClassOptimizer, ConvolutionExplainer, FilterGallery, ImageExplainer, LayerBrowser,
        explore,
    )
    from cnnviz_widgets.session import Session

    session = Session("shapes")
    LayerBrowser(session)   # pick a layer ...
    FilterGallery(session)  # ... and see its filters
    ClassOptimizer(session) # ... and the image a class or a filter responds to most
    ImageExplainer(session) # ... and where in one image the evidence for a class is
    UnitAtlas(session)      # ... and every unit of a layer with its dataset examples
    ConvolutionExplainer(session)  # ... and how one value of a feature map is computed

    explore("shapes")       # all of them in tabs, on one session
"""

from ..session import SelectionError, Session
from .canvas import PixelCanvas, safe_hold, zoom_nearest
from .class_optimizer import ClassOptimizer
from .common import MessageArea, Panel
from .convolution_explainer import ConvolutionExplainer
from .explore import Explorer, explore
from .filter_gallery import FilterGallery
from .image_explainer import ImageExplainer
from .layer_browser import LayerBrowser
from .unit_atlas import UnitAtlas

__all__ = [
    "ClassOptimizer",
    "ConvolutionExplainer",
    "Explorer",
    "FilterGallery",
    "ImageExplainer",
    "LayerBrowser",
    "MessageArea",
    "Panel",
    "PixelCanvas",
    "SelectionError",
    "Session",
    "UnitAtlas",
    "explore",
    "safe_hold",
    "zoom_nearest",
]
