"""keras-vis' API (``vis.visualization``, ``vis.utils.utils``) on the cnnviz_widgets engine.

Code written for keras-vis runs with only its imports changed::

    # from vis.visualization import visualize_activation
    # from vis.utils import utils
    from cnnviz_widgets.compat.keras_vis.visualization import visualize_activation
    from cnnviz_widgets.compat.keras_vis import utils

keras-vis has been broken since TensorFlow 2; this module reimplements the calls the keras-vis
CNN-visualization tutorial uses on the compiled engine.  ``apply_modifications`` returns a
new model and never saves, reloads or changes the one you pass.
"""

from . import utils, visualization
from .utils import apply_modifications, find_layer_idx
from .visualization import visualize_activation

__all__ = [
    "apply_modifications",
    "find_layer_idx",
    "utils",
    "visualization",
    "visualize_activation",
]
