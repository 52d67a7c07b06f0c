"""Activation maximization: objectives, image parameterizations, transforms, presets, the
compiled step and runs."""

from . import probe  # noqa: F401  (registers how 'auto' judges optimization)
from .param import Fourier, Maco, Pixels, Raw, Spectrum, spectrum_from
from .presets import PRESETS, Preset, get_preset
from .recipes import choose as choose_recipe
from .recipes import register_recipe, unregister_recipe
from .results import Frame, Result
from .run import Run, optimize, visualize, warm_up
from .seeds import SeedStatistics, align_objects, seed_statistics
from .settings import check_settings
from .step import step_tracing_count  # noqa: F401  (for checks; not in __all__)
from .transforms import Transforms

__all__ = [
    "PRESETS",
    "Fourier",
    "Frame",
    "Maco",
    "Pixels",
    "Preset",
    "Raw",
    "Result",
    "Run",
    "SeedStatistics",
    "Spectrum",
    "Transforms",
    "align_objects",
    "check_settings",
    "choose_recipe",
    "get_preset",
    "optimize",
    "register_recipe",
    "seed_statistics",
    "spectrum_from",
    "unregister_recipe",
    "visualize",
    "warm_up",
]
