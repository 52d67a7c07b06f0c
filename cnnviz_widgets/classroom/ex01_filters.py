"""Exercise 01, reading the filters: which first-layer filter detects vertical edges."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.model.loading import as_loaded
from .common import (
    CheckResult,
    Unreadable,
    as_int,
    conv_layer,
    correct,
    hint,
    image_size,
    never_raises,
    no_answer,
    outputs,
)


# ================================================================ 1. reading the filters
def edge_image(
    orientation: str = "vertical",
    size: int = 64,
    polarity: int = 1,
    dark: float = 0.2,
    light: float = 0.8,
) -> np.ndarray:
    """A gray ``(size, size, 3)`` image in [0, 1] split by one straight edge through the middle.

    Args:
        orientation: ``"vertical"`` (left half dark, right half light: an edge running top to
            bottom) or ``"horizontal"`` (top dark, bottom light).
        size: the side in pixels.
        polarity: ``1`` dark-to-light (left to right or top to bottom), ``-1`` the reverse.
        dark, light: the two gray levels.
    """
    if orientation not in ("vertical", "horizontal"):
        raise ValueError(f"orientation must be 'vertical' or 'horizontal', not {orientation!r}")
    if polarity not in (1, -1):
        raise ValueError(f"polarity must be 1 or -1, not {polarity!r}")
    image = np.full((size, size, 3), dark, np.float32)
    if orientation == "vertical":
        image[:, size // 2 :] = light
    else:
        image[size // 2 :, :] = light
    return image if polarity == 1 else (dark + light - image).astype(np.float32)


def edge_responses(model: Any, layer: Any = "conv1") -> tuple[np.ndarray, np.ndarray]:
    """How strongly each channel of ``layer`` answers a vertical and a horizontal edge.

    The response to an edge is the channel's largest activation on the edge's line, in the
    middle half of the image (away from the border, where zero padding makes edges of its
    own), for the stronger of the two polarities of :func:`edge_image`.

    Returns:
        ``(vertical, horizontal)``: two ``(channels,)`` float arrays.
    """
    loaded = as_loaded(model)
    _, path = conv_layer(loaded, layer)
    h, w, c = image_size(loaded)
    if h != w:
        raise ValueError(f"edge images are square; this model takes {h}x{w} images")
    images = np.stack([edge_image(o, h, p) for o in ("vertical", "horizontal") for p in (1, -1)])[
        ..., :1
    ].repeat(c, axis=-1)
    maps = outputs(loaded, path, images)  # (4, mh, mw, channels)
    mh, mw = maps.shape[1:3]
    cy, cx = mh // 2, mw // 2
    band = max(1, round(mw / 16))  # the edge's line, a pixel or two either side
    along = slice(mh // 4, mh - mh // 4)
    vertical = maps[:2, along, cx - band : cx + band].max(axis=(0, 1, 2))
    across = slice(mw // 4, mw - mw // 4)
    horizontal = maps[2:, cy - band : cy + band, across].max(axis=(0, 1, 2))
    return vertical.astype(np.float64), horizontal.astype(np.float64)


VERTICAL_TIE = 0.85
"""A filter whose vertical preference is at least this share of the best one also counts."""


@never_raises("Which filter answers vertical edges")
def check_vertical_edge_filter(answer: Any, model: Any, layer: Any = "conv1") -> CheckResult:
    """Is ``answer`` the filter of ``layer`` that prefers vertical edges most?

    The preference of a filter is its response to a vertical edge minus its response to a
    horizontal one (:func:`edge_responses`).  Filters within ``VERTICAL_TIE`` (85 %) of the
    best preference are right too: two filters can be equally good answers.

    Args:
        answer: a filter index (an int).
        model: the model (``cw.load_model("shapes")``, a ``keras.Model`` or a name).
        layer: the convolution layer the question is about.
    """
    task = "Which filter answers vertical edges"
    loaded = as_loaded(model)
    found, path = conv_layer(loaded, layer)
    n = int(found.filters)
    if answer is None:
        return no_answer(task, f"one filter index of {path} (0 … {n - 1})")
    if isinstance(answer, (list, tuple, set, np.ndarray)) and np.asarray(list(answer)).size > 1:
        raise Unreadable(f"name one filter (an int from 0 to {n - 1}), not {len(answer)}")
    index = as_int(answer, f"answer with one filter index of {path}, an int from 0 to {n - 1}")
    if not 0 <= index < n:
        return hint(task, f"{path} has {n} filters, numbered 0 … {n - 1}; {index} is not one.")
    vertical, horizontal = edge_responses(loaded, path)
    preference = vertical - horizontal
    best = float(preference.max())
    if best <= 0:
        raise ValueError(f"no filter of {path} answers a vertical edge more than a horizontal one")
    good = preference >= VERTICAL_TIE * best
    if good[index]:
        others = [int(i) for i in np.flatnonzero(good) if i != index]
        also = f" (filter {', '.join(map(str, others))} is about as good)" if others else ""
        return correct(
            task,
            f"filter {index} answers a vertical edge with {vertical[index]:.2f} and a "
            f"horizontal one with only {horizontal[index]:.2f}{also}.",
        )
    strongest = max(float(vertical.max()), float(horizontal.max()), 1e-12)
    if max(vertical[index], horizontal[index]) < 0.05 * strongest:
        return hint(
            task,
            f"filter {index} hardly answers any edge: its activation stays near zero. Look for "
            "a kernel with a clearly dark side and a clearly light side.",
        )
    if horizontal[index] >= vertical[index]:
        return hint(
            task,
            f"filter {index} answers a horizontal edge at least as strongly as a vertical one: "
            "its kernel changes from top to bottom (or in every direction). Look for one that "
            "changes from left to right.",
        )
    share = 100 * preference[index] / best
    return hint(
        task,
        f"filter {index} does prefer vertical edges, but only {share:.0f} % as much as the "
        "best one. Measure the others: feed classroom.edge_image('vertical') and "
        "edge_image('horizontal') to cw.feature_maps and compare each channel on the edge.",
    )
