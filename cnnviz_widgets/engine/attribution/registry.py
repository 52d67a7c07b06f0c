"""One door to every attribution method: a registry of records and :func:`explain`.

A method is one :class:`Method` record (name, label, one-line description with its
citation, its parameters with defaults and ranges, its kind, whether it needs a spatial
layer and whether it is long) and one compute function ``fn(run, **params)`` in one
module of this package, registered with :func:`register`.  :func:`explain` does the
shared opening once (the model, the class, the image fitted to the model, the parameters
checked against their ranges) and hands the compute function a :class:`Run`;
:func:`attribution_job` gives the same call as a :class:`~cnnviz_widgets.engine.jobs.Job`
(progress, Stop) for panels and long methods.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import CnnvizError
from ..jobs import Job
from ..model.internals import class_count
from ..model.loading import LoadedModel
from ..model.outputs import select_output
from ..model.scoring import prepare_image, spatial_layers, target_class
from .results import Attribution

__all__ = [
    "KINDS",
    "Method",
    "Param",
    "Run",
    "Stopped",
    "attribution_job",
    "attribution_methods",
    "explain",
    "method_info",
    "method_names",
    "register",
]

KINDS = ("gradient", "cam", "perturbation")


class Stopped(Exception):
    """Raised inside a compute function when its job was asked to stop."""


@dataclass(frozen=True)
class Param:
    """One setting of a method.

    Attributes:
        name: the keyword of :func:`explain`.
        default: its default (``None``: decided from the image or model, see ``help``).
        kind: ``"int"``, ``"float"``, ``"choice"``, ``"bool"`` or ``"layer"`` (a layer with a
            spatial output; ``None``: the last one).
        low, high: the valid range of a number (inclusive); ``None``: unbounded.
        choices: the valid values of a ``"choice"``.
        help: one line for tooltips and messages.
        step: a slider's step in a panel.
    """

    name: str
    default: Any
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    help: str = ""
    step: float | None = None

    def check(self, value: Any, method: str) -> Any:
        """``value`` as this parameter's type, or a ``CnnvizError`` naming the range."""
        if value is None and (self.default is None or self.kind == "layer"):
            return None
        where = f"{method}: {self.name}"
        if self.kind == "choice":
            if value not in self.choices:
                shown = ", ".join(map(repr, self.choices))
                raise CnnvizError(f"{where} must be one of {shown}, got {value!r}")
            return value
        if self.kind == "bool":
            return bool(value)
        if self.kind == "layer":
            return value
        try:
            number = int(value) if self.kind == "int" else float(value)
        except (TypeError, ValueError):
            raise CnnvizError(f"{where} is a number {self.range_text()}, got {value!r}") from None
        if self.kind == "int" and number != value:
            raise CnnvizError(f"{where} is a whole number {self.range_text()}, got {value!r}")
        if not math.isfinite(number) or (
            (self.low is not None and number < self.low)
            or (self.high is not None and number > self.high)
        ):
            raise CnnvizError(f"{where} must be {self.range_text()}, got {value!r}")
        return number

    def range_text(self) -> str:
        """``"in [1, 512]"``, ``">= 1"``, ``""``."""
        if self.low is not None and self.high is not None:
            return f"in [{self.low:g}, {self.high:g}]"
        if self.low is not None:
            return f">= {self.low:g}"
        if self.high is not None:
            return f"<= {self.high:g}"
        return ""


