"""The visualization engine: Keras, TensorFlow, numpy and matplotlib colormaps only.

Never imports ipywidgets, IPython or pyplot; tested without Jupyter.
"""

from .adversarial import adversarial_examples, robust_accuracy
from .atlas import Atlas, AtlasProgress, AtlasUnit, atlas, open_atlas
from .attribution import (
    default_cam_layer,
    grad_cam,
    occlusion,
    occlusion_grid,
    predict_top,
    saliency,
    spatial_layers,
)
from .budget import LongRunWarning, RunTooLargeError
from .convolution import ConvolutionTrace, ReceptiveField, convolution_at, receptive_field
from .datasources import DataSource, ShapesStream, data_source
from .examples import ExampleSearch, Progress, TopExamples, rank_examples, top_examples
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
from .optvis import (
    PRESETS,
    Frame,
    Preset,
    Result,
    Run,
    check_settings,
    optimize,
    visualize,
    warm_up,
)
from .param import Fourier, Maco, Pixels, Spectrum, spectrum_from
from .precision import PRECISIONS, PrecisionChoice, choose_precision, hardware_precisions
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
    "PRECISIONS",
    "PREPROCESSINGS",
    "PRESETS",
    "SAMPLE_NAMES",
    "SHAPES_CLASS_NAMES",
    "Atlas",
    "AtlasProgress",
    "AtlasUnit",
    "Attribution",
    "ChannelStats",
    "ConvolutionTrace",
    "DataSource",
    "ExampleSearch",
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
    "PrecisionChoice",
    "Predictions",
    "Preprocessing",
    "Preset",
    "Progress",
    "ReceptiveField",
    "Result",
    "Run",
    "RunTooLargeError",
    "Saliency",
    "ShapesBatch",
    "ShapesStream",
    "Spectrum",
    "Tap",
    "TopExamples",
    "Transforms",
    "adversarial_examples",
    "atlas",
    "check_settings",
    "choose_precision",
    "convolution_at",
    "data_source",
    "default_cam_layer",
    "extractor",
    "feature_maps",
    "filter_montage",
    "filter_values",
    "first_conv_per_block",
    "generate_shapes",
    "get_layer",
    "grad_cam",
    "hardware_precisions",
    "imagenet_class_names",
    "iter_layers",
    "kernel_array",
    "kernel_selectivity",
    "layer_table",
    "load_image",
    "load_model",
    "occlusion",
    "occlusion_grid",
    "open_atlas",
    "optimize",
    "predict_top",
    "rank_examples",
    "receptive_field",
    "robust_accuracy",
    "saliency",
    "sample_image",
    "softmax_position",
    "spatial_layers",
    "spectrum_from",
    "top_examples",
    "visualize",
    "warm_up",
]
