"""The visualization engine: Keras, TensorFlow, numpy and matplotlib colormaps only.

Never imports ipywidgets, IPython or pyplot; tested without Jupyter.
"""

from .filters import Montage, filter_montage, filter_values, kernel_array
from .images import SAMPLE_NAMES, sample_image
from .introspect import (
    LayerRow,
    LayerTable,
    first_conv_per_block,
    get_layer,
    iter_layers,
    layer_table,
)
from .models import (
    MODEL_NAMES,
    LoadedModel,
    imagenet_class_names,
    load_model,
    softmax_position,
)
from .preprocessing import PREPROCESSINGS, Preprocessing
from .shapes import CLASS_NAMES as SHAPES_CLASS_NAMES
from .shapes import ShapesBatch, generate_shapes

__all__ = [
    "MODEL_NAMES",
    "PREPROCESSINGS",
    "SAMPLE_NAMES",
    "SHAPES_CLASS_NAMES",
    "LayerRow",
    "LayerTable",
    "LoadedModel",
    "Montage",
    "Preprocessing",
    "ShapesBatch",
    "filter_montage",
    "filter_values",
    "first_conv_per_block",
    "generate_shapes",
    "get_layer",
    "imagenet_class_names",
    "iter_layers",
    "kernel_array",
    "layer_table",
    "load_model",
    "sample_image",
    "softmax_position",
]
