"""What a run is asked for, checked before anything is built: the objective from what the
caller passed, and the run settings (steps, learning rate, penalty weights) from the preset
and the overrides, with a message naming the setting and what is allowed."""

from __future__ import annotations

import numpy as np

from ...errors import CnnvizError
from ..model.loading import LoadedModel, as_loaded
from . import objectives as obj
from . import recipes
from .presets import Preset, get_preset

__all__ = ["check_settings", "finite_number", "objective_from"]


def objective_from(spec, loaded: LoadedModel) -> obj.Objective:
    """``spec`` as an :class:`~.objectives.Objective`: itself, or for a class index or
    name (or a list of them) ``objectives.class_score``.  A pair ``(layer name, index)``
    that names a layer and no class is refused with the channel objective to use."""
    if isinstance(spec, obj.Objective):
        return spec
    if isinstance(spec, (int, np.integer, str)) and not isinstance(spec, bool):
        return obj.class_score(spec)
    if isinstance(spec, np.ndarray) and spec.ndim == 1 and spec.dtype.kind in "iu":
        return obj.class_score([int(i) for i in spec])  # np.arange(9): nine classes
    if isinstance(spec, (list, tuple, range)):
        first = spec[0] if len(spec) == 2 else None
        if isinstance(first, str) and first not in (loaded.class_names or []):
            if any(layer.name == first for layer in loaded.model.layers):
                raise CnnvizError(
                    f"{tuple(spec)!r} is read as two classes, and {first!r} is a layer, not "
                    f"a class: for channel {spec[1]!r} of layer {first!r} pass "
                    f"cw.objectives.channel({first!r}, {spec[1]!r})"
                )
        return obj.class_score(list(spec))
    raise CnnvizError(
        f"cannot make an objective from {type(spec).__name__}: pass one from "
        "cnnviz_widgets.objectives (class_logit, channel, ...), a class index or a class name"
    )


def finite_number(name: str, value) -> float:
    """``value`` as a float, or a CnnvizError when it is not a finite number."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CnnvizError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise CnnvizError(
            f"{name} is {out}: it must be a finite number (NaN or infinity would turn the "
            "images into NaN); give an ordinary value, or leave it out for the preset's"
        )
    return out


def check_settings(
    preset: str | Preset = "auto",
    *,
    model=None,
    steps: int | None = None,
    lr: float | None = None,
    tv: float | None = None,
    lp: float | None = None,
    blur: float | None = None,
    min_steps: int = 0,
) -> dict:
    """The run settings :func:`optimize` would use, checked: the preset's values where an
    argument is ``None``.  Panels call it to show the engine's own message before a run.
    ``preset="auto"`` is the recipe of ``model`` (``"lucid"`` without a model).

    Returns:
        ``{"steps", "lr", "tv", "lp", "blur"}`` as an int and floats.

    Raises:
        CnnvizError: naming the setting, the value and what is allowed (fewer than
            ``min_steps`` steps; a learning rate <= 0; a negative penalty; NaN or inf).
    """
    if model is not None:
        p = recipes.choose(preset, as_loaded(model))[0]
    else:
        p = get_preset(recipes.FALLBACK if preset == recipes.AUTO else preset)
    out = {}
    for name, given in (("tv", tv), ("lp", lp), ("blur", blur)):
        value = finite_number(name, getattr(p, name) if given is None else given)
        if value < 0:
            raise CnnvizError(f"{name} is a penalty weight and must be >= 0, got {value}")
        out[name] = value
    finite_number("the preset's p (of the Lp norm)", p.p)
    steps = p.steps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise CnnvizError(f"steps is a whole number of steps >= {min_steps}, got {steps!r}")
    if steps < min_steps:
        raise CnnvizError(f"steps must be at least {min_steps}, got {int(steps)}")
    out["steps"] = int(steps)
    lr = finite_number("the learning rate (lr)", p.lr if lr is None else lr)
    if not lr > 0:
        raise CnnvizError(f"the learning rate must be > 0, got {lr}")
    out["lr"] = lr
    return out
