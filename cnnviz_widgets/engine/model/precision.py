"""Reduced precision: run the many passes of a method on a bfloat16 or float16 twin of the
model, where the hardware makes that faster.

Methods that run many forward or backward passes (class and channel optimization,
occlusion, SmoothGrad, feature maps, and later dataset ranking and the atlas) take
``precision="auto" | "float32" | "bfloat16" | "float16"``:

- ``"float32"``: the user's model itself.
- ``"bfloat16"`` / ``"float16"``: a *twin* of the model whose layers compute under Keras'
  ``mixed_bfloat16`` / ``mixed_float16`` policy and that shares the model's weights (the
  same ``tf.Variable`` objects: no copy, no extra memory, later edits are seen).  It is
  built once per model and cached (weakly: it goes away with the model).  The user's
  model never changes.  The callers keep the image, its parameterization, the optimizer
  state and the objective's reduction in float32 and return float32 results.
- ``"auto"``: reduced precision only where it is faster on this hardware and the twin's
  outputs agree with the model's (see :func:`choose_precision`); else float32.

The helpers here (:func:`resolve`, :func:`model_in`) are what a new method needs to offer
the setting: resolve the request once per call, then build its compiled functions on
``model_in(loaded, choice.precision)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import threading
import time
import weakref
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from .budget import forward_flops
from .internals import image_input, quiet_retracing, reduced_precision_twin
from .loading import LoadedModel, as_loaded

__all__ = [
    "PRECISIONS",
    "PrecisionChoice",
    "check_precision",
    "choose_precision",
    "decide",
    "hardware_precisions",
    "model_in",
    "precision_of",
    "resolve",
]

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
"""The values ``precision=`` accepts."""

WORKS = ("optimize", "gradient", "forward")
"""What a choice is measured on: an optimization (judged by a short run in both precisions,
:mod:`~cnnviz_widgets.engine.optvis.probe`), a forward+backward pass with respect to the
input (SmoothGrad) or a batched forward pass (occlusion, feature maps, ranking)."""

MIN_SPEEDUP = 1.2
"""``"auto"`` takes reduced precision only when the measured pass is at least this much
faster than float32 (below it, timing noise could decide)."""

MIN_PASS_FLOPS = 1e8
"""``"auto"`` keeps float32 without measuring when one pass of the work (its batch times
the model's forward FLOPs per image) is below this: a pass that small is dominated by the
per-operation overhead that reduced precision does not shorten (measured on an AVX-512
BF16 CPU: docs/benchmarks.md), and measuring would cost the first run more than the
whole pass."""

MAX_DEVIATION = 0.05
"""``"auto"`` takes reduced precision only when the twin's outputs (and, for optimization,
input gradients) deviate from float32 by at most this fraction of their largest magnitude
on the measurement input."""

_POLICIES = {"bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a call runs in, and why.

    Attributes:
        precision: ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        reason: one sentence for people (shown in notes and status lines).
        speedup: the measured speed of the reduced pass over float32 (``2.0``: twice as
            fast), when a measurement decided; else ``None``.
        deviation: the measured largest deviation of the twin from float32, as a fraction
            of the largest magnitude (outputs or input gradients), when measured; for
            optimization, how far the probe's reduced run fell short of float32's progress
            on the objective (see :class:`~cnnviz_widgets.engine.optvis.probe.ProbeOutcome`);
            else ``None``.
        probe: for optimization, the probe's
            :class:`~cnnviz_widgets.engine.optvis.probe.ProbeOutcome` that decided.
    """

    precision: str
    reason: str
    speedup: float | None = None
    deviation: float | None = None
    probe: object | None = None


# ------------------------------------------------------------------------------ hardware
def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


AUTO_ENV = "CNNVIZ_AUTO_PRECISION"
"""Set to ``float32`` (``CNNVIZ_AUTO_PRECISION=float32``) and ``precision="auto"`` keeps
float32 everywhere, without measuring: numbers that repeat across machines (the test suite
sets it; its tests of what "auto" chooses simulate the hardware instead)."""


