"""The model: loading (embedded, keras.applications, files), the one door to Keras
internals, introspection, taps, reduced precision, run budgets, images in and samples.

What panels read of a model's graph is public here, computed behind the one door
(:mod:`.internals`): ``image_input`` (the input's height, width, channels),
``output_shape``, ``is_spatial``, ``inbound_paths`` (the layers that feed a layer)."""

from .adversarial import adversarial_examples, robust_accuracy
from .budget import LongRunWarning, RunTooLargeError, long_runs_to
from .distribution import DistributionCheck, distribution_check, register_training_data
from .imageio import ImageAdjustedWarning, as_image, fit_image, load_image
from .images import SAMPLE_NAMES, sample_image
from .internals import image_input, inbound_paths, is_spatial, output_shape
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
    as_keras_model,
    as_loaded,
    imagenet_class_names,
    load_model,
    resolve_class,
    softmax_position,
    wrap_model,
)
from .outputs import OutputInfo, model_outputs, output_view, select_output
from .precision import PRECISIONS, PrecisionChoice, choose_precision, hardware_precisions
from .preprocessing import PREPROCESSINGS, Preprocessing
from .shapes import CLASS_NAMES as SHAPES_CLASS_NAMES
from .shapes import ShapesBatch, generate_shapes
from .shapes import sample as shapes_sample
from .taps import Tap, extractor

__all__ = [
    "MODEL_NAMES",
    "PRECISIONS",
    "PREPROCESSINGS",
    "SAMPLE_NAMES",
    "SHAPES_CLASS_NAMES",
    "DistributionCheck",
    "ImageAdjustedWarning",
    "LayerRow",
    "LayerTable",
    "LoadedModel",
    "LongRunWarning",
    "OutputInfo",
    "PrecisionChoice",
    "Preprocessing",
    "RunTooLargeError",
    "ShapesBatch",
    "Tap",
    "adversarial_examples",
    "as_image",
    "as_keras_model",
    "as_loaded",
    "choose_precision",
    "distribution_check",
    "extractor",
    "first_conv_per_block",
    "fit_image",
    "generate_shapes",
    "get_layer",
    "hardware_precisions",
    "image_input",
    "imagenet_class_names",
    "inbound_paths",
    "is_spatial",
    "iter_layers",
    "layer_table",
    "load_image",
    "load_model",
    "long_runs_to",
    "model_outputs",
    "output_shape",
    "output_view",
    "register_training_data",
    "resolve_class",
    "robust_accuracy",
    "sample_image",
    "select_output",
    "shapes_sample",
    "softmax_position",
    "wrap_model",
]
