"""How the network sees one image: saliency, Grad-CAM, occlusion, top-k predictions, and
the results they return."""

from .methods import (
    default_cam_layer,
    grad_cam,
    predict_top,
    saliency,
    spatial_layers,
)
from .occlusion_sensitivity import occlusion, occlusion_grid
from .results import Attribution, GradCam, Occlusion, Predictions, Saliency

__all__ = [
    "Attribution",
    "GradCam",
    "Occlusion",
    "Predictions",
    "Saliency",
    "default_cam_layer",
    "grad_cam",
    "occlusion",
    "occlusion_grid",
    "predict_top",
    "saliency",
    "spatial_layers",
]
