"""Activation maximization: objectives, image parameterizations, transforms, presets, the
compiled step and runs."""

from .core import (
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
from .transforms import Transforms

__all__ = [
    "PRESETS",
    "Fourier",
    "Frame",
    "Maco",
    "Pixels",
    "Preset",
    "Result",
    "Run",
    "Spectrum",
    "Transforms",
    "check_settings",
    "optimize",
    "spectrum_from",
    "visualize",
    "warm_up",
]
