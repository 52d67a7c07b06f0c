"""The model: loading (embedded, keras.applications, files), the one door to Keras
internals, introspection, taps, reduced precision, run budgets, images in and samples."""

from .adversarial import adversarial_examples, robust_accuracy
from .budget import LongRunWarning, RunTooLargeError
from .imageio import ImageAdjustedWarning, load_image
from .images import SAMPLE_NAMES, sample_image
from .introspect import (
    LayerRow,
    LayerTable,
    first_conv_per_block,
    get_layer,
    iter_layers,
    layer_table,
)
from .loading import (
    MODEL_NAMES,
    LoadedModel,
    imagenet_class_names,
    load_model,
    softmax_position,
)
from .precision import PRECISIONS, PrecisionChoice, choose_precision, hardware_precisions
from .preprocessing import PREPROCESSINGS, Preprocessing
from .shapes import CLASS_NAMES as SHAPES_CLASS_NAMES
from .shapes import ShapesBatch, generate_shapes
from .taps import Tap, extractor

__all__ = [
    "MODEL_NAMES",
    "PRECISIONS",
    "PREPROCESSINGS",
    "SAMPLE_NAMES",
    "SHAPES_CLASS_NAMES",
    "ImageAdjustedWarning",
    "LayerRow",
    "LayerTable",
    "LoadedModel",
    "LongRunWarning",
    "PrecisionChoice",
    "Preprocessing",
    "RunTooLargeError",
    "ShapesBatch",
    "Tap",
    "adversarial_examples",
    "choose_precision",
    "extractor",
    "first_conv_per_block",
    "generate_shapes",
    "get_layer",
    "hardware_precisions",
    "imagenet_class_names",
    "iter_layers",
    "layer_table",
    "load_image",
    "load_model",
    "robust_accuracy",
    "sample_image",
    "softmax_position",
]
