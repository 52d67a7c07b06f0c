"""Input preprocessing: how an RGB image in [0, 1] becomes what a model expects.

Every function here works on numpy arrays and on TensorFlow tensors alike, so the same
object serves the engine's compiled steps and plain numpy code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_TORCH_STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class Preprocessing:
    """Maps display images (RGB floats in ``[0, 1]``) to model inputs and back.

    Attributes:
        name: ``"unit"`` ([0, 1]), ``"raw"`` ([0, 255]), ``"tf"`` ([-1, 1]), ``"caffe"``
            (BGR, 0..255 minus the ImageNet mean, as VGG and ResNet expect) or ``"torch"``
            (ImageNet mean/std normalisation).
        description: one line for people.
    """

    name: str
    description: str = field(compare=False)

    def __call__(self, images):
        """RGB in [0, 1] (numpy or tf, channels last) -> model input."""
        x = images
        if self.name == "unit":
            return x
        if self.name == "raw":
            return x * 255.0
        if self.name == "tf":
            return x * 2.0 - 1.0
        if self.name == "caffe":
            return (x * 255.0)[..., ::-1] - _CAFFE_MEAN_BGR
        if self.name == "torch":
            return (x - _TORCH_MEAN) / _TORCH_STD
        raise AssertionError(self.name)

    def invert(self, inputs):
        """Model input -> RGB in [0, 1] (not clipped)."""
        x = inputs
        if self.name == "unit":
            return x
        if self.name == "raw":
            return x / 255.0
        if self.name == "tf":
            return (x + 1.0) / 2.0
        if self.name == "caffe":
            return (x + _CAFFE_MEAN_BGR)[..., ::-1] / 255.0
        if self.name == "torch":
            return x * _TORCH_STD + _TORCH_MEAN
        raise AssertionError(self.name)


PREPROCESSINGS: dict[str, Preprocessing] = {
    p.name: p
    for p in (
        Preprocessing("unit", "RGB scaled to [0, 1]"),
        Preprocessing("raw", "RGB in [0, 255] (the model rescales inside)"),
        Preprocessing("tf", "RGB scaled to [-1, 1]"),
        Preprocessing("caffe", "BGR in [0, 255] minus the ImageNet mean (VGG, ResNet)"),
        Preprocessing("torch", "RGB in [0, 1], ImageNet mean/std normalised"),
    )
}


def get_preprocessing(spec: str | Preprocessing) -> Preprocessing:
    """Look up a preprocessing by name (or pass one through)."""
    if isinstance(spec, Preprocessing):
        return spec
    try:
        return PREPROCESSINGS[str(spec)]
    except KeyError:
        from ...errors import CnnvizError

        raise CnnvizError(
            f"unknown preprocessing {spec!r}: use one of {', '.join(PREPROCESSINGS)}"
        ) from None
