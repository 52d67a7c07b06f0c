"""Exercise 05, which map can you trust: the cascading randomization test (Adebayo et al.
2018) on a few attribution methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..engine import as_loaded, attribution_methods, generate_shapes, randomization_test
from .common import (
    CheckResult,
    Unreadable,
    correct,
    hint,
    image_size,
    memo,
    never_raises,
    no_answer,
)

TRUST_METHODS = ("saliency", "integrated_gradients", "guided_backprop", "grad_cam", "vargrad")
TRUST_SETTINGS = {"integrated_gradients": {"steps": 16}, "vargrad": {"samples": 8}}
THRESHOLD = 0.5  # a map whose correlation stays above this with every layer random "stays"
MARGIN = 0.05  # methods this close to the threshold (or to the best) count either way


def randomization_scores(
    model: Any, images: int = 3, seed: int = 21, methods: Sequence[str] = TRUST_METHODS
) -> dict[str, tuple[float, float]]:
    """For each method: the mean Spearman correlation of its map with the original one
    after the top layer is re-initialized, and after every layer is (the cascading
    randomization test on a copy of the model, on ``images`` generated images of their
    true class; :data:`TRUST_SETTINGS` keeps it quick)."""
    loaded = as_loaded(model)
    h = image_size(loaded)[0]

    def compute() -> dict[str, tuple[float, float]]:
        batch = generate_shapes(images, seed=seed, size=h)
        top: dict[str, list[float]] = {m: [] for m in methods}
        end: dict[str, list[float]] = {m: [] for m in methods}
        for image, label in zip(batch.images, batch.labels):
            res = randomization_test(
                loaded, image, list(methods), int(label), params=TRUST_SETTINGS, seed=1
            )
            for m in methods:
                top[m].append(float(res.correlations[m][1]))
                end[m].append(float(res.correlations[m][-1]))
        return {m: (float(np.mean(top[m])), float(np.mean(end[m]))) for m in methods}

    return memo(("randomization", images, seed, tuple(methods)), loaded, compute)


def _method(answer: Any, methods: Sequence[str]) -> str:
    """The method an answer names: its registry name or its label, any case."""
    how = f"answer with one of {', '.join(repr(m) for m in methods)}"
    if not isinstance(answer, str):
        raise Unreadable(f"this answer is not a method's name; {how}.")
    text = answer.strip().lower().replace("-", "_").replace(" ", "_")
    labels = {
        m.label.lower().replace("-", "_").replace(" ", "_"): m.name for m in attribution_methods()
    }
    name = labels.get(text, text)
    if name not in methods:
        raise Unreadable(f"{answer!r} is not one of the methods tested; {how}.")
    return name


@never_raises("Which map ignores the classifier")
def check_top_layer_blind(
    answer: Any, model: Any, images: int = 3, seed: int = 21, methods: Sequence[str] = TRUST_METHODS
) -> CheckResult:
    """Does ``answer`` name the method whose map stays the most like itself when only the
    top layer (the classifier) is re-initialized?

    The truth is :func:`randomization_scores` on ``model``; methods within 0.05 of the
    highest correlation are right too.
    """
    task = "Which map ignores the classifier"
    if answer is None:
        return no_answer(task, f"one of {', '.join(repr(m) for m in methods)}")
    name = _method(answer, methods)
    scores = randomization_scores(model, images, seed, methods)
    best = max(v[0] for v in scores.values())
    if scores[name][0] >= best - MARGIN:
        return correct(
            task,
            f"{name}'s map keeps a correlation of {scores[name][0]:+.2f} with itself when the "
            "layer that decides the class is random: it shows the image more than the class "
            "evidence.",
        )
    return hint(
        task,
        f"{name} changes more than another method when the top layer is random. Look at the "
        "first randomization step (res.correlations[method][1]) of each method.",
    )


@never_raises("Which maps pass the sanity check")
def check_trustworthy(
    answer: Any, model: Any, images: int = 3, seed: int = 21, methods: Sequence[str] = TRUST_METHODS
) -> CheckResult:
    """Does ``answer`` (a list or set of method names) hold exactly the methods whose maps
    fall apart when every layer is re-initialized (mean correlation below 0.5)?

    The truth is :func:`randomization_scores` on ``model``; a method within 0.05 of 0.5
    counts either way.
    """
    task = "Which maps pass the sanity check"
    if answer is None:
        return no_answer(task, "a list of method names, e.g. ['saliency', 'grad_cam']")
    if isinstance(answer, str) or not isinstance(answer, (list, tuple, set, frozenset)):
        raise Unreadable(
            "answer with a list of method names (the ones whose maps fall apart), e.g. "
            "['saliency', 'grad_cam']."
        )
    chosen = {_method(a, methods) for a in answer}
    scores = randomization_scores(model, images, seed, methods)
    end = {m: v[1] for m, v in scores.items()}
    must = {m for m, c in end.items() if c < THRESHOLD - MARGIN}
    may = {m for m, c in end.items() if abs(c - THRESHOLD) <= MARGIN}
    if must <= chosen <= must | may:
        text = ", ".join(f"{m} {end[m]:+.2f}" for m in sorted(end, key=end.get))
        return correct(task, f"correlations with every layer random: {text}.")
    if chosen - must - may:
        return hint(
            task,
            "one of your methods still looks like its original map when every layer is "
            "random: compare the last randomization step of each method with 0.5.",
        )
    return hint(
        task,
        "a method whose map falls apart is missing: check each method's correlation at the "
        "last step (every layer re-initialized).",
    )
