"""Presets: named recipes of parameterization, transforms, learning rate and steps."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...errors import CnnvizError
from .param import Fourier, Maco, Pixels, Raw
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
        optimizer: ``"adam"`` (Adam at learning rate ``lr``) or ``"l2"``: normalized
            gradient steps, each moving the image by ``lr`` (root mean square per pixel
            value, so the same ``lr`` suits any image size) along its gradient's
            direction, the step size decaying on a cosine from ``lr`` to
            ``lr * lr_final`` over the run (Santurkar et al. 2019's steps; a robust
            model's gradient direction is meaningful, its size is not).
        lr_final: the ``"l2"`` step size at the last step, as a fraction of ``lr``.
        start: ``"noise"`` (the parameterization's random start) or ``"seed"``: a
            class-conditional seed drawn from the model's seed statistics (its metadata, or
            ``register_recipe(..., seeds=...)``); ``"noise"`` when it has none.
        seed_noise: the spread of the seed around its class mean (1: the training images').
        seed_draws: seeds drawn per class picture; the run starts from the one the model
            scores highest for its class (the model's own choice among its training
            distribution's samples: a draw whose object barely stands out of its
            background, which the run would only outline, is passed over).  Channel and
            neuron pictures draw one.
        radius: for ``"l2"`` and class objectives: the image stays within this distance
            of its class seed (root mean square per pixel value; Santurkar et al.'s
            epsilon ball); 0: no limit.  Channel and neuron pictures are not held (their
            seed, a random class's, says nothing about the unit).
    """

    name: str
    param: Fourier | Pixels | Maco | Raw
    transforms: Transforms
    lr: float
    steps: int
    tv: float = 0.0
    lp: float = 0.0
    p: float = 2.0
    blur: float = 0.0
    description: str = ""
    optimizer: str = "adam"
    lr_final: float = 1.0
    start: str = "noise"
    seed_noise: float = 1.0
    seed_draws: int = 1
    radius: float = 0.0

    def __post_init__(self):
        if self.optimizer not in ("adam", "l2"):
            raise CnnvizError(f"preset optimizer must be 'adam' or 'l2', got {self.optimizer!r}")
        if self.start not in ("noise", "seed"):
            raise CnnvizError(f"preset start must be 'noise' or 'seed', got {self.start!r}")
        if int(self.seed_draws) != self.seed_draws or self.seed_draws < 1:
            raise CnnvizError(f"preset seed_draws must be an int >= 1, got {self.seed_draws}")
        if not 0 <= self.lr_final <= 1:
            raise CnnvizError(f"preset lr_final must be in [0, 1], got {self.lr_final}")

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
        Preset(
            "robust",
            Raw(),
            Transforms(jitter=8, scale=(0.9, 1.1)),
            lr=0.02,
            steps=128,
            optimizer="l2",
            lr_final=0.1,
            start="seed",
            seed_draws=16,
            radius=0.05,
            description="For robust (adversarially trained) models, as Santurkar et al. 2019 "
            "draw them: raw pixels, L2-normalized gradient steps with a decaying step size, "
            "from a class-conditional seed (one blurred object from the model's training "
            "images' statistics, the best of 16 draws by the model), staying within an L2 "
            "ball around it; light jitter and zoom",
        ),
    )
}


def get_preset(spec: str | Preset) -> Preset:
    """A preset by name (``"auto"`` is resolved per model by ``recipes.choose``)."""
    if isinstance(spec, Preset):
        return spec
    if spec in PRESETS:
        return PRESETS[spec]
    raise CnnvizError(f"unknown preset {spec!r}: use 'auto' or one of {', '.join(PRESETS)}")
