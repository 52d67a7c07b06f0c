"""Exercise 03, receptive fields: which input pixels can change one unit."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ..engine.model.introspect import get_layer
from ..engine.model.loading import as_loaded
from ..engine.model.taps import Tap, extractor
from .common import (
    CheckResult,
    Unreadable,
    correct,
    hint,
    image_size,
    never_raises,
    no_answer,
)


# ====================================================================== 3. receptive field
def receptive_field_mask(model: Any, layer: Any, y: int, x: int, tries: int = 4) -> np.ndarray:
    """The input pixels that can change unit ``(y, x)`` of ``layer`` (any channel), as a mask.

    Computed with gradients: the gradient of the sum of all channels at ``(y, x)`` with
    respect to the input, on ``tries`` random images; a pixel counts when any of them has a
    non-zero gradient there.  (On one image a ReLU that is off or a max-pool that picked a
    neighbour can hide a pixel; random images and all channels together do not.)

    Returns:
        ``(H, W)`` bool.
    """
    loaded = as_loaded(model)
    _, path = get_layer(loaded.model, layer)
    h, w, c = image_size(loaded)
    sub = extractor(loaded, [Tap(path)], with_outputs=False)
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(0.0, 1.0, (tries, h, w, c)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = sub(images)
        out = out[0] if isinstance(out, (list, tuple)) else out
        if out.shape.rank != 4 or not (0 <= y < out.shape[1] and 0 <= x < out.shape[2]):
            raise ValueError(f"({y}, {x}) is not a position of {path}'s output {out.shape[1:]}")
        total = tf.reduce_sum(out[:, y, x, :])
    grad = tape.gradient(total, images)
    return np.asarray(tf.reduce_any(tf.not_equal(grad, 0.0), axis=(0, 3)))


def _as_region(answer: Any, shape: tuple[int, int]) -> np.ndarray:
    """A mask from a boolean mask or a ``(rows, cols)`` pair of ranges, slices or lists."""
    how = (
        "answer with (rows, cols), e.g. (range(10, 20), range(3, 9)), or with a True/False "
        f"mask of the image's {shape[0]} x {shape[1]} pixels"
    )
    if isinstance(answer, (str, bytes, dict)) or answer is None:
        raise Unreadable(f"{answer!r} is not a region of the image; {how}.")
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        axes = []
        for part, size in zip(answer, shape):
            if isinstance(part, slice):
                axes.append(np.arange(size)[part])
            elif isinstance(part, (range, list, tuple, np.ndarray)):
                values = np.asarray(list(part) if isinstance(part, range) else part)
                if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
                    raise Unreadable(f"rows and columns must be whole numbers; {how}.")
                axes.append(values.astype(int))
            else:
                raise Unreadable(f"{part!r} is not a range of rows or columns; {how}.")
        for values, size, name in zip(axes, shape, ("row", "column")):
            if values.size and (values.min() < 0 or values.max() >= size):
                raise Unreadable(
                    f"a {name} of your region is outside the image (0 … {size - 1}); "
                    "the region stops at the image's border."
                )
        mask = np.zeros(shape, bool)
        mask[np.ix_(axes[0], axes[1])] = True
        return mask
    try:
        mask = np.asarray(answer)
    except Exception:
        raise Unreadable(f"this answer is not a region; {how}.") from None
    if mask.ndim == 3 and mask.shape[:2] == shape:
        mask = mask.any(axis=-1)
    if mask.shape != shape or mask.dtype.kind not in "biuf":
        raise Unreadable(f"a mask of shape {mask.shape} does not fit; {how}.")
    return mask.astype(bool)


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return None
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


@never_raises("Which pixels can change the unit")
def check_receptive_field(answer: Any, model: Any, layer: Any, y: int, x: int) -> CheckResult:
    """Is ``answer`` the set of input pixels that can change unit ``(y, x)`` of ``layer``?

    Args:
        answer: ``(rows, cols)`` (ranges, slices or lists of indices) or a boolean mask of the
            input's height x width.
        model, layer, y, x: the unit (any channel: they all see the same pixels).

    The truth is :func:`receptive_field_mask` (gradients).  Hints say which side of the
    region is too short or too long, without the numbers.
    """
    task = "Which pixels can change the unit"
    loaded = as_loaded(model)
    h, w, _ = image_size(loaded)
    if answer is None:
        return no_answer(task, "(rows, cols), e.g. (range(10, 20), range(3, 9))")
    guess = _as_region(answer, (h, w))
    truth = receptive_field_mask(loaded, layer, int(y), int(x))
    if np.array_equal(guess, truth):
        t, b, le, r = _box(truth)
        return correct(
            task,
            f"rows {t} … {b}, columns {le} … {r}: a {b - t + 1} x {r - le + 1} window "
            "(clipped at the image's border).",
        )
    box, want = _box(guess), _box(truth)
    if box is None:
        return hint(task, "your region is empty.")
    filled = guess[box[0] : box[1] + 1, box[2] : box[3] + 1].all()
    if not filled:
        return hint(
            task,
            "your region has holes. A gradient on one image is not the whole story: a ReLU "
            "that is off or a max-pool that picked a neighbour hides a pixel on that image, "
            "yet another image can let it through. Which pixels are connected at all?",
        )
    size, true_size = (box[1] - box[0] + 1), (want[1] - want[0] + 1)
    sides = []
    for name, mine, right, outward in (
        ("top", box[0], want[0], -1),
        ("bottom", box[1], want[1], 1),
        ("left", box[2], want[2], -1),
        ("right", box[3], want[3], 1),
    ):
        if mine != right:
            sides.append(f"{name} ({'too far' if (mine - right) * outward > 0 else 'too short'})")
    if size <= true_size // 2:
        return hint(
            task,
            "your region is much too small: every convolution below this layer widens it by "
            "its kernel, and every pooling layer doubles what each step covers.",
        )
    if size >= 2 * true_size:
        return hint(task, "your region is much too large: count the layers again.")
    if size == true_size and (box[1] - box[0]) == (want[1] - want[0]):
        return hint(
            task,
            f"the size is right but the region is shifted: {', '.join(sides)}. Where in the "
            "input is the centre of unit (y, x), after the poolings' strides?",
        )
    return hint(task, f"close. These sides are off: {', '.join(sides)}.")
