"""What a run will cost, said before it starts: memory and time, from the model's layers.

A batch too big for memory used to end the process (``std::bad_alloc``, no message) and a
long run to block the kernel for hours.  Before an optimization, SmoothGrad or occlusion
starts, :func:`check` estimates

* its **memory**: the bytes of every layer's output (from the layers' output shapes and
  dtypes) times the images that go through the model at once, times a factor for what a
  backward pass keeps (measured: ``bench/bench_budget.py``), plus the weights; and
* its **time**: the forward FLOPs of the layers (``2 * kernel size / outputs channels *
  output elements`` for convolutions and dense layers) times the images the whole run
  processes, divided by this machine's measured speed (one small convolution, timed once
  per process).

A run whose memory estimate exceeds :data:`MEMORY_SHARE` of the memory this process may
still take (:func:`memory_limit`: the smallest of ``MemAvailable`` of ``/proc/meminfo``, or
``psutil`` where that is missing, and the limits the process runs under: ``RLIMIT_DATA``,
``RLIMIT_AS``, its control group's ``memory.max``; see :mod:`.limits`) is refused with
:class:`RunTooLargeError`, naming the estimate, the limit that bounds it and the largest
batch that fits; a run
estimated to take longer than :data:`WARN_SECONDS` warns with :class:`LongRunWarning`.
Both limits are module settings (``cnnviz_widgets.engine.model.budget.WARN_SECONDS = 600``).

A panel that runs these in its own threads shows the warning where the user looks, inside
the panel: within ``with long_runs_to(handler):`` a long run's message goes to
``handler`` instead of the ``warnings`` module (in that thread only: the handler is a
context variable, and ``warnings.catch_warnings`` is not safe across threads).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import keras
import numpy as np

from ...errors import CnnvizError
from .internals import iter_layers, output_shape
from .introspect import find_layer
from .limits import MemoryLimit, process_limits

__all__ = [
    "MEMORY_SHARE",
    "WARN_SECONDS",
    "Estimate",
    "LongRunWarning",
    "RunTooLargeError",
    "available_memory",
    "check",
    "check_occlusion",
    "check_optimize",
    "check_smoothgrad",
    "estimate",
    "forward_flops",
    "long_runs_to",
    "machine_flops",
    "memory_limit",
]

MEMORY_SHARE = 0.8
"""A run may use at most this share of the memory available when it starts."""

WARN_SECONDS = 300.0
"""Runs estimated to take longer than this warn (:class:`LongRunWarning`)."""

# Bytes a pass keeps per byte of layer outputs, calibrated with bench/bench_budget.py (the
# measurements: docs/benchmarks.md, "Run budgets").  A backward pass keeps every layer's
# output and its gradient; a forward pass frees each output once the next layer has read it.
_GRADIENT_KEEPS = 3.0
_FORWARD_KEEPS = 3.0  # times the widest layer's output
# The weights are in memory already; a call adds buffers of up to their size.
_WEIGHTS_KEEP = 1.0
# a forward + backward pass costs about this many forward passes (same bench)
_GRADIENT_TIME = 4.0


_LONG_RUN_HANDLER: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "cnnviz_long_run_handler", default=None
)


@contextlib.contextmanager
def long_runs_to(handler: Callable[[str], None]) -> Iterator[None]:
    """Within the block (in this thread), a long run's warning is ``handler(message)``
    instead of a :class:`LongRunWarning`; the run still starts.  A refusal
    (:class:`RunTooLargeError`) is raised as always.

    Example (what a panel does around the engine call)::

        with budget.long_runs_to(lambda text: panel.messages.show_note(text)):
            result = cw.occlusion(model, image)
    """
    token = _LONG_RUN_HANDLER.set(handler)
    try:
        yield
    finally:
        _LONG_RUN_HANDLER.reset(token)


class RunTooLargeError(CnnvizError, MemoryError):
    """A run would need more memory than is available (the message says how much)."""


class LongRunWarning(UserWarning):
    """A run is estimated to take longer than ``WARN_SECONDS``."""


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of a run.

    Attributes:
        what: the run, for people (``"optimize: batch 64, 256 steps at 224x224"``).
        bytes: the peak memory the run adds, in bytes.
        seconds: its wall time.
        available: the memory available when it was estimated (``None``: unknown).
        per_image: bytes that one more image at once adds (for "the largest batch").
        fixed: bytes that do not grow with the batch (the weights).
        limited_by: the limit that bounds ``available`` (:func:`memory_limit`), or ``None``.
    """

    what: str
    bytes: int
    seconds: float
    available: int | None
    per_image: int
    fixed: int
    limited_by: MemoryLimit | None = None

    def fits(self, share: float | None = None) -> bool:
        """The estimate is within ``share`` (default :data:`MEMORY_SHARE`) of the memory
        available (always true when that is unknown)."""
        share = MEMORY_SHARE if share is None else share
        return self.available is None or self.bytes <= share * self.available

    def largest_batch(self, share: float | None = None) -> int | None:
        """The most images at once that fit (``None``: memory unknown)."""
        share = MEMORY_SHARE if share is None else share
        if self.available is None:
            return None
        room = share * self.available - self.fixed
        return int(max(0, room // max(1, self.per_image)))

    def __str__(self) -> str:
        room = "unknown" if self.available is None else _size(self.available)
        return (
            f"{self.what}: about {_size(self.bytes)} of memory ({room} available) and "
            f"{_duration(self.seconds)}"
        )


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GB"  # pragma: no cover


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``; elsewhere
    ``psutil`` if installed), or ``None`` when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def memory_limit() -> MemoryLimit | None:
    """The memory this process may still take, and which limit says so: the smallest of
    :func:`available_memory` (``"MemAvailable"``) and the limits of
    :func:`.limits.process_limits` (``RLIMIT_DATA``, ``RLIMIT_AS``, the control group's);
    ``None`` when none is known."""
    found = list(process_limits())
    machine = available_memory()
    if machine is not None:
        found.append(MemoryLimit(machine, "MemAvailable", "the machine's available memory"))
    return min(found, key=lambda m: m.bytes) if found else None


# ----------------------------------------------------------------------- layer costs
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float64": 8, "int8": 1, "uint8": 1}


def _itemsize(layer) -> int:
    dtype = getattr(layer, "compute_dtype", None) or "float32"
    return _ITEMSIZE.get(str(dtype), 4)


def _elements(shape, hw: tuple[int, int]) -> int:
    """Elements per image of a ``(batch, ...)`` output; unknown spatial sizes take the
    image's own (an upper bound for a network that only shrinks its maps)."""
    dims = list(shape[1:])
    if len(dims) == 3:
        dims = [hw[0] if dims[0] is None else dims[0], hw[1] if dims[1] is None else dims[1]]
        dims.append(shape[-1])
    return int(np.prod([1 if d is None else int(d) for d in dims]))


def _flops(layer, elements: int) -> float:
    """Forward FLOPs of a layer per image (multiply-adds count 2)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel.shape[:2]
        return 2.0 * kh * kw * elements
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw, cin, _ = layer.depthwise_kernel.shape
        return 2.0 * elements * (kh * kw / max(1, int(layer.filters)) * cin + cin)
    kernel = getattr(layer, "kernel", None)
    shape = getattr(kernel, "shape", None)
    if shape is not None and len(shape) >= 2:
        fan_in = int(np.prod(shape)) // max(1, int(shape[-1]))
        return 2.0 * fan_in * elements
    return 4.0 * elements  # activations, pooling, normalization: a few operations each


@dataclass(frozen=True)
class _Costs:
    activations: int  # bytes of all layer outputs, one image
    widest: int  # bytes of the largest layer output, one image
    flops: float  # forward FLOPs, one image
    weights: int  # bytes of the weights


def _costs(model: keras.Model, hw: tuple[int, int], upto: set[str] | None = None) -> _Costs:
    """The costs of a model's layers for one image of ``hw`` pixels; with ``upto``, only
    the layers before the last of these paths (in topological order) count."""
    rows = []
    for _, path, _, layer, _ in iter_layers(model):
        if isinstance(layer, keras.Model):
            continue
        shape = output_shape(layer)
        if shape is None or isinstance(layer, keras.layers.InputLayer):
            elements = 0
        else:
            elements = _elements(shape, hw)
        rows.append((path, elements * _itemsize(layer), _flops(layer, elements), layer))
    if upto:
        last = max((i for i, r in enumerate(rows) if r[0] in upto), default=len(rows) - 1)
        rows = rows[: last + 1]
    weights = sum(
        int(np.prod(w.shape)) * _ITEMSIZE.get(str(w.dtype), 4) for r in rows for w in r[3].weights
    )
    return _Costs(
        activations=sum(r[1] for r in rows),
        widest=max((r[1] for r in rows), default=0),
        flops=float(sum(r[2] for r in rows)),
        weights=weights,
    )


def forward_flops(model: keras.Model, hw: tuple[int, int]) -> float:
    """Forward FLOPs of one image of ``hw`` pixels through ``model``'s layers (multiply-adds
    count 2), from the layers' shapes: nothing runs."""
    return _costs(model, hw).flops


