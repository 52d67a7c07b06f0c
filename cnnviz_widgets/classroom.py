"""Self-checks for the exercise notebooks (``notebooks/exercises/``).

Each ``check_…`` function takes a student's answer and the model(s) the exercise is about,
computes the right answer from the model itself (nothing is stored), and returns a
:class:`CheckResult`: a green ✓, or an orange hint that points at what to look at without
giving the answer away.  A check never raises: an answer of the wrong type or shape, ``None``
or a string gets a hint saying what kind of answer is expected::

    from cnnviz_widgets import classroom

    model = cw.load_model("shapes")
    classroom.check_vertical_edge_filter(4, model)      # ✓ or a hint
    classroom.check_receptive_field((range(0, 8), range(0, 8)), model, "conv3", 5, 6)

Pure Keras, TensorFlow and numpy: importable and usable without Jupyter.  In a notebook a
result shows itself as a coloured box (``_repr_html_``); ``print(result)`` gives one line.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from .engine.attribution.methods import saliency
from .engine.model.introspect import get_layer
from .engine.model.loading import LoadedModel, as_loaded
from .engine.model.shapes import generate_shapes
from .engine.model.taps import Tap, extractor

__all__ = [
    "CheckResult",
    "check_convolution_value",
    "check_object_saliency",
    "check_pre_activation",
    "check_receptive_field",
    "check_smoother_filters",
    "check_vertical_edge_filter",
    "edge_image",
    "edge_responses",
    "filter_roughness",
    "object_saliency_share",
    "receptive_field_mask",
]


# ------------------------------------------------------------------------------ the result
@dataclass(frozen=True)
class CheckResult:
    """What a check says about an answer.

    Attributes:
        task: the task checked, in a few words.
        passed: True for a right answer.
        message: the praise (with what the answer means) or the hint.
        answered: False when there was no answer yet (``None``).
    """

    task: str
    passed: bool
    message: str
    answered: bool = True

    def __bool__(self) -> bool:
        return self.passed

    @property
    def mark(self) -> str:
        """``"✓"`` for a right answer, ``"…"`` for no answer yet, ``"✗"`` otherwise."""
        if self.passed:
            return "✓"
        return "✗" if self.answered else "…"

    def __str__(self) -> str:
        label = "right" if self.passed else ("hint" if self.answered else "no answer yet")
        return f"{self.mark} {self.task} — {label}: {self.message}"

    def _repr_html_(self) -> str:
        if self.passed:
            colour, background, label = "#1a7f37", "#e8f5ec", "Right"
        elif self.answered:
            colour, background, label = "#b35900", "#fff3e0", "Hint"
        else:
            colour, background, label = "#57606a", "#f3f4f6", "No answer yet"
        state = "pass" if self.passed else ("hint" if self.answered else "empty")
        return (
            f'<div class="cnnviz-check cnnviz-check-{state}" data-check="{state}" '
            f'style="border-left:6px solid {colour};background:{background};'
            f'padding:6px 10px;margin:4px 0;font-family:sans-serif;line-height:1.4">'
            f'<span style="color:{colour};font-weight:bold;font-size:1.2em">{self.mark}</span> '
            f"<b>{html.escape(self.task)}</b> — "
            f'<span style="color:{colour};font-weight:bold">{label}:</span> '
            f"{html.escape(self.message)}</div>"
        )


def _right(task: str, message: str) -> CheckResult:
    return CheckResult(task, True, message)


def _hint(task: str, message: str) -> CheckResult:
    return CheckResult(task, False, message)


def _no_answer(task: str, what: str) -> CheckResult:
    return CheckResult(task, False, f"set the answer to {what}, then run this cell again.", False)


class _Unreadable(Exception):
    """The answer is not of a kind the task expects; the message says which kind is."""


def _never_raises(task: str) -> Callable:
    """Turn any exception of a check into a hint: a check must not end in a traceback."""

    def wrap(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                return fn(*args, **kwargs)
            except _Unreadable as err:
                return _hint(task, str(err))
            except Exception as err:  # the model or the task's arguments, not the answer
                return _hint(
                    task,
                    f"the check could not run ({type(err).__name__}: {err}). Pass the model "
                    "and the task's values as the exercise shows them.",
                )

        return checked

    return wrap


# ------------------------------------------------------------------------ reading answers
def _one_value(answer: Any, what: str, dtype: Any = None, many: str = "") -> np.ndarray:
    """``answer`` as a 0-d array: one value (numpy scalars, tensors, one-element arrays and
    lists are fine), not a yes/no value nor text; ``many`` is added to the message for
    several values."""
    if isinstance(answer, (bool, np.bool_)):
        raise _Unreadable(f"{answer!r} is a yes/no value; {what}.")
    if isinstance(answer, str):
        raise _Unreadable(f"{answer!r} is text; {what} (a number, without quotes).")
    try:
        value = np.asarray(answer, dtype=dtype)
    except Exception:
        raise _Unreadable(f"this answer is not a number; {what}.") from None
    if value.size != 1:
        raise _Unreadable(
            f"this answer holds {value.size} values (shape {value.shape}); {what}: just one.{many}"
        )
    return value.reshape(())


def _as_int(answer: Any, what: str) -> int:
    """An integer answer (see :func:`_one_value`)."""
    value = _one_value(answer, what)
    if value.dtype.kind not in "iuf" or not np.isfinite(value):
        raise _Unreadable(f"{answer!r} is not a number; {what}.")
    if value != np.round(value):
        raise _Unreadable(f"{float(value)} is not a whole number; {what}.")
    return int(value)


def _as_float(answer: Any, what: str) -> float:
    """A real-number answer (see :func:`_one_value`)."""
    many = " Did you forget to add the products up?"
    value = float(_one_value(answer, what, np.float64, many))
    if not math.isfinite(value):
        raise _Unreadable(f"{value} is not a finite number; {what}.")
    return value


# ------------------------------------------------------------------------- model helpers
_MEMO: dict[tuple, Any] = {}


def _fingerprint(model: keras.Model) -> tuple:
    """Cheap identity of a model's current weights (a check re-run after training sees it)."""
    return tuple(round(float(np.abs(np.asarray(w)).sum()), 4) for w in model.weights)


