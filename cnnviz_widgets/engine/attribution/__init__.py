"""How the network sees one image: attribution methods behind one door (:func:`explain`,
a registry of method records), top-k predictions, the results they return, and the
metrics and sanity checks that say which map to believe."""

from . import cams, gradients, perturbation  # noqa: F401  (they register their methods)
from .methods import (
    default_cam_layer,
    grad_cam,
    predict_top,
    saliency,
    spatial_layers,
)
from .metrics import (
    BASELINES,
    Curve,
    deletion,
    insertion,
    mu_fidelity,
    pointing_game,
    relevance_mass,
)
from .occlusion_sensitivity import occlusion, occlusion_grid
from .randomization import Randomization, randomization_job, randomization_test
from .registry import (
    Method,
    Param,
    attribution_job,
    attribution_methods,
    explain,
    method_info,
    method_names,
)
from .results import Attribution, GradCam, Occlusion, Predictions, Saliency

__all__ = [
    "BASELINES",
    "Attribution",
    "Curve",
    "GradCam",
    "Method",
    "Occlusion",
    "Param",
    "Predictions",
    "Randomization",
    "Saliency",
    "attribution_job",
    "attribution_methods",
    "default_cam_layer",
    "deletion",
    "explain",
    "grad_cam",
    "insertion",
    "method_info",
    "method_names",
    "mu_fidelity",
    "occlusion",
    "occlusion_grid",
    "pointing_game",
    "predict_top",
    "randomization_job",
    "randomization_test",
    "relevance_mass",
    "saliency",
    "spatial_layers",
]
