"""Activation maximization: synthesize the input a class or a unit responds to most.

The work happens in one compiled step per (model, objective structure, batch, image size,
parameterization, transforms): parameterization -> random transforms -> the model's own
preprocessing -> the model (only up to the tapped layers) -> objective -> gradient -> Adam,
all TensorFlow ops in one ``tf.function``.  Class and channel indices, term weights, the
learning rate and the random seed are tensor inputs or variables, so changing them never
retraces, and the variables are reused from run to run, so memory stays flat.

A run is an iterator (:class:`Run`) that yields a :class:`Frame` every few steps and can be
stopped between steps; :func:`visualize` is the one-call form.
"""

from __future__ import annotations

import atexit
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import keras
import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model import budget
from ..model.internals import Tap, image_input, layer_at, logit_source, quiet_retracing
from ..model.introspect import find_layer
from ..model.loading import LoadedModel, as_loaded
from ..model.precision import (
    PRECISIONS,
    PrecisionChoice,
    model_in,
    precision_of,
    resolve,
    twins_of,
)
from ..model.taps import extractor
from . import objectives as obj
from .param import Fourier, Maco, Pixels, get_param
from .transforms import Transforms

__all__ = [
    "PRESETS",
    "Frame",
    "Preset",
    "Result",
    "Run",
    "check_settings",
    "optimize",
    "visualize",
    "warm_up",
]


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True)
class Preset:
    """A recipe: parameterization, transforms, optimizer settings and regularizer weights.

    Transform sizes are given for a 224-pixel input and scaled to the model's input size.

    Attributes:
        name: the preset's name.
        param: ``Fourier(...)``, ``Pixels(...)`` or ``Maco(...)``.
        transforms: the random transforms (for a 224 px image).
        lr: Adam's learning rate.
        steps: default number of steps.
        tv: weight of total variation (subtracted).
        lp: weight of the Lp norm of the image (subtracted).
        p: the ``p`` of the Lp norm.
        blur: weight of the blur penalty (subtracted).
        description: one line for people.
    """

    name: str
    param: Fourier | Pixels | Maco
    transforms: Transforms
    lr: float
    steps: int
    tv: float = 0.0
    lp: float = 0.0
    p: float = 2.0
    blur: float = 0.0
    description: str = ""

    def transforms_for(self, size: int) -> Transforms:
        """The transforms scaled to an input of ``size`` pixels."""
        t = self.transforms
        k = size / 224.0
        return replace(
            t,
            pad=round(t.pad * k),
            jitter=float(round(t.jitter * k, 2)),
        )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "lucid",
            Fourier(decay=1.0, decorrelate=True),
            Transforms(pad=16, jitter=16, scale=(0.9, 1.1), rotate=10),
            lr=0.02,
            steps=256,
            description="Lucid's recipe: 1/f Fourier image, decorrelated colour, pad + "
            "jitter + scale + rotate at every step (the default)",
        ),
        Preset(
            "tf-keras-vis",
            Pixels(),
            Transforms(jitter=8, rotate=3),
            lr=0.1,
            steps=256,
            tv=1.0,
            lp=0.3,
            p=1.0,
            description="tf-keras-vis' recipe: raw pixels, total variation + L1, jitter + rotate",
        ),
        Preset(
            "keras-vis",
            Pixels(),
            Transforms(jitter=16),
            lr=0.1,
            steps=256,
            tv=1.0,
            lp=0.1,
            p=6.0,
            description="keras-vis' recipe (the library of the keras-vis CNN-visualization "
            "tutorial): raw pixels, Lp (p=6) + total variation",
        ),
        Preset(
            "maco",
            Maco(),
            Transforms(crop=(0.5, 1.0), noise=0.05),
            lr=0.1,
            steps=256,
            description="MaCo (Fel et al. 2023): only the Fourier phase is optimized, the "
            "magnitude stays a natural 1/f spectrum; random crops + noise at every step; "
            "result.alpha shows where the evidence is",
        ),
    )
}