# --------------------------------------------------------------------- machine speed
_SPEED: dict[str, float] = {}
_SPEED_FOR = 60.0  # seconds a measure of the machine's speed is used (its load changes)
_SPEED_LOCK = threading.Lock()


def _measure_speed() -> None:
    import tensorflow as tf

    x = tf.random.stateless_normal((4, 56, 56, 64), seed=[0, 1])
    k = tf.random.stateless_normal((3, 3, 64, 64), seed=[0, 2])
    flops = 2.0 * 3 * 3 * 64 * 4 * 56 * 56 * 64
    tf.nn.conv2d(x, k, 1, "SAME").numpy()  # warm up
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        tf.nn.conv2d(x, k, 1, "SAME").numpy()
        best = min(best, time.perf_counter() - t0)
    _SPEED.update(flops=flops / max(best, 1e-6), at=time.monotonic())


def _refresh_speed() -> None:
    try:
        _measure_speed()
    finally:
        _SPEED_LOCK.release()


def machine_flops() -> float:
    """Forward FLOPs per second of this machine on a convolution, as loaded now: a 3x3,
    64 -> 64 channel convolution of four 56x56 maps, best of three (about 1 GFLOP each).

    The first call in a process measures (a few tenths of a second); a measure older
    than a minute is refreshed in a background thread while the last one is returned, so
    that no run waits for it (the first image of a run comes sooner)."""
    if "flops" not in _SPEED:
        with _SPEED_LOCK:
            if "flops" not in _SPEED:
                _measure_speed()
    elif time.monotonic() - _SPEED["at"] > _SPEED_FOR and _SPEED_LOCK.acquire(blocking=False):
        # one refresh at a time; the thread releases the lock when it is done
        try:
            thread = threading.Thread(target=_refresh_speed, name="cnnviz-speed", daemon=True)
            thread.start()
        except RuntimeError:  # no more threads: keep the last measure
            _SPEED_LOCK.release()
    return _SPEED["flops"]


