"""One layer at a time: its kernels as pictures, its feature maps for an image, how one of
its values is computed, and what a first-layer kernel prefers."""

from .convolution import (
    ConvolutionTrace,
    conv_layer_paths,
    convolution_at,
    layer_input_output,
    trace_from_maps,
)
from .features import ChannelStats, FeatureMaps, feature_maps
from .filters import (
    Montage,
    filter_count,
    filter_montage,
    filter_values,
    kernel_array,
    strongest_filters,
    to_rgba,
)
from .receptive_field import ReceptiveField, receptive_field
from .selectivity import KernelPreference, kernel_selectivity

__all__ = [
    "ChannelStats",
    "ConvolutionTrace",
    "FeatureMaps",
    "KernelPreference",
    "Montage",
    "ReceptiveField",
    "conv_layer_paths",
    "convolution_at",
    "feature_maps",
    "filter_count",
    "filter_montage",
    "filter_values",
    "kernel_array",
    "kernel_selectivity",
    "layer_input_output",
    "receptive_field",
    "strongest_filters",
    "to_rgba",
    "trace_from_maps",
]
