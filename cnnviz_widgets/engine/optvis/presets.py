"""Presets: named recipes of parameterization, transforms, learning rate and steps."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...errors import CnnvizError
from .param import Fourier, Maco, Pixels
from .transforms import Transforms


@dataclass(frozen=True)
class Preset:
    """A recipe: parameterization, transforms, optimizer settings and regularizer weights.

    Transform sizes are given for a 224-pixel input and scaled to the model's input size.

    Attributes:
        name: the preset's name.
        param: ``Fourier(...)``, ``Pixels(...)`` or ``Maco(...)``.
        transforms: the random transforms (for a 224 px image).
        lr: Adam's learning rate.
        steps: default number of steps.
        tv: weight of total variation (subtracted).
        lp: weight of the Lp norm of the image (subtracted).
        p: the ``p`` of the Lp norm.
        blur: weight of the blur penalty (subtracted).
        description: one line for people.
    """

    name: str
    param: Fourier | Pixels | Maco
    transforms: Transforms
    lr: float
    steps: int
    tv: float = 0.0
    lp: float = 0.0
    p: float = 2.0
    blur: float = 0.0
    description: str = ""

    def transforms_for(self, size: int) -> Transforms:
        """The transforms scaled to an input of ``size`` pixels."""
        t = self.transforms
        k = size / 224.0
        return replace(
            t,
            pad=round(t.pad * k),
            jitter=float(round(t.jitter * k, 2)),
        )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "lucid",
            Fourier(decay=1.0, decorrelate=True),
            Transforms(pad=16, jitter=16, scale=(0.9, 1.1), rotate=10),
            lr=0.02,
            steps=256,
            description="Lucid's recipe: 1/f Fourier image, decorrelated colour, pad + "
            "jitter + scale + rotate at every step (the default)",
        ),
        Preset(
            "tf-keras-vis",
            Pixels(),
            Transforms(jitter=8, rotate=3),
            lr=0.1,
            steps=256,
            tv=1.0,
            lp=0.3,
            p=1.0,
            description="tf-keras-vis' recipe: raw pixels, total variation + L1, jitter + rotate",
        ),
        Preset(
            "keras-vis",
            Pixels(),
            Transforms(jitter=16),
            lr=0.1,
            steps=256,
            tv=1.0,
            lp=0.1,
            p=6.0,
            description="keras-vis' recipe (the library of the keras-vis CNN-visualization "
            "tutorial): raw pixels, Lp (p=6) + total variation",
        ),
        Preset(
            "maco",
            Maco(),
            Transforms(crop=(0.5, 1.0), noise=0.05),
            lr=0.1,
            steps=256,
            description="MaCo (Fel et al. 2023): only the Fourier phase is optimized, the "
            "magnitude stays a natural 1/f spectrum; random crops + noise at every step; "
            "result.alpha shows where the evidence is",
        ),
    )
}


def get_preset(spec: str | Preset) -> Preset:
    if isinstance(spec, Preset):
        return spec
    if spec in PRESETS:
        return PRESETS[spec]
    raise CnnvizError(f"unknown preset {spec!r}: use one of {', '.join(PRESETS)}")
