"""cnnviz_widgets: look inside a convolutional network from a Jupyter notebook.

The engine (``cnnviz_widgets.engine``) is pure Keras/TensorFlow/numpy; its public names are
re-exported here::

    import cnnviz_widgets as cw
    m = cw.load_model("shapes")            # the embedded, offline model
    print(cw.layer_table(m))               # every layer, nested models included
    montage = cw.filter_montage(m, "conv1")  # the kernels as one RGBA image

The panels (Jupyter widgets, loaded on first use so that a script imports no widget
module) are thin views over one shared :class:`Session`::

    cw.explore("shapes")          # every panel in tabs over one session: start here
    cw.LayerBrowser(m)            # the layers, their configs and shapes
    cw.FilterGallery(m)           # a layer's kernels; click one for its numbers
    cw.ConvolutionExplainer(m)    # one output value of a convolution, worked out
    cw.ClassOptimizer(m)          # the picture each class answers most
    cw.ImageExplainer(m)          # saliency, Grad-CAM, occlusion on an image
    cw.UnitAtlas(m)               # every unit: visualization, dataset examples, weights

``help(cw.explore)`` and each panel's help say more.  ``cw.classroom`` holds the
self-checks of the exercise notebooks (``notebooks/exercises``).
"""

from .tflog import import_tensorflow

# first, before anything imports TensorFlow: without its start-up lines in the notebook
# (unless TF_CPP_MIN_LOG_LEVEL is set: see cnnviz_widgets/tflog.py)
import_tensorflow()

from . import classroom, objectives  # noqa: E402
from .engine import *  # noqa: E402, F403
from .engine import __all__ as _engine_all  # noqa: E402
from .errors import (  # noqa: E402
    CnnvizError,
    LayerNotFoundError,
    ModelNotBuiltError,
    ModelSourceError,
    NoKernelError,
)
from .session import SelectionError, Session  # noqa: E402

__version__ = "0.1.0"

# The panels import ipywidgets and ipycanvas: load them on first use, so that importing
# the engine (or the package in a script) loads no widget module.
_WIDGETS = (
    "ClassOptimizer",
    "ConvolutionExplainer",
    "FilterGallery",
    "ImageExplainer",
    "LayerBrowser",
    "UnitAtlas",
    "explore",
)


def __getattr__(name: str):
    if name in _WIDGETS:
        from . import widgets

        return getattr(widgets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    *_engine_all,
    "CnnvizError",
    "LayerNotFoundError",
    "ModelNotBuiltError",
    "ModelSourceError",
    "NoKernelError",
    "SelectionError",
    "Session",
    "classroom",
    "objectives",
    *_WIDGETS,
]
