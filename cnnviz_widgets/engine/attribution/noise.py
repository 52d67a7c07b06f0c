"""The noise of SmoothGrad-like methods, on the paper's scale.

Smilkov et al. (2017, "SmoothGrad: removing noise by adding noise", section 3.1) give the
noise level as ``sigma / (x_max - x_min)``: a fraction of the *range of the input* (for an
8-bit image, 0..255), and find 10-20 % best.  The engine adds the noise to the display
image, whose range is ``[0, 1]`` whatever the model's own input range (its preprocessing
maps ``[0, 1]`` onto it linearly: 0..255, -1..1, caffe's mean-subtracted BGR), so the
standard deviation is ``noise * 1.0`` in display units: the same fraction of the range
the model expects, for every image.

Scaling by each image's *own* range instead (``noise * (img.max() - img.min())``) made
the noise vanish on low-contrast images (a gray object on a gray background got a tenth
of the noise), so those maps stayed as noisy as the plain gradient.
"""

from __future__ import annotations

__all__ = ["DISPLAY_RANGE", "noise_sigma"]

DISPLAY_RANGE = 1.0
"""``x_max - x_min`` of the display space the noise is added in (``[0, 1]``)."""


def noise_sigma(noise: float) -> float:
    """The noise's standard deviation in display units for a noise level ``noise`` (a
    fraction of the input range, SmoothGrad's ``sigma / (x_max - x_min)``)."""
    return float(noise) * DISPLAY_RANGE
