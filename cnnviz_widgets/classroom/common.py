"""What every exercise check shares: the result a check returns, reading a student's answer,
and the model helpers the checks compute their right answers with."""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from ..engine.model.introspect import get_layer
from ..engine.model.loading import LoadedModel
from ..engine.model.taps import Tap, extractor


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


def correct(task: str, message: str) -> CheckResult:
    return CheckResult(task, True, message)


def hint(task: str, message: str) -> CheckResult:
    return CheckResult(task, False, message)


def no_answer(task: str, what: str) -> CheckResult:
    return CheckResult(task, False, f"set the answer to {what}, then run this cell again.", False)


class Unreadable(Exception):
    """The answer is not of a kind the task expects; the message says which kind is."""


def never_raises(task: str) -> Callable:
    """Turn any exception of a check into a hint: a check must not end in a traceback."""

    def wrap(fn: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> CheckResult:
            try:
                return fn(*args, **kwargs)
            except Unreadable as err:
                return hint(task, str(err))
            except Exception as err:  # the model or the task's arguments, not the answer
                return hint(
                    task,
                    f"the check could not run ({type(err).__name__}: {err}). Pass the model "
                    "and the task's values as the exercise shows them.",
                )

        return checked

    return wrap


# ------------------------------------------------------------------------ reading answers
def one_value(answer: Any, what: str, dtype: Any = None, many: str = "") -> np.ndarray:
    """``answer`` as a 0-d array: one value (numpy scalars, tensors, one-element arrays and
    lists are fine), not a yes/no value nor text; ``many`` is added to the message for
    several values."""
    if isinstance(answer, (bool, np.bool_)):
        raise Unreadable(f"{answer!r} is a yes/no value; {what}.")
    if isinstance(answer, str):
        raise Unreadable(f"{answer!r} is text; {what} (a number, without quotes).")
    try:
        value = np.asarray(answer, dtype=dtype)
    except Exception:
        raise Unreadable(f"this answer is not a number; {what}.") from None
    if value.size != 1:
        raise Unreadable(
            f"this answer holds {value.size} values (shape {value.shape}); {what}: just one.{many}"
        )
    return value.reshape(())


def as_int(answer: Any, what: str) -> int:
    """An integer answer (see :func:`one_value`)."""
    value = one_value(answer, what)
    if value.dtype.kind not in "iuf" or not np.isfinite(value):
        raise Unreadable(f"{answer!r} is not a number; {what}.")
    if value != np.round(value):
        raise Unreadable(f"{float(value)} is not a whole number; {what}.")
    return int(value)


def as_float(answer: Any, what: str) -> float:
    """A real-number answer (see :func:`one_value`)."""
    many = " Did you forget to add the products up?"
    value = float(one_value(answer, what, np.float64, many))
    if not math.isfinite(value):
        raise Unreadable(f"{value} is not a finite number; {what}.")
    return value


# ------------------------------------------------------------------------- model helpers
_MEMO: dict[tuple, Any] = {}


def fingerprint(model: keras.Model) -> tuple:
    """Cheap identity of a model's current weights (a check re-run after training sees it)."""
    return tuple(round(float(np.abs(np.asarray(w)).sum()), 4) for w in model.weights)


def memo(kind: tuple, loaded: LoadedModel, compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered for this model's weights: a check that is run again (or a
    wrong answer followed by the right one) does not measure the same thing twice."""
    key = (kind, id(loaded.model), fingerprint(loaded.model))
    if key not in _MEMO:
        if len(_MEMO) > 64:
            _MEMO.clear()
        _MEMO[key] = compute()
    return _MEMO[key]


def outputs(loaded: LoadedModel, path: str, images: np.ndarray, kind: str = "output"):
    """The tapped tensor of ``path`` for display ``images`` in [0, 1], as numpy."""
    model = extractor(loaded, [Tap(path, kind)], with_outputs=False)
    out = model(loaded.preprocessing(np.asarray(images, np.float32)))
    out = out[0] if isinstance(out, (list, tuple)) else out
    return np.asarray(out)


def conv_layer(loaded: LoadedModel, layer: Any) -> tuple[keras.layers.Layer, str]:
    found, path = get_layer(loaded.model, layer)
    if not isinstance(found, keras.layers.Conv2D) or isinstance(
        found, keras.layers.Conv2DTranspose
    ):
        raise ValueError(
            f"{path} is a {type(found).__name__}; this exercise is about a Conv2D layer "
            "(for the shapes model: conv1 … conv4)"
        )
    return found, path


def image_size(loaded: LoadedModel) -> tuple[int, int, int]:
    shape = loaded.input_shape
    if not isinstance(shape, tuple) or len(shape) != 3 or None in shape:
        raise ValueError(f"the exercise needs a model with one fixed-size image input, not {shape}")
    return int(shape[0]), int(shape[1]), int(shape[2])