# ------------------------------------------------------------------------ estimates
def estimate(
    model: keras.Model,
    hw: tuple[int, int],
    *,
    at_once: int,
    images: int,
    gradient: bool,
    what: str,
    upto: set[str] | None = None,
    extra_per_image: int = 0,
) -> Estimate:
    """The memory and time of a run.

    Args:
        model: the built ``keras.Model``.
        hw: the image size ``(height, width)``.
        at_once: images that go through the model together (the batch of one call).
        images: images the whole run passes through the model (``steps * batch``...).
        gradient: a forward and backward pass (optimization, saliency) or forward only.
        what: the run, for messages.
        upto: only the layers up to the last of these paths run (an optimization of an
            inner layer).
        extra_per_image: bytes per image the run keeps besides the model's (its own
            variables).
    """
    c = _costs(model, hw, upto)
    if gradient:
        per_image = int(_GRADIENT_KEEPS * c.activations) + extra_per_image
    else:
        per_image = int(_FORWARD_KEEPS * c.widest) + extra_per_image
    fixed = int(_WEIGHTS_KEEP * c.weights)
    seconds = images * c.flops * (_GRADIENT_TIME if gradient else 1.0) / machine_flops()
    limit = memory_limit()
    return Estimate(
        what=what,
        bytes=fixed + per_image * int(at_once),
        seconds=float(seconds),
        available=None if limit is None else limit.bytes,
        per_image=per_image,
        fixed=fixed,
        limited_by=limit,
    )


def _bounded(est: Estimate) -> str:
    """What may be used and which limit says so, for a refusal."""
    limit = est.limited_by
    if limit is None or limit.name == "MemAvailable":
        return f"{_size(est.available)} is available now"
    return f"the process may use {_size(est.available)} more ({limit.name}: {limit.detail})"


