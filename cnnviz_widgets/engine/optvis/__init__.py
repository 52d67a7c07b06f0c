"""Activation maximization: objectives, image parameterizations, transforms, presets, the
compiled step and runs."""

from .param import Fourier, Maco, Pixels, Spectrum, spectrum_from
from .presets import PRESETS, Preset
from .results import Frame, Result
from .run import Run, check_settings, optimize, visualize, warm_up
from .step import step_tracing_count  # noqa: F401  (for checks; not in __all__)
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