def hardware_precisions(honor_env: bool = True) -> tuple[tuple[str, ...], str]:
    """The reduced precisions this machine has fast instructions for, and a sentence
    saying which hardware says so (none when :data:`AUTO_ENV` is ``float32`` and
    ``honor_env``).

    A GPU of compute capability 8.0 or more (Ampere and later): float16 then bfloat16
    (in the order ``"auto"`` tries them: float16 keeps three more bits of mantissa, and
    gradients through it are loss-scaled, :func:`loss_scale`); 7.x (Volta, Turing):
    float16.  A CPU with AMX-BF16 or AVX-512 BF16 (Intel Sapphire
    Rapids and later, AMD Zen 4 and later): bfloat16.  Otherwise none: TensorFlow then
    emulates bfloat16 and float16, which is slower than float32.
    """
    if honor_env and os.environ.get(AUTO_ENV, "").strip().lower() == "float32":
        return (), f"{AUTO_ENV}=float32 is set: auto keeps float32"
    try:
        gpus = tf.config.list_physical_devices("GPU")
    except Exception:
        gpus = []
    if gpus:
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
        except Exception:
            details = {}
        cc = details.get("compute_capability")
        name = details.get("device_name", "GPU")
        if cc and tuple(cc) >= (8, 0):
            return ("float16", "bfloat16"), f"{name} (compute capability {cc[0]}.{cc[1]})"
        if cc and tuple(cc) >= (7, 0):
            return ("float16",), f"{name} (compute capability {cc[0]}.{cc[1]})"
    flags = _cpu_flags()
    found = sorted(flags & {"amx_bf16", "avx512_bf16"})
    if found:
        return ("bfloat16",), f"this CPU ({', '.join(found)})"
    return (), (
        "this machine has no GPU with fast half precision and its CPU has no bfloat16 "
        "instructions (AMX-BF16, AVX-512 BF16), so reduced precision would be emulated "
        "(slower than float32)"
    )


# ---------------------------------------------------------------------------------- twin
_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TWIN_DTYPE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.RLock()


def model_in(loaded: LoadedModel, precision: str) -> LoadedModel:
    """``loaded`` itself for ``"float32"``; for ``"bfloat16"`` / ``"float16"`` the same
    description around the model's reduced-precision twin (built once, cached weakly by
    the model, sharing its weights).  Raises ``CnnvizError`` when no twin can be built."""
    if precision == "float32":
        return loaded
    policy = _POLICIES[precision]
    with _LOCK:
        per_model = _TWINS.setdefault(loaded.model, {})
        twin = per_model.get(precision)
        if isinstance(twin, CnnvizError):
            raise twin
        if twin is None:
            try:
                twin = reduced_precision_twin(loaded.model, policy)
            except CnnvizError as err:
                per_model[precision] = err
                raise
            per_model[precision] = twin
            _TWIN_DTYPE[twin] = precision
    return replace(loaded, model=twin)


def precision_of(model) -> str:
    """What ``model``'s layers compute in: the precision of a twin made by
    :func:`model_in`, else ``"float32"``."""
    model = model.model if isinstance(model, LoadedModel) else model
    return _TWIN_DTYPE.get(model, "float32")


LOSS_SCALE = 128.0
"""What a score is multiplied by before a float16 backward pass (and the gradient divided
by after): float16 gradients underflow below 6e-8; bfloat16 has float32's range."""


def loss_scale(model) -> float:
    """:data:`LOSS_SCALE` for a float16 twin, else 1."""
    return LOSS_SCALE if precision_of(model) == "float16" else 1.0


def twins_of(model) -> list:
    """The reduced-precision twins built for ``model`` so far (for tracing counts)."""
    model = model.model if isinstance(model, LoadedModel) else model
    return [t for t in _TWINS.get(model, {}).values() if not isinstance(t, CnnvizError)]


# --------------------------------------------------------------------------- measurement
def _input_batch(loaded: LoadedModel, batch: int, size) -> np.ndarray:
    h, w, c = image_input(loaded.model)
    h = h or size or 224
    w = w or size or 224
    rng = np.random.default_rng(0)
    return rng.uniform(0.0, 1.0, (batch, h, w, c)).astype(np.float32)


def _pass_flops(loaded: LoadedModel, batch: int, size) -> float:
    """Forward FLOPs of one pass of ``batch`` images through the model."""
    h, w, _ = image_input(loaded.model)
    return batch * forward_flops(loaded.model, (h or size or 224, w or size or 224))