def _memo(kind: tuple, loaded: LoadedModel, compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for this model's weights: a check that is run again (or a
    wrong answer followed by the right one) does not measure the same thing twice."""
    key = (kind, id(loaded.model), _fingerprint(loaded.model))
    if key not in _MEMO:
        if len(_MEMO) > 64:
            _MEMO.clear()
        _MEMO[key] = compute()
    return _MEMO[key]


def _outputs(loaded: LoadedModel, path: str, images: np.ndarray, kind: str = "output"):
    """The tapped tensor of ``path`` for display ``images`` in [0, 1], as numpy."""
    model = extractor(loaded, [Tap(path, kind)], with_outputs=False)
    out = model(loaded.preprocessing(np.asarray(images, np.float32)))
    out = out[0] if isinstance(out, (list, tuple)) else out
    return np.asarray(out)


def _conv_layer(loaded: LoadedModel, layer: Any) -> tuple[keras.layers.Layer, str]:
    found, path = get_layer(loaded.model, layer)
    if not isinstance(found, keras.layers.Conv2D) or isinstance(
        found, keras.layers.Conv2DTranspose
    ):
        raise ValueError(
            f"{path} is a {type(found).__name__}; this exercise is about a Conv2D layer "
            "(for the shapes model: conv1 … conv4)"
        )
    return found, path


def _image_size(loaded: LoadedModel) -> tuple[int, int, int]:
    shape = loaded.input_shape
    if not isinstance(shape, tuple) or len(shape) != 3 or None in shape:
        raise ValueError(f"the exercise needs a model with one fixed-size image input, not {shape}")
    return int(shape[0]), int(shape[1]), int(shape[2])


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
    _, path = _conv_layer(loaded, layer)
    h, w, c = _image_size(loaded)
    if h != w:
        raise ValueError(f"edge images are square; this model takes {h}x{w} images")
    images = np.stack([edge_image(o, h, p) for o in ("vertical", "horizontal") for p in (1, -1)])[
        ..., :1
    ].repeat(c, axis=-1)
    maps = _outputs(loaded, path, images)  # (4, mh, mw, channels)
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


@_never_raises("Which filter answers vertical edges")
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
    found, path = _conv_layer(loaded, layer)
    n = int(found.filters)
    if answer is None:
        return _no_answer(task, f"one filter index of {path} (0 … {n - 1})")
    if isinstance(answer, (list, tuple, set, np.ndarray)) and np.asarray(list(answer)).size > 1:
        raise _Unreadable(f"name one filter (an int from 0 to {n - 1}), not {len(answer)}")
    index = _as_int(answer, f"answer with one filter index of {path}, an int from 0 to {n - 1}")
    if not 0 <= index < n:
        return _hint(task, f"{path} has {n} filters, numbered 0 … {n - 1}; {index} is not one.")
    vertical, horizontal = edge_responses(loaded, path)
    preference = vertical - horizontal
    best = float(preference.max())
    if best <= 0:
        raise ValueError(f"no filter of {path} answers a vertical edge more than a horizontal one")
    good = preference >= VERTICAL_TIE * best
    if good[index]:
        others = [int(i) for i in np.flatnonzero(good) if i != index]
        also = f" (filter {', '.join(map(str, others))} is about as good)" if others else ""
        return _right(
            task,
            f"filter {index} answers a vertical edge with {vertical[index]:.2f} and a "
            f"horizontal one with only {horizontal[index]:.2f}{also}.",
        )
    strongest = max(float(vertical.max()), float(horizontal.max()), 1e-12)
    if max(vertical[index], horizontal[index]) < 0.05 * strongest:
        return _hint(
            task,
            f"filter {index} hardly answers any edge: its activation stays near zero. Look for "
            "a kernel with a clearly dark side and a clearly light side.",
        )
    if horizontal[index] >= vertical[index]:
        return _hint(
            task,
            f"filter {index} answers a horizontal edge at least as strongly as a vertical one: "
            "its kernel changes from top to bottom (or in every direction). Look for one that "
            "changes from left to right.",
        )
    share = 100 * preference[index] / best
    return _hint(
        task,
        f"filter {index} does prefer vertical edges, but only {share:.0f} % as much as the "
        "best one. Measure the others: feed classroom.edge_image('vertical') and "
        "edge_image('horizontal') to cw.feature_maps and compare each channel on the edge.",
    )


# ===================================================== 2. one convolution value, by hand
@dataclass(frozen=True)
class _Convolution:
    """The truth for one unit of a Conv2D, and the values of the usual slips."""

    pre_activation: float
    value: float
    activation: str
    slips: dict[str, float]


def _convolution(loaded: LoadedModel, image: Any, layer: Any, channel: int, y: int, x: int):
    found, path = _conv_layer(loaded, layer)
    image = np.asarray(image, np.float32)
    h, w, c = _image_size(loaded)
    if image.shape != (h, w, c):
        raise ValueError(f"the image must have the model's input shape {(h, w, c)}")
    inputs = _outputs(loaded, path, image[None], kind="input")  # what the layer reads
    out = _outputs(loaded, path, image[None])[0]
    n = int(found.filters)
    if not (0 <= channel < n and 0 <= y < out.shape[0] and 0 <= x < out.shape[1]):
        raise ValueError(
            f"channel {channel}, y {y}, x {x} is outside {path}'s output "
            f"({out.shape[0]} x {out.shape[1]} x {n})"
        )
    kernel = np.asarray(keras.ops.convert_to_numpy(found.kernel), np.float64)
    bias = (
        np.asarray(keras.ops.convert_to_numpy(found.bias), np.float64)
        if found.use_bias
        else np.zeros(n)
    )
    # the layer's own arithmetic (its convolution op, then bias and activation) is the truth
    pre = found.convolution_op(tf.constant(inputs), found.kernel) + (
        found.bias if found.use_bias else 0.0
    )
    pre = np.asarray(pre)[0, y, x, channel].item()
    value = float(out[y, x, channel])
    # the usual slips, recomputed in numpy: each gets its own hint
    kh, kw = kernel.shape[:2]
    (sy, sx), (dy, dx) = found.strides, found.dilation_rate
    ins = np.asarray(inputs[0], np.float64)
    if found.padding == "same":
        top = max((out.shape[0] - 1) * sy + (kh - 1) * dy + 1 - ins.shape[0], 0) // 2
        left = max((out.shape[1] - 1) * sx + (kw - 1) * dx + 1 - ins.shape[1], 0) // 2
    else:
        top = left = 0
    k = kernel[..., channel]

    def patch_at(r0: int, c0: int, pad: str = "constant") -> np.ndarray | None:
        rows = r0 + dy * np.arange(kh)
        cols = c0 + dx * np.arange(kw)
        if pad == "none" and (rows.min() < 0 or cols.min() < 0):
            return None
        if pad == "none" and (rows.max() >= ins.shape[0] or cols.max() >= ins.shape[1]):
            return None
        if pad == "edge":
            return ins[np.clip(rows, 0, ins.shape[0] - 1)][:, np.clip(cols, 0, ins.shape[1] - 1)]
        patch = np.zeros((kh, kw, ins.shape[2]))
        ok_r = (rows >= 0) & (rows < ins.shape[0])
        ok_c = (cols >= 0) & (cols < ins.shape[1])
        patch[np.ix_(ok_r, ok_c)] = ins[np.ix_(rows[ok_r], cols[ok_c])]
        return patch

    r0, c0 = y * sy - top, x * sx - left
    patch = patch_at(r0, c0)
    b = bias[channel]
    slips: dict[str, float] = {
        "no bias": float((patch * k).sum()),
        "flipped kernel": float((patch * k[::-1, ::-1]).sum() + b),
        "one input channel": float((patch[..., 0] * k[..., 0]).sum() + b),
        "kernel transposed": float((patch * k.transpose(1, 0, 2)).sum() + b)
        if kh == kw
        else math.nan,
    }
    corner = patch_at(y * sy, x * sx, "none")
    if corner is not None and (top or left):
        slips["window from the corner"] = float((corner * k).sum() + b)
    edge = patch_at(r0, c0, "edge")
    slips["edge padding"] = float((edge * k).sum() + b)
    if found.activation is not None:
        slips["activation forgotten"] = float(pre)
    return _Convolution(float(pre), value, getattr(found.activation, "__name__", "?"), slips)


_SLIP_HINTS = {
    "no bias": "close, but the layer adds one more number after the products are summed.",
    "flipped kernel": (
        "that is the mathematical convolution, with the kernel flipped. Keras (like every "
        "deep-learning library) does not flip it: multiply tap [i, j] of the kernel with "
        "pixel [i, j] of the patch."
    ),
    "one input channel": (
        "that uses one input channel only; the kernel has a slice for every input channel, "
        "and all of them are summed."
    ),
    "kernel transposed": (
        "rows and columns are swapped somewhere: kernel[i, j] goes with patch[i, j]."
    ),
    "window from the corner": (
        "your window starts at (y, x). With padding='same' the window is centred on (y, x): "
        "it starts half a kernel above and to the left."
    ),
    "edge padding": (
        "where the window hangs over the border you repeated the border pixels; Keras pads "
        "with zeros there."
    ),
    "activation forgotten": (
        "that is the sum before the activation function. Apply the layer's activation to it."
    ),
}


_PRE_TASK = "One convolution value, before the activation"
_VALUE_TASK = "One convolution value, after the activation"


def _close(a: float, b: float) -> bool:
    """Equal up to rounding to two decimals (and float32 arithmetic)."""
    return abs(a - b) <= max(0.006, 2e-3 * abs(b))


def _check_unit(
    answer: Any,
    model: Any,
    image: Any,
    channel: int,
    y: int,
    x: int,
    layer: Any,
    after_activation: bool,
) -> CheckResult:
    task = _VALUE_TASK if after_activation else _PRE_TASK
    loaded = as_loaded(model)
    what = "the value before the activation" if not after_activation else "the layer's output"
    if answer is None:
        return _no_answer(task, f"{what} (a number)")
    guess = _as_float(answer, f"answer with {what}, one number")
    truth = _convolution(loaded, image, layer, int(channel), int(y), int(x))
    target = truth.value if after_activation else truth.pre_activation
    if _close(guess, target):
        if after_activation:
            return _right(
                task,
                f"{truth.pre_activation:.3f} → {truth.activation} → {truth.value:.3f}, "
                "the model's own output at this position.",
            )
        return _right(task, f"sum of products + bias = {truth.pre_activation:.3f}.")
    if after_activation and _close(guess, truth.pre_activation):
        return _hint(task, _SLIP_HINTS["activation forgotten"])
    for slip, value in truth.slips.items():
        if slip == "activation forgotten":
            continue
        # a slip that gives the right sum at this unit (edge padding away from the border)
        # is no slip here
        if _close(value, truth.pre_activation) or not math.isfinite(value):
            continue
        if _close(guess, value) and not _close(value, target):
            return _hint(task, _SLIP_HINTS[slip])
    if not after_activation and _close(guess, truth.value) and truth.value != truth.pre_activation:
        return _hint(task, "that is after the activation; this task asks for the sum before it.")
    if _close(-guess, target):
        return _hint(task, "right size, wrong sign: check the signs of the kernel's taps.")
    return _hint(
        task,
        "not yet. Take the window of the input centred on (y, x), all input channels; multiply "
        "it tap by tap with the filter's kernel; add everything up and add the bias"
        + (", then apply the activation." if after_activation else "."),
    )


@_never_raises(_PRE_TASK)
def check_pre_activation(
    answer: Any, model: Any, image: Any, channel: int, y: int, x: int, layer: Any = "conv1"
) -> CheckResult:
    """Is ``answer`` the sum of products plus bias of unit ``(y, x)`` of ``layer``'s ``channel``?

    The truth is the layer's own convolution op on what the layer receives for ``image``.
    Wrong answers that match a usual slip (no bias, a flipped or transposed kernel, one input
    channel, a window started at the corner, edge padding) get a hint about that slip.

    Args:
        answer: a number.
        model: the model; ``image``: a display image ``(H, W, C)`` in [0, 1].
        channel, y, x: the unit; ``layer``: a Conv2D layer.
    """
    return _check_unit(answer, model, image, channel, y, x, layer, after_activation=False)


@_never_raises(_VALUE_TASK)
def check_convolution_value(
    answer: Any, model: Any, image: Any, channel: int, y: int, x: int, layer: Any = "conv1"
) -> CheckResult:
    """Is ``answer`` the output of ``layer`` at ``(y, x)``, channel ``channel``, for ``image``?

    The truth is the model's own output there; the hints are those of
    :func:`check_pre_activation`, plus a forgotten activation.
    """
    return _check_unit(answer, model, image, channel, y, x, layer, after_activation=True)


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
    h, w, c = _image_size(loaded)
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
        raise _Unreadable(f"{answer!r} is not a region of the image; {how}.")
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        axes = []
        for part, size in zip(answer, shape):
            if isinstance(part, slice):
                axes.append(np.arange(size)[part])
            elif isinstance(part, (range, list, tuple, np.ndarray)):
                values = np.asarray(list(part) if isinstance(part, range) else part)
                if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
                    raise _Unreadable(f"rows and columns must be whole numbers; {how}.")
                axes.append(values.astype(int))
            else:
                raise _Unreadable(f"{part!r} is not a range of rows or columns; {how}.")
        for values, size, name in zip(axes, shape, ("row", "column")):
            if values.size and (values.min() < 0 or values.max() >= size):
                raise _Unreadable(
                    f"a {name} of your region is outside the image (0 … {size - 1}); "
                    "the region stops at the image's border."
                )
        mask = np.zeros(shape, bool)
        mask[np.ix_(axes[0], axes[1])] = True
        return mask
    try:
        mask = np.asarray(answer)
    except Exception:
        raise _Unreadable(f"this answer is not a region; {how}.") from None
    if mask.ndim == 3 and mask.shape[:2] == shape:
        mask = mask.any(axis=-1)
    if mask.shape != shape or mask.dtype.kind not in "biuf":
        raise _Unreadable(f"a mask of shape {mask.shape} does not fit; {how}.")
    return mask.astype(bool)


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not rows.size:
        return None
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


@_never_raises("Which pixels can change the unit")
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
    h, w, _ = _image_size(loaded)
    if answer is None:
        return _no_answer(task, "(rows, cols), e.g. (range(10, 20), range(3, 9))")
    guess = _as_region(answer, (h, w))
    truth = receptive_field_mask(loaded, layer, int(y), int(x))
    if np.array_equal(guess, truth):
        t, b, le, r = _box(truth)
        return _right(
            task,
            f"rows {t} … {b}, columns {le} … {r}: a {b - t + 1} x {r - le + 1} window "
            "(clipped at the image's border).",
        )
    box, want = _box(guess), _box(truth)
    if box is None:
        return _hint(task, "your region is empty.")
    filled = guess[box[0] : box[1] + 1, box[2] : box[3] + 1].all()
    if not filled:
        return _hint(
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
        return _hint(
            task,
            "your region is much too small: every convolution below this layer widens it by "
            "its kernel, and every pooling layer doubles what each step covers.",
        )
    if size >= 2 * true_size:
        return _hint(task, "your region is much too large: count the layers again.")
    if size == true_size and (box[1] - box[0]) == (want[1] - want[0]):
        return _hint(
            task,
            f"the size is right but the region is shifted: {', '.join(sides)}. Where in the "
            "input is the centre of unit (y, x), after the poolings' strides?",
        )
    return _hint(task, f"close. These sides are off: {', '.join(sides)}.")


# ============================================================ 4. comparing two models
def filter_roughness(model: Any, layer: Any = "conv1") -> float:
    """How rough a layer's kernels are: for each live filter, the summed squared difference
    between neighbouring taps (across rows and columns, every input channel) divided by its
    summed squared taps; the mean over filters.  0 for constant kernels; about 2 for noise.
    Filters whose weights are all (nearly) zero are left out.
    """
    loaded = as_loaded(model)
    found, _ = _conv_layer(loaded, layer)
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
    h = _image_size(loaded)[0]

    def compute() -> float:
        batch = generate_shapes(images, seed=seed, size=h)
        shares = []
        for image, mask, label in zip(batch.images, batch.masks, batch.labels):
            grad = np.abs(saliency(loaded, image, int(label)).raw).max(axis=-1)
            shares.append(float(grad[mask].sum() / max(float(grad.sum()), 1e-30)))
        return float(np.mean(shares))

    return _memo(("saliency share", images, seed), loaded, compute)


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
        raise _Unreadable(f"{answer!r} is not one of the models; {how}.")
    for name, model in models.items():
        if answer is model:
            return name
        if isinstance(answer, LoadedModel) and isinstance(model, LoadedModel):
            if answer.model is model.model:
                return name
        if isinstance(model, LoadedModel) and answer is model.model:
            return name
    raise _Unreadable(f"this answer is not one of the models; {how}.")


def _compare(
    answer: Any,
    models: Mapping[str, Any],
    task: str,
    measure: Callable[[Any], float],
    larger_wins: bool,
    margin: float,
    unit: str,
    hint: str,
) -> CheckResult:
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("pass the models as a dict, e.g. {'robust': robust, 'standard': standard}")
    if answer is None:
        return _no_answer(task, f"one of {', '.join(repr(n) for n in models)}")
    name = _model_name(answer, models)
    scores = {n: measure(m) for n, m in models.items()}
    ranked = sorted(scores, key=scores.get, reverse=larger_wins)
    best = scores[ranked[0]]
    text = ", ".join(f"{n} {scores[n]:.{3 if abs(scores[n]) < 10 else 1}f}" for n in ranked)
    if abs(scores[name] - best) <= margin:
        close = len([n for n in scores if abs(scores[n] - best) <= margin]) > 1
        note = " — too close to call: either answer counts" if close else ""
        return _right(task, f"{unit}: {text}{note}.")
    return _hint(task, hint)


@_never_raises("Whose first-layer filters are smoother")
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
        hint=(
            "look again, filter by filter: in a smooth kernel neighbouring taps have similar "
            "colours, in a rough one they jump from tap to tap like salt and pepper. Put both "
            "FilterGallery panels side by side (or compare the kernels' neighbour differences)."
        ),
    )


@_never_raises("Whose gradient looks at the object")
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
        hint=(
            "look at more than one image: for each model, how much of the saliency map lies "
            "on the shape and how much on the background? The generator's masks "
            "(cw.generate_shapes(...).masks) tell you where the shape is."
        ),
    )
