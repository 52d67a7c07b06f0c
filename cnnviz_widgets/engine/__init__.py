"""The visualization engine: Keras, TensorFlow, numpy and matplotlib colormaps only.

Never imports ipywidgets, IPython or pyplot; tested without Jupyter.
"""

from .adversarial import adversarial_examples, robust_accuracy
from .attribution import (
    default_cam_layer,
    grad_cam,
    occlusion,
    predict_top,
    saliency,
    spatial_layers,
)
from .budget import LongRunWarning, RunTooLargeError
from .features import feature_maps
from .filters import Montage, filter_montage, filter_values, kernel_array
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
from .models import (
    MODEL_NAMES,
    LoadedModel,
    imagenet_class_names,
    load_model,
    softmax_position,
)
from .optvis import PRESETS, Frame, Preset, Result, Run, optimize, visualize
from .param import Fourier, Maco, Pixels, Spectrum, spectrum_from
from .preprocessing import PREPROCESSINGS, Preprocessing
from .results import (
    Attribution,
    ChannelStats,
    FeatureMaps,
    GradCam,
    Occlusion,
    Predictions,
    Saliency,
)
from .selectivity import KernelPreference, kernel_selectivity
from .shapes import CLASS_NAMES as SHAPES_CLASS_NAMES
from .shapes import ShapesBatch, generate_shapes
from .taps import Tap, extractor
from .transforms import Transforms

__all__ = [
    "MODEL_NAMES",
    "PREPROCESSINGS",
    "PRESETS",
    "SAMPLE_NAMES",
    "SHAPES_CLASS_NAMES",
    "Attribution",
    "ChannelStats",
    "FeatureMaps",
    "Fourier",
    "Frame",
    "GradCam",
    "ImageAdjustedWarning",
    "KernelPreference",
    "LayerRow",
    "LayerTable",
    "LoadedModel",
    "LongRunWarning",
    "Maco",
    "Montage",
    "Occlusion",
    "Pixels",
    "Predictions",
    "Preprocessing",
    "Preset",
    "Result",
    "Run",
    "RunTooLargeError",
    "Saliency",
    "ShapesBatch",
    "Spectrum",
    "Tap",
    "Transforms",
    "adversarial_examples",
    "default_cam_layer",
    "extractor",
    "feature_maps",
    "filter_montage",
    "filter_values",
    "first_conv_per_block",
    "generate_shapes",
    "get_layer",
    "grad_cam",
    "imagenet_class_names",
    "iter_layers",
    "kernel_array",
    "kernel_selectivity",
    "layer_table",
    "load_image",
    "load_model",
    "occlusion",
    "optimize",
    "predict_top",
    "robust_accuracy",
    "saliency",
    "sample_image",
    "softmax_position",
    "spatial_layers",
    "spectrum_from",
    "visualize",
]
