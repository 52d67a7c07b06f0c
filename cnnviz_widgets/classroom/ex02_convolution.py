"""Exercise 02, one convolution value by hand: before and after the activation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ..engine.model.loading import LoadedModel, as_loaded
from .common import (
    CheckResult,
    as_float,
    conv_layer,
    correct,
    hint,
    image_size,
    never_raises,
    no_answer,
    outputs,
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
    found, path = conv_layer(loaded, layer)
    image = np.asarray(image, np.float32)
    h, w, c = image_size(loaded)
    if image.shape != (h, w, c):
        raise ValueError(f"the image must have the model's input shape {(h, w, c)}")
    inputs = outputs(loaded, path, image[None], kind="input")  # what the layer reads
    out = outputs(loaded, path, image[None])[0]
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
        return no_answer(task, f"{what} (a number)")
    guess = as_float(answer, f"answer with {what}, one number")
    truth = _convolution(loaded, image, layer, int(channel), int(y), int(x))
    target = truth.value if after_activation else truth.pre_activation
    if _close(guess, target):
        if after_activation:
            return correct(
                task,
                f"{truth.pre_activation:.3f} → {truth.activation} → {truth.value:.3f}, "
                "the model's own output at this position.",
            )
        return correct(task, f"sum of products + bias = {truth.pre_activation:.3f}.")
    if after_activation and _close(guess, truth.pre_activation):
        return hint(task, _SLIP_HINTS["activation forgotten"])
    for slip, value in truth.slips.items():
        if slip == "activation forgotten":
            continue
        # a slip that gives the right sum at this unit (edge padding away from the border)
        # is no slip here
        if _close(value, truth.pre_activation) or not math.isfinite(value):
            continue
        if _close(guess, value) and not _close(value, target):
            return hint(task, _SLIP_HINTS[slip])
    if not after_activation and _close(guess, truth.value) and truth.value != truth.pre_activation:
        return hint(task, "that is after the activation; this task asks for the sum before it.")
    if _close(-guess, target):
        return hint(task, "right size, wrong sign: check the signs of the kernel's taps.")
    return hint(
        task,
        "not yet. Take the window of the input centred on (y, x), all input channels; multiply "
        "it tap by tap with the filter's kernel; add everything up and add the bias"
        + (", then apply the activation." if after_activation else "."),
    )


@never_raises(_PRE_TASK)
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


@never_raises(_VALUE_TASK)
def check_convolution_value(
    answer: Any, model: Any, image: Any, channel: int, y: int, x: int, layer: Any = "conv1"
) -> CheckResult:
    """Is ``answer`` the output of ``layer`` at ``(y, x)``, channel ``channel``, for ``image``?

    The truth is the model's own output there; the hints are those of
    :func:`check_pre_activation`, plus a forgotten activation.
    """
    return _check_unit(answer, model, image, channel, y, x, layer, after_activation=True)
