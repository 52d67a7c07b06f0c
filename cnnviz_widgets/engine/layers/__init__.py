"""One layer at a time: its kernels as pictures, its feature maps for an image, how one of
its values is computed, and what a first-layer kernel prefers."""

from .convolution import ConvolutionTrace, ReceptiveField, convolution_at, receptive_field
from .features import ChannelStats, FeatureMaps, feature_maps
from .filters import Montage, filter_montage, filter_values, kernel_array
from .selectivity import KernelPreference, kernel_selectivity

__all__ = [
    "ChannelStats",
    "ConvolutionTrace",
    "FeatureMaps",
    "KernelPreference",
    "Montage",
    "ReceptiveField",
    "convolution_at",
    "feature_maps",
    "filter_montage",
    "filter_values",
    "kernel_array",
    "kernel_selectivity",
    "receptive_field",
]
