"""One layer at a time: its kernels as pictures, its feature maps for an image, how one of
its values is computed, and what a first-layer kernel prefers."""

from .convolution import ConvolutionTrace, convolution_at
from .features import ChannelStats, FeatureMaps, feature_maps
from .filters import Montage, filter_montage, filter_values, kernel_array
from .receptive_field import ReceptiveField, receptive_field
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
