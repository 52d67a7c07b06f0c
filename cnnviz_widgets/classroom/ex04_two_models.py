"""Exercise 04, comparing two models: smoother filters, saliency on the object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np

from ..engine.attribution.methods import saliency
from ..engine.model.loading import LoadedModel, as_loaded
from ..engine.model.shapes import generate_shapes
from .common import (
    CheckResult,
    Unreadable,
    conv_layer,
    correct,
    hint,
    image_size,
    memo,
    never_raises,
    no_answer,
)


# ============================================================ 4. comparing two models
def filter_roughness(model: Any, layer: Any = "conv1") -> float:
    """How rough a layer's kernels are: for each live filter, the summed squared difference
    between neighbouring taps (across rows and columns, every input channel) divided by its
    summed squared taps; the mean over filters.  0 for constant kernels; about 2 for noise.
    Filters whose weights are all (nearly) zero are left out.
    """
    loaded = as_loaded(model)
    found, _ = conv_layer(loaded, layer)
    k = np.asarray(keras.ops.convert_to_numpy(found.kernel), np.float64)
    energy = (k * k).sum(axis=(0, 1, 2))
    rough = ((k[1:] - k[:-1]) ** 2).sum(axis=(0, 1, 2)) + ((k[:, 1:] - k[:, :-1]) ** 2).sum(
        axis=(0, 1, 2)
    )
    live = energy > 1e-6 * max(float(energy.max()), 1e-30)
    return float(np.mean(rough[live] / energy[live]))


def object_saliency_share(model: Any, images: int = 18, seed: int = 5) -> float:
    """The share of the plain gradient (:func:`~cnnviz_widgets.saliency`, |gradient|, the
    largest over colour channels) that falls on the object, on generated shapes images of the
    true class, averaged.  The object covers about 15 % of an image: a share near that is a
    gradient that does not know where the object is.
    """
    loaded = as_loaded(model)
    h = image_size(loaded)[0]

    def compute() -> float:
        batch = generate_shapes(images, seed=seed, size=h)
        shares = []
        for image, mask, label in zip(batch.images, batch.masks, batch.labels):
            grad = np.abs(saliency(loaded, image, int(label)).raw).max(axis=-1)
            shares.append(float(grad[mask].sum() / max(float(grad.sum()), 1e-30)))
        return float(np.mean(shares))

    return memo(("saliency share", images, seed), loaded, compute)


def _model_name(answer: Any, models: Mapping[str, Any]) -> str:
    """The key of ``models`` the answer names (a key, a model name, or a model object)."""
    names = list(models)
    how = f"answer with one of {', '.join(repr(n) for n in names)}"
    if isinstance(answer, str):
        text = answer.strip().lower()
        for name in names:
            aliases = {name.lower(), f"shapes-{name.lower()}", name.lower().replace("shapes-", "")}
            if text in aliases:
                return name
        raise Unreadable(f"{answer!r} is not one of the models; {how}.")
    for name, model in models.items():
        if answer is model:
            return name
        if isinstance(answer, LoadedModel) and isinstance(model, LoadedModel):
            if answer.model is model.model:
                return name
        if isinstance(model, LoadedModel) and answer is model.model:
            return name
    raise Unreadable(f"this answer is not one of the models; {how}.")


def _compare(
    answer: Any,
    models: Mapping[str, Any],
    task: str,
    measure: Callable[[Any], float],
    larger_wins: bool,
    margin: float,
    unit: str,
    advice: str,
) -> CheckResult:
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("pass the models as a dict, e.g. {'robust': robust, 'standard': standard}")
    if answer is None:
        return no_answer(task, f"one of {', '.join(repr(n) for n in models)}")
    name = _model_name(answer, models)
    scores = {n: measure(m) for n, m in models.items()}
    ranked = sorted(scores, key=scores.get, reverse=larger_wins)
    best = scores[ranked[0]]
    text = ", ".join(f"{n} {scores[n]:.{3 if abs(scores[n]) < 10 else 1}f}" for n in ranked)
    if abs(scores[name] - best) <= margin:
        close = len([n for n in scores if abs(scores[n] - best) <= margin]) > 1
        note = " — too close to call: either answer counts" if close else ""
        return correct(task, f"{unit}: {text}{note}.")
    return hint(task, advice)


@never_raises("Whose first-layer filters are smoother")
def check_smoother_filters(
    answer: Any, models: Mapping[str, Any], layer: Any = "conv1"
) -> CheckResult:
    """Does ``answer`` name the model whose ``layer`` kernels are smoother?

    Args:
        answer: a key of ``models`` (``"robust"``), or the model object itself.
        models: ``{name: model}``, e.g. ``{"robust": robust, "standard": standard}``.
        layer: the convolution layer compared.

    The truth is :func:`filter_roughness` (smaller is smoother), computed on each model.
    """
    return _compare(
        answer,
        models,
        "Whose first-layer filters are smoother",
        lambda m: filter_roughness(m, layer),
        larger_wins=False,
        margin=0.02,
        unit="roughness (smaller is smoother)",
        advice=(
            "look again, filter by filter: in a smooth kernel neighbouring taps have similar "
            "colours, in a rough one they jump from tap to tap like salt and pepper. Put both "
            "FilterGallery panels side by side (or compare the kernels' neighbour differences)."
        ),
    )


@never_raises("Whose gradient looks at the object")
def check_object_saliency(answer: Any, models: Mapping[str, Any]) -> CheckResult:
    """Does ``answer`` name the model whose input gradient falls more on the object?

    The truth is :func:`object_saliency_share` on each model (the same generated images);
    models within 0.02 of each other are both right.
    """
    return _compare(
        answer,
        models,
        "Whose gradient looks at the object",
        object_saliency_share,
        larger_wins=True,
        margin=0.02,
        unit="share of the gradient on the object",
        advice=(
            "look at more than one image: for each model, how much of the saliency map lies "
            "on the shape and how much on the background? The generator's masks "
            "(cw.generate_shapes(...).masks) tell you where the shape is."
        ),
    )