@dataclass(frozen=True)
class Method:
    """The record of one attribution method (see the module docstring)."""

    name: str
    label: str
    description: str
    citation: str
    kind: str
    compute: Callable[..., Attribution]
    params: tuple[Param, ...] = ()
    needs_layer: bool = False
    long: bool = False
    fixed: dict = field(default_factory=dict)

    @property
    def tip(self) -> str:
        """The description and citation in one line (for tooltips)."""
        return f"{self.description} ({self.citation})"

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict:
        """Each parameter's default."""
        return {p.name: p.default for p in self.params}

    def checked(self, params: dict) -> dict:
        """``params`` completed with defaults and checked; unknown names are refused."""
        known = {p.name for p in self.params} | {"precision"}
        unknown = sorted(set(params) - known)
        if unknown:
            takes = ", ".join(sorted(known))
            raise CnnvizError(
                f"{self.name} takes no parameter {', '.join(map(repr, unknown))}: it takes {takes}"
            )
        out = {p.name: p.check(params.get(p.name, p.default), self.name) for p in self.params}
        if "precision" in params:
            out["precision"] = params["precision"]
        return out


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method record (a module of this package calls it at import)."""
    if method.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {method.kind!r}")
    _METHODS[method.name] = method
    return method


def attribution_methods(kind: str | None = None) -> list[Method]:
    """The registered method records (of one ``kind`` when given), in registration order:
    gradients, then CAMs, then perturbations."""
    order = {k: i for i, k in enumerate(KINDS)}
    found = [m for m in _METHODS.values() if kind is None or m.kind == kind]
    return sorted(found, key=lambda m: order[m.kind])


def method_names() -> list[str]:
    """The names :func:`explain` takes."""
    return [m.name for m in attribution_methods()]


def method_info(name: str) -> Method:
    """The record of ``name``; an unknown name lists the known ones."""
    if name not in _METHODS:
        raise CnnvizError(
            f"unknown attribution method {name!r}: use one of {', '.join(method_names())}"
        )
    return _METHODS[name]


@dataclass
class Run:
    """What a compute function gets: the shared opening, done once.

    Attributes:
        loaded: the model (a ``LoadedModel``).
        image: the display image fitted to the model, ``(H, W, C)`` float32.
        notes: what was changed to make it fit.
        target: the class index, ``-1`` for the predicted class.
        precision: the precision asked for (``"auto"`` by default; exact methods use
            float32 unless asked).
        progress: ``progress(done, total)``; raises :class:`Stopped` once stopping.
    """

    loaded: LoadedModel
    image: np.ndarray
    notes: list[str]
    target: int
    precision: str = "auto"
    report: Callable[..., None] | None = None
    stopping: Callable[[], bool] | None = None

    @property
    def target_arg(self):
        """The target as the public functions take it (``None``: the predicted class)."""
        return None if self.target < 0 else self.target

    def progress(self, done: int, total: int) -> None:
        """Say how far the work is; raises :class:`Stopped` when asked to stop."""
        if self.report is not None:
            self.report(done, total)
        if self.stopping is not None and self.stopping():
            raise Stopped()


def _open(model, image, method: str, target, params: dict, output=None):
    """``(method, Run, checked parameters)``: what :func:`explain` and the job share."""
    record = method_info(method)
    loaded = select_output(
        model, output, call=f"cw.explain(model, image, {method!r}, output={{output}})"
    )
    n = class_count(loaded.model)
    c = target_class(loaded, target, n)
    checked = record.checked(params)
    if record.needs_layer and not spatial_layers(loaded):
        from ..model.scoring import default_cam_layer

        default_cam_layer(loaded)  # raises the message that explains why
    img, notes = prepare_image(loaded, image)
    precision = checked.pop("precision", "auto")
    return record, Run(loaded, img, notes, c, precision), {**checked, **record.fixed}


def explain(
    model, image, method: str = "grad_cam", target=None, *, output=None, **params
) -> Attribution:
    """Attribute one class's score to the image with any registered method.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: RGB in ``[0, 1]`` or uint8 (any size: fitted to the model, with a note),
            gray, a PIL image, a path or the bytes of an image file.
        method: one of :func:`method_names` (``"grad_cam"``, ``"integrated_gradients"``,
            ``"score_cam"``, ``"rise"``, ...); :func:`method_info` gives its parameters.
        target: class index or name; ``None``: the predicted class.
        output: for a model with several outputs, the one to explain: its name (a dict
            output's key, or the output layer's name) or its index (see
            :func:`~cnnviz_widgets.select_output`); optional with one output.
        **params: the method's parameters (checked against their ranges), and
            ``precision`` for the methods that take it.

    Returns:
        an :class:`Attribution` (``method`` is the name, ``params`` the settings used).

    Raises:
        CnnvizError: an unknown method (the known ones listed), a parameter outside its
            range (named with the range), a CAM method on a model without a spatial layer.
    """
    record, run, checked = _open(model, image, method, target, params, output)
    return _finish(record, run, checked)


def _finish(record: Method, run: Run, checked: dict) -> Attribution:
    result = record.compute(run, precision=run.precision, **checked)
    result.method = record.name
    result.params = {k: v for k, v in checked.items() if k not in record.fixed}
    return result


def attribution_job(
    model, image, method: str = "grad_cam", target=None, *, output=None, **params
) -> Job:
    """:func:`explain` as a :class:`~cnnviz_widgets.engine.jobs.Job`: iterate it (or
    ``job.run()``) for progress; ``job.stop()`` ends it after the current batch, and then
    ``job.result`` is ``None``.  The arguments are checked here, before the job starts;
    the work runs in the caller's context as it is now (e.g. a panel's
    ``budget.long_runs_to`` handler), though in the job's thread."""
    record, run, checked = _open(model, image, method, target, params, output)
    context = contextvars.copy_context()

    def work(report, stopping):
        run.report, run.stopping = report, stopping
        try:
            return context.run(_finish, record, run, checked)
        except Stopped:
            return None

    return Job(work, record.label)
