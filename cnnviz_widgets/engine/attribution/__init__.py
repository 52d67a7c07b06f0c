"""How the network sees one image: attribution methods behind one door (:func:`explain`,
a registry of method records), top-k predictions, the results they return, and the
metrics and sanity checks that say which map to believe."""

from . import cams, gradients, perturbation  # noqa: F401  (they register their methods)
from .methods import (
    default_cam_layer,
    grad_cam,
    occlusion,
    occlusion_grid,
    predict_top,
    saliency,
    spatial_layers,
)
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
    "Attribution",
    "GradCam",
    "Method",
    "Occlusion",
    "Param",
    "Predictions",
    "Saliency",
    "attribution_job",
    "attribution_methods",
    "default_cam_layer",
    "explain",
    "grad_cam",
    "method_info",
    "method_names",
    "occlusion",
    "occlusion_grid",
    "predict_top",
    "saliency",
    "spatial_layers",
]