def get_preset(spec: str | Preset) -> Preset:
    if isinstance(spec, Preset):
        return spec
    if spec in PRESETS:
        return PRESETS[spec]
    raise CnnvizError(f"unknown preset {spec!r}: use one of {', '.join(PRESETS)}")


# ----------------------------------------------------------------------------- results
@dataclass
class Frame:
    """A snapshot of a run.

    Attributes:
        step: steps done so far.
        steps: steps asked for.
        images: ``(B, H, W, C)`` uint8, the current images (display space).
        values: ``(B,)`` the objective per image (without the regularizers).
        total: ``(B,)`` what is actually maximized (objective minus regularizers).
        seconds: time since the run started.
        final: the last frame of the run (finished, stopped or failed).
    """

    step: int
    steps: int
    images: np.ndarray
    values: np.ndarray
    total: np.ndarray
    seconds: float
    final: bool = False

    @property
    def steps_per_second(self) -> float:
        return self.step / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result:
    """What a run produced.

    Attributes:
        images: ``(B, H, W, C)`` uint8, the last good images.
        history: ``(steps_done, B)`` the objective per step and image.
        total_history: ``(steps_done, B)`` objective minus regularizers.
        steps: steps done.
        seconds: wall time.
        stopped: the run was stopped before its last step.
        error: why the run ended early (NaN gradients), or ``None``.
        objective: the objective, as text.
        alpha: ``(B, H, W)`` float32 in ``[0, 1]``, the transparency map (MaCo): the
            absolute gradient of the objective w.r.t. each pixel of the image, summed over
            the run (mean over colours), divided by its 95th percentile per image and
            clipped at 1 (a few very strong pixels must not make the rest transparent).
            High where the model took its evidence; 0 where it never looked (e.g. outside
            every random crop).  ``None`` for a run that took no step.
        precision: what the model's passes ran in: ``"float32"``, ``"bfloat16"`` or
            ``"float16"`` (the image, the optimizer and the objective are float32
            always); see ``precision_reason``.
        precision_reason: why (``precision="auto"`` measured, or it was asked for).
    """

    images: np.ndarray
    history: np.ndarray
    total_history: np.ndarray
    steps: int
    seconds: float
    stopped: bool = False
    error: str | None = None
    objective: str = ""
    alpha: np.ndarray | None = None
    precision: str = "float32"
    precision_reason: str = ""

    @property
    def image(self) -> np.ndarray:
        """The first image ``(H, W, C)`` uint8."""
        return self.images[0]


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


ALPHA_PERCENTILE = 95.0


def alpha_map(evidence: np.ndarray, percentile: float = ALPHA_PERCENTILE) -> np.ndarray:
    """Accumulated absolute gradients ``(B, H, W)`` to a transparency map in ``[0, 1]``:
    divided by the per-image ``percentile`` and clipped (MaCo's and Horama's display)."""
    evidence = np.asarray(evidence, np.float32)
    flat = evidence.reshape(len(evidence), -1)
    top = np.percentile(flat, percentile, axis=1) if flat.shape[1] else np.zeros(len(flat))
    top = np.where(top > 0, top, flat.max(axis=1, initial=0.0))  # evidence on few pixels
    out = np.zeros_like(evidence)
    for k, t in enumerate(top):
        if t > 0 and np.isfinite(t):
            out[k] = np.clip(evidence[k] / t, 0.0, 1.0)
    return out


# ------------------------------------------------------------------------ model checks
def _image_size(loaded: LoadedModel, size) -> tuple[int, int, int]:
    """The size of the images to optimize: the model's input, or ``size`` when it takes any."""
    h, w, c = image_input(loaded.model, "optimize")
    shape = tuple(loaded.model.inputs[0].shape)
    if size is not None:
        sh, sw = (size, size) if isinstance(size, int) else size
        if (h is not None and sh != h) or (w is not None and sw != w):
            raise CnnvizError(f"size={size} does not fit the model's input {shape}")
        h, w = sh, sw
    if h is None or w is None:
        h, w = h or 224, w or 224
    return int(h), int(w), int(c)


