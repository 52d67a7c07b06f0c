"""Does an image look like what the model was trained on?  Said only when the model says
what that was.

A classifier answers every image with a class and a probability, a photo as confidently as
the pictures it learnt from ("ring 98.2 %"), and that answer means little.  When a model's
metadata names its training data (``loaded.metadata["training_data"]``), a cheap check of
that data's own traits says whether an image is of its kind; a model that does not name it
gets no check (``None``): nothing is said rather than a guess.

Known training data:

``"shapes"`` (the embedded models, ``cw.generate_shapes``): every training image is one
shape or patterned patch, of one colour, on a background that is a linear blend of two
colours with a little pixel noise (standard deviation 0.01 to 0.05), and the object keeps
two pixels away from the border.  Two measures at the model's input size:

* ``border``: the root mean square of the 2-pixel border ring around the best-fitting
  linear colour ramp (the background there alone): at most ~0.057 on generated images; a
  photo's or a noise image's border is rougher (0.1 to 0.4).
* ``one_object``: over the pixels that stand out of the background ramp (extrapolated from
  the border), the root mean square of what is left when each is explained as that ramp
  blended with one object colour: below ~0.09 on 99.9 % of generated images, 0.17 and more
  on photos, also a photo pasted on a plain background (whose border alone looks like
  training).
* ``no_object``: 1 minus the share of ``_FEWEST`` (20) pixels that stand out of the
  background ramp, so 1.0 for a plain colour or a clean ramp and 0.0 for every generated
  image (its object covers hundreds of pixels, in a colour chosen far from the background).

An image is unlike the training images when any exceeds its threshold
(:data:`SHAPES_THRESHOLDS`, set between the generated images' values and the others' on
1,000 generated images and 120 photo crops; the measures: ``docs/benchmarks.md``,
"Out-of-distribution check").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .loading import as_loaded
from .scoring import prepare_image

__all__ = [
    "SHAPES_THRESHOLDS",
    "DistributionCheck",
    "distribution_check",
    "register_training_data",
]

SHAPES_THRESHOLDS = {"border": 0.075, "one_object": 0.13, "no_object": 0.5}
"""Above these, an image is unlike the generated shapes images (see the module)."""

_BORDER = 2  # the generator keeps every object this many pixels from the border
_STANDS_OUT = 0.2  # a pixel this far from the background ramp (RGB distance) is the object's
_FEWEST = 20  # pixels


@dataclass(frozen=True)
class DistributionCheck:
    """Whether an image looks like the model's training images.

    Attributes:
        in_distribution: ``True``: like them; ``False``: unlike them.
        trained_on: the training data, for people (``"generated shapes images"``).
        reason: why, for people (the measure that exceeded its threshold, or that none did).
        scores: the measures (``{"border": 0.21, "one_object": 0.16}``).
        thresholds: their limits.
    """

    in_distribution: bool
    trained_on: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def note(self) -> str:
        """The sentence to show beside a prediction ("" for an image like the training
        images)."""
        if self.in_distribution:
            return ""
        return (
            f"This image is unlike the {self.trained_on} the model was trained on: its answer "
            f"means little ({self.reason})."
        )


def _ring(h: int, w: int) -> np.ndarray:
    ring = np.zeros((h, w), bool)
    ring[:_BORDER] = ring[-_BORDER:] = True
    ring[:, :_BORDER] = ring[:, -_BORDER:] = True
    return ring


def shapes_measures(image: np.ndarray) -> dict[str, float]:
    """The ``border``, ``one_object`` and ``no_object`` measures of an ``(H, W, 3)`` image
    in [0, 1]."""
    img = np.asarray(image, np.float64)
    h, w = img.shape[:2]
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = np.stack([np.ones(h * w), xx.ravel() / w, yy.ravel() / h], 1)  # (P, 3)
    ring = _ring(h, w).ravel()
    flat = img.reshape(-1, 3)
    coef, *_ = np.linalg.lstsq(ramp[ring], flat[ring], rcond=None)
    background = ramp @ coef
    rest = flat - background
    border = float(np.sqrt((rest[ring] ** 2).mean()))
    size = np.linalg.norm(rest, axis=1)
    standing = size > _STANDS_OUT
    no_object = float(1.0 - min(1.0, standing.sum() / _FEWEST))
    if size.max() < 0.1:  # nothing stands out of the background
        rms = float(np.sqrt((rest**2).mean()))
        return {"border": border, "one_object": rms, "no_object": no_object}
    colour = np.median(flat[size > 0.5 * size.max()], axis=0)  # the object's colour
    towards = colour - background
    alpha = np.clip((rest * towards).sum(1) / np.maximum((towards**2).sum(1), 1e-6), 0, 1)
    left = np.linalg.norm(rest - alpha[:, None] * towards, axis=1)
    # over the pixels that stand out of the background (the object), so that a small
    # object is judged as much as a large one; over all when there are too few
    if standing.sum() < _FEWEST:
        standing[:] = True
    one_object = float(np.sqrt((left[standing] ** 2).mean()))
    return {"border": border, "one_object": one_object, "no_object": no_object}


_LABELS = {
    "border": "its border is not a plain background with a little noise",
    "one_object": "it is not one shape of one colour on a plain background",
    "no_object": "there is no shape in it, and every training image holds one",
}


def _shapes_check(image: np.ndarray) -> DistributionCheck:
    scores = shapes_measures(image)
    over = [k for k, v in scores.items() if v > SHAPES_THRESHOLDS[k]]
    if over:
        reason = "; ".join(
            f"{_LABELS[k]} ({k} {scores[k]:.2f}, training images ≤ {SHAPES_THRESHOLDS[k]:g})"
            for k in over
        )
    else:
        reason = "one shape or pattern on a plain, slightly noisy background, as in training"
    return DistributionCheck(
        in_distribution=not over,
        trained_on="generated shapes images",
        reason=reason,
        scores=scores,
        thresholds=dict(SHAPES_THRESHOLDS),
    )


_CHECKS: dict[str, Callable[[np.ndarray], DistributionCheck]] = {"shapes": _shapes_check}


def register_training_data(name: str, check: Callable[[np.ndarray], DistributionCheck]) -> None:
    """Teach :func:`distribution_check` a training data set: a model whose
    ``loaded.metadata["training_data"]`` is ``name`` is checked with ``check(image)``
    (``image``: ``(H, W, C)`` in [0, 1], at the model's input size)."""
    _CHECKS[str(name)] = check


def distribution_check(model, image) -> DistributionCheck | None:
    """Whether ``image`` looks like the images ``model`` was trained on, or ``None`` when
    the model does not say what it was trained on (nothing is guessed).

    Args:
        model: a ``LoadedModel`` (or anything ``load_model`` takes); its
            ``metadata["training_data"]`` names the data (the embedded models: ``"shapes"``;
            set it on your own model trained on ``cw.generate_shapes``).
        image: what :func:`cw.predict_top` takes (an array, a PIL image, a path...); it is
            fitted to the model's input first.

    Example::

        check = cw.distribution_check(cw.load_model("shapes"), cw.sample_image())
        check.in_distribution   # False: a photo
        check.note              # "This image is unlike the generated shapes images ..."
    """
    loaded = as_loaded(model)
    name = (getattr(loaded, "metadata", None) or {}).get("training_data")
    check = _CHECKS.get(name) if name is not None else None
    if check is None:
        return None
    img, _notes = prepare_image(loaded, image)
    return check(np.asarray(img, np.float32))