_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pass(loaded: LoadedModel, work: str):
    """The measured pass of ``loaded``'s model for ``work``, compiled once per model, work
    and preprocessing and kept for the process: one trace for every batch measured (the
    batch axis is left open), not a new ``tf.function`` per measurement, which TensorFlow
    would count as retracing.  The function holds the model weakly (the cache is keyed by
    it).  Every output of a model with several is read, flattened side by side."""
    model = loaded.model
    prep = loaded.preprocessing
    key = (work, prep.name)
    with _LOCK:
        cached = _PASSES.setdefault(model, {}).get(key)
    if cached is not None:
        return cached
    h, w, c = image_input(model)
    spec = [tf.TensorSpec((None, h, w, c), tf.float32)]
    ref = weakref.ref(model)

    def outputs(x):
        outs = tf.nest.flatten(ref()(prep(x), training=False))
        flat = [tf.reshape(tf.cast(o, tf.float32), (tf.shape(o)[0], -1)) for o in outs]
        return flat[0] if len(flat) == 1 else tf.concat(flat, axis=1)

    if work == "forward":

        @tf.function(input_signature=spec, autograph=False)
        def forward(x):
            return outputs(x)

        fn = forward
    else:
        scale = loss_scale(model)

        @tf.function(input_signature=spec, autograph=False)
        def forward_backward(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = outputs(x)
                score = tf.reduce_sum(y * tf.linspace(-1.0, 1.0, tf.shape(y)[-1])) * scale
            return tape.gradient(score, x) / scale

        fn = forward_backward
    # one trace per model, work and preprocessing: TensorFlow counts the closures' traces
    # together (one per model, twin and view of one output) and would warn of retracing
    quiet_retracing(fn)
    with _LOCK:
        return _PASSES[model].setdefault(key, fn)


def pass_tracing_count(model) -> int:
    """How many times the measurement passes of ``model`` and its twins were traced."""
    model = model.model if isinstance(model, LoadedModel) else model
    return sum(
        fn.experimental_get_tracing_count()
        for m in (model, *twins_of(model))
        for fn in _PASSES.get(m, {}).values()
    )


def _deviation(a: np.ndarray, b: np.ndarray) -> float:
    top = float(np.abs(a).max())
    if not np.isfinite(b).all():
        return float("inf")
    return float(np.abs(a - b).max() / top) if top > 0 else float(np.abs(b).max())


def measure(
    loaded: LoadedModel, reduced: str, work: str, batch: int, size=None, rounds: int = 3
) -> tuple[float, float]:
    """Time one pass of the model and of its ``reduced`` twin, interleaved (``rounds``
    rounds, order reversed each round, after one warm-up call each), on a random batch.

    Returns ``(speedup, deviation)``: the median over rounds of float32 time / reduced
    time, and the twin's largest deviation from float32 (outputs for ``"forward"``, input
    gradients for ``"optimize"``) as a fraction of the largest float32 magnitude.
    """
    x = tf.constant(_input_batch(loaded, batch, size))
    full = _pass(loaded, work)
    half = _pass(model_in(loaded, reduced), work)
    a = full(x).numpy()  # warm-up (trace) and the reference
    b = half(x).numpy()
    ratios = []
    for r in range(max(1, rounds)):
        times = {}
        for name, fn in (("f", full), ("h", half)) if r % 2 == 0 else (("h", half), ("f", full)):
            start = time.perf_counter()
            fn(x).numpy()
            times[name] = time.perf_counter() - start
        ratios.append(times["f"] / max(times["h"], 1e-9))
    return statistics.median(ratios), _deviation(a, b)


_MEASURED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PROBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# decisions by what a model is (architecture and weights), not by its Python object: a
# notebook cell that builds or loads the same model again does not measure it again
_BY_SIGNATURE: dict[tuple, PrecisionChoice] = {}
_SAMPLES = 4096  # values read of each weight for a model's signature


def _architecture(model, h) -> None:
    """Feed ``h`` each layer's kind and configuration, names left out (Keras numbers
    unnamed layers per object: ``input_layer_1``), nested models' layers in turn."""
    for layer in getattr(model, "layers", []):
        h.update(type(layer).__name__.encode())
        if hasattr(layer, "layers"):
            _architecture(layer, h)
            continue
        try:
            config = {k: v for k, v in layer.get_config().items() if k != "name"}
            h.update(json.dumps(config, sort_keys=True, default=str).encode())
        except Exception:  # a layer without a config: its kind and weights' shapes say it
            pass


def _signature(model) -> str:
    """A hash of a model's architecture and a strided sample of each weight's values
    (every weight's shape and dtype, and at most ``_SAMPLES`` values spread over it): two
    model objects with the same signature are the same model for :func:`choose_precision`."""
    h = hashlib.blake2b(digest_size=16)
    _architecture(model, h)
    for w in model.weights:
        flat = tf.reshape(w.value, [-1])
        n = int(flat.shape[0])
        sample = flat[:: max(1, n // _SAMPLES)].numpy()
        h.update(f"{w.dtype}{tuple(w.shape)}".encode())
        h.update(np.ascontiguousarray(sample).tobytes())
    return h.hexdigest()


_OPTIMIZATION_PROBE: list = []  # [(probe, tolerance)], registered by the optimization engine


def register_optimization_probe(probe, tolerance: float) -> None:
    """How "auto" judges a reduced precision for optimization: the optimization engine
    (:mod:`cnnviz_widgets.engine.optvis.probe`, which sits above this module and so cannot
    be imported from here) registers its probe and tolerance when it is imported."""
    _OPTIMIZATION_PROBE[:] = [(probe, float(tolerance))]


def _probe_tolerance() -> float:
    if not _OPTIMIZATION_PROBE:
        raise CnnvizError(
            "no optimization probe is registered: import cnnviz_widgets (or its "
            "engine.optvis package) before asking for precision='auto' on an optimization"
        )
    return _OPTIMIZATION_PROBE[0][1]


def probe_optimization(loaded: LoadedModel, reduced: str, batch: int, size=None):
    """The registered :func:`cnnviz_widgets.engine.optvis.probe.probe_optimization`."""
    _probe_tolerance()
    return _OPTIMIZATION_PROBE[0][0](loaded, reduced, batch, size)


def _judge(loaded: LoadedModel, reduced: str, work: str, batch: int, size, hardware: str):
    """``(choice, None)`` when ``reduced`` passes, else ``(None, (why, speedup, deviation,
    probe))``."""
    if work == "optimize":
        tolerance = _probe_tolerance()
        # a few forward+backward passes first: a twin that is not faster is not probed
        # (the probe costs about 100 steps; this, a few passes)
        passes, _ = measure(loaded, reduced, "gradient", int(batch), size)
        if passes < MIN_SPEEDUP:
            why = (
                f"{reduced}: a forward+backward pass measured {passes:.2f}x as fast as "
                f"float32 (needs >= {MIN_SPEEDUP}x; its result was not probed)"
            )
            return None, (why, passes, None, None)
        # the result is probed on one image (the images of a batch are optimized
        # independently: one tells how the precision optimizes), once per model, precision
        # and size; at batch 1 the probe's own paired step times give the speed, at a
        # larger batch the passes just timed at that batch
        with _LOCK:
            probes = _PROBES.setdefault(loaded.model, {})
            out = probes.get((reduced, size))
            if out is None:
                out = probes[(reduced, size)] = probe_optimization(loaded, reduced, 1, size)
        speedup = out.speedup if int(batch) == 1 else passes
        seen = (
            f"forward+backward passes at batch {batch} measured {passes:.2f}x as fast as "
            f"float32; a {out.steps}-step probe of one image ran {out.speedup:.2f}x as fast "
            f"and reached objective {out.objective:.4g} against float32's {out.float32:.4g} "
            f"(from {out.start:.4g}, all scored in float32)"
        )
        if speedup >= MIN_SPEEDUP and out.matches:
            reason = (
                f"auto chose {reduced}: on {hardware}, {seen}: within {tolerance:.0%} "
                f"of float32's progress and >= {MIN_SPEEDUP}x (optimization, batch {batch})"
            )
            return PrecisionChoice(reduced, reason, speedup, out.shortfall, out), None
        need = f"needs >= {MIN_SPEEDUP}x and within {tolerance:.0%} of float32's progress"
        return None, (f"{reduced}: {seen} ({need})", speedup, out.shortfall, out)
    speedup, deviation = measure(loaded, reduced, work, int(batch), size)
    if speedup >= MIN_SPEEDUP and deviation <= MAX_DEVIATION:
        reason = (
            f"auto chose {reduced}: on {hardware} it measured {speedup:.1f}x faster than "
            f"float32 for this model ({work}, batch {batch}), outputs within {deviation:.1%}"
        )
        return PrecisionChoice(reduced, reason, speedup, deviation), None
    why = (
        f"{reduced} measured {speedup:.2f}x as fast as float32 with outputs off by up to "
        f"{deviation:.1%} (needs >= {MIN_SPEEDUP}x and <= {MAX_DEVIATION:.0%})"
    )
    return None, (why, speedup, deviation, None)


def choose_precision(
    model, work: str = "optimize", *, batch: int = 1, size: int | None = None
) -> PrecisionChoice:
    """What ``precision="auto"`` picks for ``work`` on this model and this machine.

    Reduced precision is a candidate only where the hardware has fast instructions for
    it (:func:`hardware_precisions`; on a GPU, float16, loss-scaled in optimization, is
    tried before bfloat16), and only for a pass of at least ``MIN_PASS_FLOPS`` (the batch
    times the model's forward FLOPs per image: a smaller one keeps float32 unmeasured).  A
    candidate is measured once per model, work, batch and image size in the process
    (cached by the model's architecture and weights, so the same model built or loaded
    again as another object is not measured again), and picked when it is at least
    ``MIN_SPEEDUP`` times faster than float32 and gives the same result:

    - ``"optimize"``: when a few forward+backward passes of the twin are at least
      ``MIN_SPEEDUP`` times faster, a short optimization from the same start in both
      precisions, the results scored in float32
      (:mod:`~cnnviz_widgets.engine.optvis.probe`): the reduced run must be as fast and
      reach float32's objective within ``PROBE_TOLERANCE`` of float32's progress.
      Its gradients may differ (on VGG16 bfloat16's are off by 40 % of their largest
      element) as long as the optimization gets where float32's does.
    - ``"gradient"`` (SmoothGrad) and ``"forward"`` (occlusion, feature maps, ranking):
      interleaved passes of the model and its twin; the twin's input gradients or outputs
      must deviate by at most ``MAX_DEVIATION`` of their largest magnitude.

    Otherwise float32.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        work: ``"optimize"``, ``"gradient"`` or ``"forward"``.
        batch: the batch the work runs in.
        size: the image size, for models that take any size.

    Returns:
        A :class:`PrecisionChoice`; its ``reason`` says what was measured.
    """
    loaded = as_loaded(model)
    if work not in WORKS:
        raise CnnvizError(f"work must be one of {', '.join(WORKS)}, got {work!r}")
    candidates, hardware = hardware_precisions()
    if not candidates:
        return PrecisionChoice("float32", f"auto chose float32: {hardware}")
    dtype = next((str(v.dtype) for v in loaded.model.weights), "float32")
    if dtype != "float32":
        return PrecisionChoice("float32", f"auto kept the model's own {dtype} weights")
    key = (work, int(batch), size, loaded.preprocessing.name)
    with _LOCK:
        cache = _MEASURED.setdefault(loaded.model, {})
        if key in cache:
            return cache[key]
        flops = _pass_flops(loaded, int(batch), size)
        if flops < MIN_PASS_FLOPS:
            choice = cache[key] = PrecisionChoice(
                "float32",
                f"auto chose float32: a pass of this model at batch {batch} is "
                f"{flops / 1e6:.0f} MFLOPs, below the {MIN_PASS_FLOPS / 1e6:.0f} MFLOPs "
                "where reduced precision starts to pay (not measured)",
            )
            return choice
        same = (_signature(loaded.model), hardware, *key)
        if same in _BY_SIGNATURE:  # the same model as another object: decided already
            earlier = _BY_SIGNATURE[same]
            note = " (decided for the same model, another object, earlier in this process)"
            choice = cache[key] = replace(earlier, reason=earlier.reason + note)
            return choice
        choice = None
        tried = []
        last: tuple = (None, None, None)
        for reduced in candidates:
            try:
                choice, why = _judge(loaded, reduced, work, batch, size, hardware)
            except CnnvizError as err:
                tried.append(f"{reduced}: {err}")
                continue
            if choice is not None:
                break
            tried.append(why[0])
            last = why[1:]
        if choice is None:
            reason = f"auto chose float32: on {hardware}, {'; '.join(tried)}"
            choice = PrecisionChoice("float32", reason, *last)
        cache[key] = _BY_SIGNATURE[same] = choice
    return choice


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``CnnvizError`` listing
    them (calls check it before their work, then :func:`decide`)."""
    if precision not in PRECISIONS:
        raise CnnvizError(
            f"unknown precision {precision!r}: use one of {', '.join(map(repr, PRECISIONS))}"
        )
    return precision


def decide(
    loaded: LoadedModel,
    precision: str,
    work: str,
    *,
    batch: int = 1,
    size: int | None = None,
    exact: bool = False,
) -> PrecisionChoice:
    """The precision one call runs in, for a ``precision`` already checked
    (:func:`check_precision`): ``"auto"`` decided by :func:`choose_precision` (or float32
    for an ``exact`` method, whose result is checked against a float32 reference)."""
    if precision == "auto":
        if exact:
            return PrecisionChoice("float32", "float32: an exact method keeps it unless asked")
        return choose_precision(loaded, work, batch=batch, size=size)
    return PrecisionChoice(precision, f"{precision}: asked for")


def resolve(loaded: LoadedModel, precision: str, work: str, **options) -> PrecisionChoice:
    """The precision one call runs in: ``precision`` checked (:func:`check_precision`),
    then :func:`decide` (``options``: its ``batch``, ``size``, ``exact``)."""
    return decide(loaded, check_precision(precision), work, **options)