def _fused_activation(layer) -> bool:
    """A Conv2D, Conv1D or Dense layer with a built-in ReLU."""
    plain = isinstance(layer, keras.layers.Dense) or (
        type(layer) is keras.layers.Conv2D or isinstance(layer, keras.layers.Conv1D)
    )
    return bool(plain and getattr(layer, "activation", None) is keras.activations.relu)


def _pre_activation(layer, x):
    """The layer's output before its activation, from the layer's own weights (read-only)."""
    if isinstance(layer, keras.layers.Dense):
        y = tf.matmul(x, layer.kernel)
    else:
        y = layer.convolution_op(x, layer.kernel)
    if layer.use_bias:
        y = y + layer.bias
    return y


# ------------------------------------------------------------------------ compiled step
class _Compiled:
    """The variables and the compiled step for one configuration (reused across runs)."""

    def __init__(self, loaded, objective, param, transforms, batch, hwc, names=None):
        # no reference to the model object itself: the cache is keyed weakly by it.
        # ``loaded`` may hold a reduced-precision twin; ``names`` (the user's model) then
        # resolves the objective's layer references (indices, names, layer objects)
        self.preprocessing = loaded.preprocessing
        # float16 gradients underflow below 6e-8: the loss is scaled up, the gradient
        # back down (bfloat16 has float32's range and needs no scaling)
        self.loss_scale = 128.0 if precision_of(loaded) == "float16" else 1.0
        self.busy = threading.Lock()  # one run at a time uses these variables
        # set while warm_up() compiles the step under `busy`: a run then waits for it
        # (a few seconds at most) instead of compiling a second step of its own
        self.warming = False
        self.param = param
        self.transforms = transforms
        self.batch = batch
        self.h, self.w, self.c = hwc
        model = loaded.model
        self.terms = [t for _, t in objective.terms]
        self.paths = {}
        self.pre = {}  # path -> layer whose pre-activation channel objectives read
        taps: list[Tap] = []

        def add(tap):
            if tap not in taps:
                taps.append(tap)

        for term in self.terms:
            if term.layer is None:
                continue
            if term.layer not in self.paths:
                _, self.paths[term.layer] = find_layer(names or model, term.layer)
                layer = layer_at(model, self.paths[term.layer])
                if _fused_activation(layer):
                    self.pre[self.paths[term.layer]] = layer
            path = self.paths[term.layer]
            if getattr(term, "pre_activation", False) and path in self.pre:
                add(Tap(path, "input"))
            else:
                add(Tap(path, "output"))
        self.logits = None
        if any(t.needs_logits for t in self.terms):
            self.logits = logit_source(loaded)
            if self.logits.tap not in taps:
                taps.append(self.logits.tap)
        if not taps:
            raise CnnvizError(
                "the objective reads no layer (only image regularizers): add a class, "
                "channel, neuron or layer objective"
            )
        self.taps = taps
        self.ext = extractor(loaded, taps, with_outputs=False)
        self.tap_shapes = {(t.path, t.kind): tuple(o.shape) for t, o in zip(taps, self.ext.outputs)}
        for path, layer in self.pre.items():  # terms check shapes of the layer's output
            self.tap_shapes.setdefault((path, "output"), tuple(layer.output.shape))
        self.dense = (
            layer_at(model, self.logits.dense_path)
            if self.logits and self.logits.dense_path
            else None
        )
        n_classes = None
        if self.logits is not None:
            shape = self.tap_shapes[(self.logits.tap.path, self.logits.tap.kind)]
            n_classes = int(self.dense.units if self.dense is not None else shape[-1])
        self.facts = obj.ModelFacts(
            self.tap_shapes,
            n_classes,
            loaded.class_names,
            self.paths,
            image_shape=(batch, self.h, self.w, self.c),
        )
        pshape = param.shape(batch, self.h, self.w, self.c)
        self.var = tf.Variable(tf.zeros(pshape), trainable=False, name="cnnviz_image")
        # the variable before the last update: its objective was finite (kept if the
        # update makes the objective non-finite)
        self.good = tf.Variable(tf.zeros(pshape), trainable=False)
        self.m = tf.Variable(tf.zeros(pshape), trainable=False)
        self.v = tf.Variable(tf.zeros(pshape), trainable=False)
        self.t = tf.Variable(0.0, trainable=False)
        self.lr = tf.Variable(0.05, trainable=False)
        # |d objective / d pixel| summed over the run: MaCo's transparency map
        self.evidence = tf.Variable(tf.zeros((batch, self.h, self.w)), trainable=False)
        # traced once per configuration: TensorFlow counts the traces of every _Compiled
        # together (one Python method) and would call a new configuration a "retracing"
        autograph = any(isinstance(t, obj.Custom) for t in self.terms)
        self.step = quiet_retracing(tf.function(self._step, autograph=autograph))

    def render(self):
        """The current images, eagerly (a few ops: not worth a second traced function,
        whose trace would delay the first image)."""
        return self.param.image(self.var, self.h, self.w, self.c)

    def _step(self, values, weights, seed):
        # only the image is watched: the model's weights need no gradient, and a watched
        # weight would trace its gradient ops (then pruned) into the step
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(self.var)
            image = self.param.image(self.var, self.h, self.w, self.c)
            # the model's own path from the image: its gradient is the evidence map (the
            # image regularizers read `image`, so they do not count there)
            seen = tf.identity(image)
            x = self.transforms(seen, seed)
            x = self.preprocessing(x)
            outs = self.ext(x, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            # the objective reads float32 (a reduced-precision twin's activations are cast)
            outs = [tf.cast(o, tf.float32) for o in outs]
            acts = {(t.path, t.kind): o for t, o in zip(self.taps, outs)}
            for path, layer in self.pre.items():
                if (path, "input") in acts:
                    acts[(path, "pre")] = _pre_activation(layer, acts[(path, "input")])
            logits = None
            if self.logits is not None:
                logits = self.logits.logits(
                    acts[(self.logits.tap.path, self.logits.tap.kind)], self.dense
                )
            ctx = obj.Context(image=image, acts=acts, logits=logits)
            scores = tf.stack(
                [
                    tf.cast(term.score(ctx, values[i], self.paths.get(term.layer)), tf.float32)
                    for i, term in enumerate(self.terms)
                ]
            )  # (T, B)
            total = tf.tensordot(weights, scores, axes=1)  # (B,)
            loss = -tf.reduce_sum(total) * self.loss_scale
        grad, grad_image = tape.gradient(loss, [self.var, seen])  # one backward pass
        if self.loss_scale != 1.0:
            grad = grad / self.loss_scale
            grad_image = None if grad_image is None else grad_image / self.loss_scale
        if grad_image is None:  # no term reads the model (cannot happen with a tap)
            grad_image = tf.zeros_like(seen)
        finite_total = tf.reduce_all(tf.math.is_finite(total))
        evidence = tf.reduce_mean(tf.abs(grad_image), axis=-1)  # (B, H, W)
        ok = tf.logical_and(
            tf.logical_and(finite_total, tf.reduce_all(tf.math.is_finite(grad))),
            tf.reduce_all(tf.math.is_finite(evidence)),
        )
        # Adam, without branches (a tf.cond traces two sub-functions and is lowered and
        # optimized again at the first call: time to the first image).  A finite step
        # updates the image and keeps the one before it in `good`; otherwise nothing
        # moves, except that an image whose objective is not finite goes back to `good`
        # (finite objective, bad gradient: it stays)
        var, good, m, v = self.var.read_value(), self.good.read_value(), self.m, self.v
        t = self.t + tf.cast(ok, tf.float32)
        m_new = 0.9 * m + 0.1 * grad
        v_new = 0.999 * v + 0.001 * tf.square(grad)
        m_hat = m_new / (1.0 - tf.pow(0.9, tf.maximum(t, 1.0)))
        v_hat = v_new / (1.0 - tf.pow(0.999, tf.maximum(t, 1.0)))
        stepped = var - self.lr * m_hat / (tf.sqrt(v_hat) + 1e-8)
        self.evidence.assign_add(tf.where(ok, evidence, tf.zeros_like(evidence)))
        self.t.assign(t)
        self.m.assign(tf.where(ok, m_new, m))
        self.v.assign(tf.where(ok, v_new, v))
        self.good.assign(tf.where(ok, var, good))
        self.var.assign(tf.where(ok, stepped, tf.where(finite_total, var, good)))
        return scores, ok

    def reset(self, init: np.ndarray, lr: float) -> None:
        self.var.assign(init)
        self.good.assign(init)
        self.m.assign(tf.zeros_like(self.m))
        self.v.assign(tf.zeros_like(self.v))
        self.t.assign(0.0)
        self.lr.assign(float(lr))
        self.evidence.assign(tf.zeros_like(self.evidence))

    def tracing_count(self) -> int:
        return self.step.experimental_get_tracing_count()


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_POOL_LOCK = threading.Lock()


def _compiled(loaded, objective, param, transforms, batch, hwc, names=None) -> _Compiled:
    """The compiled step for this configuration: a cached one that no run is using, or a
    new one (two panels optimizing the same model at once each get their own).
    ``loaded`` may hold a reduced-precision twin of the model ``names``."""
    key = (objective.structure(), param, transforms, batch, hwc, loaded.preprocessing.name)
    # under a lock: two threads asking at once (a warm-up and a run) share one step rather
    # than each building and tracing its own
    with _POOL_LOCK:
        pool = _COMPILED.setdefault(loaded.model, {}).setdefault(key, [])
        for compiled in pool:
            if not compiled.busy.locked() or compiled.warming:
                return compiled
        compiled = _Compiled(loaded, objective, param, transforms, batch, hwc, names)
        pool.append(compiled)
        return compiled


def step_tracing_count(model) -> int:
    """How many times the compiled optimization steps of ``model`` and of its
    reduced-precision twins were traced (for checks;
    :func:`~cnnviz_widgets.engine.attribution.methods.tracing_count` counts the attribution
    functions)."""
    model = model.model if isinstance(model, LoadedModel) else model
    pools = [p for m in (model, *twins_of(model)) for p in _COMPILED.get(m, {}).values()]
    return sum(c.tracing_count() for pool in pools for c in pool)


# ------------------------------------------------------------------------------ runs
class Run:
    """One optimization, as an iterator of :class:`Frame` objects.

    Iterate it (``for frame in run: ...``) to drive it; call :meth:`stop` from anywhere
    (another thread, a button callback) to end it after the current step.  The last frame
    has ``final=True``; :attr:`result` holds the outcome afterwards.
    """

    def __init__(
        self,
        compiled: _Compiled,
        fresh,
        objective,
        user_terms: int,
        batch: int,
        *,
        steps: int,
        lr: float,
        seed: int,
        every: int,
        precision: PrecisionChoice | None = None,
    ):
        self._c = compiled
        self.precision = precision or PrecisionChoice("float32", "float32")
        self._fresh = fresh  # makes a step of the same configuration if this one is busy
        self.objective = objective
        self.steps = int(steps)
        self.every = max(1, int(every))
        self.seed = int(seed)
        self.lr = float(lr)
        self._stop = threading.Event()
        self._values = [
            {k: tf.constant(v) for k, v in t.values(batch, compiled.facts).items()}
            for _, t in objective.terms
        ]
        self._weights = np.array([w for w, _ in objective.terms], np.float32)
        self._user = np.zeros(len(objective.terms), np.float32)
        self._user[:user_terms] = self._weights[:user_terms]
        self.result: Result | None = None
        self._started = False

    def stop(self) -> None:
        """Ask the run to end after the step in progress (thread-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _images(self) -> np.ndarray:
        return to_uint8(self._c.render().numpy())

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise CnnvizError("a Run can be iterated once; start a new one with optimize()")
        self._started = True
        c = self._c
        while not c.busy.acquire(timeout=0.05):
            if not c.warming:  # another run took it since optimize(): make or take another
                c = self._c = self._fresh()
                c.busy.acquire()
                break
        try:
            yield from self._iterate(c)
        finally:
            c.busy.release()

    def _iterate(self, c: _Compiled) -> Iterator[Frame]:
        rng = np.random.default_rng(self.seed)
        c.reset(c.param.init(rng, c.batch, c.h, c.w, c.c), self.lr)
        weights = tf.constant(self._weights)
        history, totals = [], []
        error = None
        t0 = time.perf_counter()
        step = 0
        while step < self.steps and not self._stop.is_set():
            seed = tf.constant([self.seed, step], tf.int32)
            scores, ok = c.step(self._values, weights, seed)
            if not bool(ok):
                error = (
                    f"the objective or its gradients became NaN or infinite at step "
                    f"{step + 1}, so the run stopped; the last good image (the last with a "
                    "finite objective) is kept. Lower the learning rate, or check a custom "
                    "objective for log/sqrt/division of values that can be <= 0"
                )
                break
            s = scores.numpy()
            history.append(self._user @ s)
            totals.append(self._weights @ s)
            step += 1
            if step % self.every == 0 and step < self.steps and not self._stop.is_set():
                yield Frame(
                    step,
                    self.steps,
                    self._images(),
                    history[-1],
                    totals[-1],
                    time.perf_counter() - t0,
                )
        seconds = time.perf_counter() - t0
        images = self._images()
        b = c.batch
        hist = np.array(history, np.float32).reshape(-1, b)
        tot = np.array(totals, np.float32).reshape(-1, b)
        self.result = Result(
            images=images,
            history=hist,
            total_history=tot,
            steps=step,
            seconds=seconds,
            stopped=self._stop.is_set() and step < self.steps,
            error=error,
            objective=repr(self.objective),
            alpha=alpha_map(c.evidence.numpy()) if step else None,
            precision=self.precision.precision,
            precision_reason=self.precision.reason,
        )
        last = hist[-1] if len(hist) else np.full(b, np.nan, np.float32)
        last_t = tot[-1] if len(tot) else np.full(b, np.nan, np.float32)
        yield Frame(step, self.steps, images, last, last_t, seconds, final=True)


def _objective_from(spec, loaded: LoadedModel) -> obj.Objective:
    if isinstance(spec, obj.Objective):
        return spec
    if isinstance(spec, (int, np.integer, str)) and not isinstance(spec, bool):
        return obj.class_score(spec)
    if isinstance(spec, (list, tuple, range)):
        return obj.class_score(list(spec))
    raise CnnvizError(
        f"cannot make an objective from {type(spec).__name__}: pass one from "
        "cnnviz_widgets.objectives (class_logit, channel, ...), a class index or a class name"
    )


def _finite(name: str, value) -> float:
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
    preset: str | Preset = "lucid",
    *,
    steps: int | None = None,
    lr: float | None = None,
    tv: float | None = None,
    lp: float | None = None,
    blur: float | None = None,
    min_steps: int = 0,
) -> dict:
    """The run settings :func:`optimize` would use, checked: the preset's values where an
    argument is ``None``.  Panels call it to show the engine's own message before a run.

    Returns:
        ``{"steps", "lr", "tv", "lp", "blur"}`` as an int and floats.

    Raises:
        CnnvizError: naming the setting, the value and what is allowed (fewer than
            ``min_steps`` steps; a learning rate <= 0; a negative penalty; NaN or inf).
    """
    p = get_preset(preset)
    out = {}
    for name, given in (("tv", tv), ("lp", lp), ("blur", blur)):
        value = _finite(name, getattr(p, name) if given is None else given)
        if value < 0:
            raise CnnvizError(f"{name} is a penalty weight and must be >= 0, got {value}")
        out[name] = value
    _finite("the preset's p (of the Lp norm)", p.p)
    steps = p.steps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise CnnvizError(f"steps is a whole number of steps >= {min_steps}, got {steps!r}")
    if steps < min_steps:
        raise CnnvizError(f"steps must be at least {min_steps}, got {int(steps)}")
    out["steps"] = int(steps)
    lr = _finite("the learning rate (lr)", p.lr if lr is None else lr)
    if not lr > 0:
        raise CnnvizError(f"the learning rate must be > 0, got {lr}")
    out["lr"] = lr
    return out


def optimize(
    model,
    objective,
    *,
    preset: str | Preset = "lucid",
    steps: int | None = None,
    lr: float | None = None,
    batch: int | None = None,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    param: str | Fourier | Pixels | Maco | None = None,
    transforms: Transforms | None = None,
    tv: float | None = None,
    lp: float | None = None,
    blur: float | None = None,
    every: int = 8,
    precision: str = "auto",
) -> Run:
    """Prepare an optimization and return it as a :class:`Run` (nothing runs until you
    iterate it).

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        objective: an ``Objective`` (see ``cnnviz_widgets.objectives``), or a class index,
            class name, or list of them (``objectives.class_score``: one image per class).
        preset: ``"lucid"`` (default), ``"tf-keras-vis"``, ``"keras-vis"``, ``"maco"`` or
            a ``Preset``.
        steps, lr: override the preset's number of steps and Adam learning rate.
        batch: number of images; default: one per target of the objective.
        seed: makes the run repeatable (initial image and random transforms).
        size: the image size, for models that accept any size (default 224).
        param, transforms: override the preset's parameterization and transforms.
        tv, lp, blur: override the preset's regularizer weights (subtracted).
        every: yield a frame every this many steps.
        precision: what the model's passes run in: ``"auto"`` (default: bfloat16 or
            float16 where this hardware runs them measurably faster, else float32; see
            ``cnnviz_widgets.choose_precision``), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``.  The image, its parameterization, Adam's state and the
            objective stay float32; ``run.precision`` and ``result.precision`` say what
            was used and why.

    Returns:
        A :class:`Run`.

    Raises:
        RunTooLargeError: the run's estimated memory (``budget.check_optimize``) exceeds
            what is available; a run estimated to take long warns (``LongRunWarning``).
    """
    loaded = as_loaded(model)
    p = get_preset(preset)
    hwc = _image_size(loaded, size)
    objective = _objective_from(objective, loaded)
    user_terms = len(objective.terms)
    checked = check_settings(p, steps=steps, lr=lr, tv=tv, lp=lp, blur=blur)
    weights = {name: checked[name] for name in ("tv", "lp", "blur")}
    for w, term in objective.terms:
        _finite(f"the weight of {term.describe()} in the objective", w)
    # a regularizer of weight 0 is left out of the step: it would cost ~100 traced ops
    # (and their gradients at every step) for nothing; giving it a weight later builds
    # the step of that other structure once
    full = objective
    for name, term in (
        ("tv", obj.total_variation()),
        ("lp", obj.lp_norm(p.p)),
        ("blur", obj.blur_penalty()),
    ):
        if weights[name] != 0:
            full = full - weights[name] * term
    n = objective.batch_size()
    if batch is None:
        batch = n
    elif n > 1 and batch != n:
        raise CnnvizError(f"the objective has {n} targets but batch={batch}: leave batch out")
    if batch < 1:
        raise CnnvizError(f"batch must be >= 1, got {batch}")
    steps, lr = checked["steps"], checked["lr"]
    param_obj = p.param if param is None else get_param(param)
    t = p.transforms_for(min(hwc[:2])) if transforms is None else transforms
    for setting in (param_obj, t):
        for field in fields(setting):
            value = getattr(setting, field.name)
            for v in value if isinstance(value, tuple) else (value,):
                if isinstance(v, (float, np.floating)):
                    _finite(f"{type(setting).__name__}.{field.name}", v)
    if precision not in PRECISIONS:
        raise CnnvizError(
            f"unknown precision {precision!r}: use one of {', '.join(map(repr, PRECISIONS))}"
        )
    # before any variable is made: refuse a run that will not fit, warn about a long one
    budget.check_optimize(loaded.model, full, hwc, int(batch), steps)
    choice = resolve(loaded, precision, "optimize", batch=int(batch), size=hwc[0])
    runner = model_in(loaded, choice.precision)
    names = loaded.model
    compiled = _compiled(runner, full, param_obj, t, int(batch), hwc, names)
    return Run(
        compiled,
        lambda: _compiled(runner, full, param_obj, t, int(batch), hwc, names),
        full,
        user_terms,
        int(batch),
        steps=steps,
        lr=lr,
        seed=seed,
        every=every,
        precision=choice,
    )


def visualize(model, objective, **kwargs) -> Result:
    """Run an optimization to the end and return its :class:`Result`.

    Takes the same arguments as :func:`optimize`.  Example::

        res = cw.visualize(cw.load_model("shapes"), "circle")
        res.image          # (64, 64, 3) uint8
        res.history[:, 0]  # the class logit, step by step

    If the gradients turn NaN the run ends early, a warning says why, ``result.error``
    holds the message and ``result.images`` the last good images.
    """
    run = optimize(model, objective, **kwargs)
    for _ in run:
        pass
    result = run.result
    if result.error:
        warnings.warn(result.error, RuntimeWarning, stacklevel=2)
    return result


def _warm(model, objective, kwargs) -> float:
    start = time.perf_counter()
    # the run itself says that it will be long; a handler, not a warnings filter, which
    # would be process-wide and could hide a run's warning in another thread
    with budget.long_runs_to(lambda _message: None):
        run = optimize(model, objective, **kwargs)
    c = run._c
    with _POOL_LOCK:  # taken and marked at once: a run asking now waits for this step
        if not c.busy.acquire(blocking=False):  # a run is using (so compiling) this step
            return time.perf_counter() - start
        c.warming = True
    try:
        if c.tracing_count() == 0:
            rng = np.random.default_rng(run.seed)
            c.reset(c.param.init(rng, c.batch, c.h, c.w, c.c), run.lr)
            # the first call traces the step and optimizes its graph: the slow part
            c.step(run._values, tf.constant(run._weights), tf.constant([run.seed, 0], tf.int32))
            c.render().numpy()  # the eager kernels of a frame
    finally:
        c.warming = False
        c.busy.release()
    return time.perf_counter() - start


def warm_up(
    model, objective=0, *, background: bool = False, **kwargs
) -> float | threading.Thread | None:
    """Do now what the first run of an optimization would wait for, so that it starts
    at full speed: check the settings and the budget (and measure the machine's speed
    for it), choose the precision (building a reduced-precision twin if needed), build
    the layer extractor, and trace and optimize the compiled step by taking one step.

    A panel calls it when it opens, in the background, with the objective and settings
    its Run button will use::

        optvis.warm_up(session.loaded, objective, background=True, **settings)

    The step is shared by every run of the same configuration (the class or channel
    index, the seed, the learning rate and the steps may differ: they are not part of
    it), so the first run then takes no tracing time.  A run started while the warm-up
    is still compiling waits for it instead of compiling a second step.

    Args:
        model: what :func:`optimize` takes.
        objective: what :func:`optimize` takes (default: class 0; only its kind, its
            layer and its number of targets matter, not the index).
        background: return at once; the work runs in a daemon thread (returned).
        **kwargs: the :func:`optimize` settings of the run to come (``preset``,
            ``batch``, ``size``, ``param``, ``transforms``, ``tv``, ``lp``, ``blur``,
            ``precision``...).

    Returns:
        The seconds it took; with ``background``, the started ``threading.Thread``.
        A setting that :func:`optimize` would refuse raises here (the run would too);
        in the background it is left for the run to report, and ``None`` is returned
        by the thread.
    """
    if not background:
        return _warm(model, objective, kwargs)

    def work():
        try:
            _warm(model, objective, kwargs)
        except Exception:  # the run reports it where the user sees it
            pass

    thread = threading.Thread(target=work, name="cnnviz-warm-up", daemon=True)
    _WARMING.add(thread)
    thread.start()
    return thread


# warm-ups still running when the interpreter exits: TensorFlow aborts the process
# ("terminate called ...") if a daemon thread is inside a traced call at shutdown
_WARMING: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _finish_warm_ups() -> None:
    for thread in list(_WARMING):
        thread.join(timeout=120)