_RAISE = {
    "RLIMIT_DATA": "raise the limit (`ulimit -d`, or resource.setrlimit(RLIMIT_DATA))",
    "RLIMIT_AS": "raise the limit (`ulimit -v`, or resource.setrlimit(RLIMIT_AS))",
}


def _after(limit: MemoryLimit | None) -> str:
    if limit is None or limit.name == "MemAvailable":
        return ", or free memory and try again"
    how = _RAISE.get(limit.name, "ask for a larger memory limit for this container or job")
    return f", or {how}"


def check(est: Estimate, way_out: str, *, stacklevel: int = 3) -> Estimate:
    """Refuse a run that will not fit in memory, warn about one that will take long
    (:class:`LongRunWarning`, or the handler of :func:`long_runs_to`).

    Args:
        est: from :func:`estimate`.
        way_out: what to change, for the messages (``"lower batch"``...).

    Raises:
        RunTooLargeError: the estimate exceeds ``MEMORY_SHARE`` of the available memory.
    """
    if not est.fits():
        fit = est.largest_batch()
        raise RunTooLargeError(
            f"{est.what} would need about {_size(est.bytes)} of memory, and "
            f"{_bounded(est)} (at most {MEMORY_SHARE:.0%} of it is used): {way_out}"
            + (f" (about {fit} images at once fit)" if fit else "")
            + _after(est.limited_by)
        )
    if est.seconds > WARN_SECONDS:
        message = (
            f"{est.what} will take about {_duration(est.seconds)} on this machine (estimated "
            f"from the model's FLOPs): {way_out} for a quicker run"
        )
        handler = _LONG_RUN_HANDLER.get()
        if handler is not None:
            handler(message)
        else:
            warnings.warn(message, LongRunWarning, stacklevel=stacklevel)
    return est


# ------------------------------------------------------------------- the engine's runs
def check_optimize(model: keras.Model, objective, hwc, batch: int, steps: int) -> Estimate:
    """:func:`check` for an activation maximization: ``steps`` forward + backward passes
    of ``batch`` images through the layers up to the deepest one the objective reads."""
    h, w, c = hwc
    terms = [t for _, t in objective.terms]
    upto = None
    if not any(t.needs_logits for t in terms):
        upto = {find_layer(model, t.layer)[1] for t in terms if t.layer is not None} or None
    est = estimate(
        model,
        (h, w),
        at_once=batch,
        images=batch * steps,
        gradient=True,
        what=f"this optimization ({batch} image(s) of {h}x{w}, {steps} steps)",
        upto=upto,
        # the image variables, Adam's moments, the transformed copies of the image
        extra_per_image=16 * h * w * c * 4,
    )
    return check(est, "lower the batch (fewer targets), the steps or the image size", stacklevel=4)


def check_smoothgrad(model: keras.Model, image: np.ndarray, samples: int, per_call: int):
    """:func:`check` for SmoothGrad: ``samples`` noisy copies, ``per_call`` at a time (each
    call also differentiates the clean image)."""
    h, w, c = image.shape
    at_once = min(per_call, samples) + 1
    est = estimate(
        model,
        (h, w),
        at_once=at_once,
        images=samples + math.ceil(samples / per_call),
        gradient=True,
        what=f"SmoothGrad ({samples} samples, {at_once - 1} per call, {h}x{w})",
        extra_per_image=4 * h * w * c * 4,
    )
    return check(est, "lower batch_size (copies per call) or smooth", stacklevel=4)


def check_occlusion(model: keras.Model, image: np.ndarray, positions: int, per_call: int):
    """:func:`check` for occlusion: ``positions`` occluded images (and the clean one),
    ``per_call`` at a time, forward only."""
    h, w, c = image.shape
    at_once = min(per_call, positions)
    est = estimate(
        model,
        (h, w),
        at_once=at_once,
        images=positions + 1,
        gradient=False,
        what=f"occlusion ({positions} patch positions, {at_once} per call, {h}x{w})",
        extra_per_image=(3 * c + 1) * h * w * 4,  # the mask and the occluded images
    )
    return check(est, "lower batch_size, or use a larger patch or stride", stacklevel=4)
