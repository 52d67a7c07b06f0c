"""The compiled optimization step: parameterization -> transforms -> the model's preprocessing
-> the model (up to the tapped layers) -> objective -> gradient -> Adam, in one ``tf.function``,
kept in a pool per model and configuration so that a new run reuses a traced step."""

from __future__ import annotations

import threading
import weakref

import keras
import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model.internals import Tap, image_input, layer_at, logit_source, quiet_retracing
from ..model.introspect import find_layer
from ..model.loading import LoadedModel
from ..model.precision import loss_scale, twins_of
from ..model.taps import extractor
from . import objectives as obj


def image_size(loaded: LoadedModel, size) -> tuple[int, int, int]:
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
class CompiledStep:
    """The variables and the compiled step for one configuration (reused across runs)."""

    def __init__(
        self, loaded, objective, param, transforms, batch, hwc, names=None, update=("adam",)
    ):
        # no reference to the model object itself: the cache is keyed weakly by it.
        # ``loaded`` may hold a reduced-precision twin; ``names`` (the user's model) then
        # resolves the objective's layer references (indices, names, layer objects)
        self.preprocessing = loaded.preprocessing
        # float16 gradients underflow below 6e-8: the loss is scaled up, the gradient
        # back down (bfloat16 has float32's range and needs no scaling)
        self.loss_scale = loss_scale(loaded)
        self.busy = threading.Lock()  # one run at a time uses these variables
        # set while warm_up() compiles the step under `busy`: a run then waits for it
        # (a few seconds at most) instead of compiling a second step of its own
        self.warming = False
        self.param = param
        self.transforms = transforms
        # ("adam",) or ("l2", lr_final, radius): the update rule (Preset.optimizer), chosen
        # when the step is traced, so the Adam step has not one op more for it
        self.update = tuple(update)
        self._radius = float(self.update[2]) if len(self.update) > 2 else 0.0
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
        self.total = tf.Variable(1.0, trainable=False)  # steps of the run (l2 schedule)
        # where the run started (l2 with a radius: the image stays within it)
        self.origin = tf.Variable(tf.zeros(pshape), trainable=False) if self._radius else None
        # |d objective / d pixel| summed over the run: MaCo's transparency map
        self.evidence = tf.Variable(tf.zeros((batch, self.h, self.w)), trainable=False)
        # traced once per configuration: TensorFlow counts the traces of every CompiledStep
        # together (one Python method) and would call a new configuration a "retracing"
        autograph = any(isinstance(t, obj.Custom) for t in self.terms)
        self.step = quiet_retracing(tf.function(self._step, autograph=autograph))

    def _forward(self, x):
        """The taps' activations (float32; pre-activations where terms read them) and
        the logits (or None) of images ``x`` in [0, 1], through the model's
        preprocessing: the step's path from its transformed image, and the seed draws'."""
        outs = self.ext(self.preprocessing(x), training=False)
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
        return acts, logits

    def class_log_probabilities(self, images: np.ndarray, index: np.ndarray) -> np.ndarray:
        """``log p(index[b] | images[b])`` for a batch of ``(B, H, W, C)`` images in
        [0, 1], along the step's own path (its preprocessing, model and logits; no
        transforms), eagerly and without a gradient.  Needs a class objective."""
        if self.logits is None:
            raise CnnvizError("class_log_probabilities needs a class objective")
        _, logits = self._forward(tf.constant(images, tf.float32))
        logp = tf.nn.log_softmax(logits, axis=-1).numpy()
        return np.take_along_axis(logp, np.asarray(index, int).reshape(-1, 1), axis=1)[:, 0]

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
            acts, logits = self._forward(self.transforms(seen, seed))
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
        # no branches (a tf.cond traces two sub-functions and is lowered and optimized
        # again at the first call: time to the first image).  A finite step updates the
        # image and keeps the one before it in `good`; otherwise nothing moves, except
        # that an image whose objective is not finite goes back to `good` (finite
        # objective, bad gradient: it stays)
        var, good = self.var.read_value(), self.good.read_value()
        t = self.t + tf.cast(ok, tf.float32)
        if self.update[0] == "l2":
            stepped = self._l2_update(var, grad)
        else:
            stepped = self._adam_update(var, grad, t, ok)
        self.evidence.assign_add(tf.where(ok, evidence, tf.zeros_like(evidence)))
        self.t.assign(t)
        self.good.assign(tf.where(ok, var, good))
        self.var.assign(tf.where(ok, stepped, tf.where(finite_total, var, good)))
        return scores, ok

    def _adam_update(self, var, grad, t, ok):
        m, v = self.m, self.v
        m_new = 0.9 * m + 0.1 * grad
        v_new = 0.999 * v + 0.001 * tf.square(grad)
        m_hat = m_new / (1.0 - tf.pow(0.9, tf.maximum(t, 1.0)))
        v_hat = v_new / (1.0 - tf.pow(0.999, tf.maximum(t, 1.0)))
        self.m.assign(tf.where(ok, m_new, m))
        self.v.assign(tf.where(ok, v_new, v))
        return var - self.lr * m_hat / (tf.sqrt(v_hat) + 1e-8)

    def _l2_update(self, var, grad):
        """A step of RMS size ``lr_t`` per variable entry along the gradient's direction,
        per image (each image's gradient normalized on its own), ``lr_t`` decaying on a
        cosine from ``lr`` to ``lr * lr_final`` over ``total`` steps; a bounded
        parameterization (``Raw``) is clipped back into [0, 1]."""
        final = float(self.update[1])
        axis = int(getattr(self.param, "batch_axis", 0))
        others = [a for a in range(len(grad.shape)) if a != axis]
        size = float(np.prod([grad.shape[a] for a in others]))
        norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=others, keepdims=True))
        progress = tf.minimum(self.t / tf.maximum(self.total - 1.0, 1.0), 1.0)
        lr_t = self.lr * (final + (1.0 - final) * 0.5 * (1.0 + tf.cos(np.pi * progress)))
        stepped = var - lr_t * np.sqrt(size) * grad / (norm + 1e-12)
        if self._radius > 0:  # back onto the ball of RMS radius `radius` around the start
            delta = stepped - self.origin
            dist = tf.sqrt(tf.reduce_sum(tf.square(delta), axis=others, keepdims=True))
            limit = self._radius * np.sqrt(size)
            stepped = self.origin + delta * tf.minimum(1.0, limit / (dist + 1e-12))
        if getattr(self.param, "bounded", False):
            stepped = tf.clip_by_value(stepped, 0.0, 1.0)
        return stepped

    def reset(self, init: np.ndarray, lr: float, steps: int = 1) -> None:
        self.total.assign(float(steps))
        self.var.assign(init)
        if self.origin is not None:
            self.origin.assign(init)
        self.good.assign(init)
        self.m.assign(tf.zeros_like(self.m))
        self.v.assign(tf.zeros_like(self.v))
        self.t.assign(0.0)
        self.lr.assign(float(lr))
        self.evidence.assign(tf.zeros_like(self.evidence))

    def restart(self, mask: np.ndarray, init: np.ndarray) -> None:
        """Start the images of ``mask`` (``(B,)`` bool) again from ``init`` (the variable's
        shape), with a fresh optimizer state; the others go on (eager: the compiled step
        is not touched)."""
        shape = [1] * len(self.var.shape)
        shape[int(getattr(self.param, "batch_axis", 0))] = self.batch
        keep = tf.reshape(tf.constant(~np.asarray(mask, bool)), shape)
        init = tf.constant(init, tf.float32)
        for var, fresh in ((self.var, init), (self.good, init), (self.m, 0.0), (self.v, 0.0)):
            var.assign(tf.where(keep, var, tf.broadcast_to(fresh, var.shape)))
        if self.origin is not None:
            self.origin.assign(tf.where(keep, self.origin, init))

    def tracing_count(self) -> int:
        return self.step.experimental_get_tracing_count()


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
POOL_LOCK = threading.Lock()


def compiled_step(
    loaded, objective, param, transforms, batch, hwc, names=None, update=("adam",)
) -> CompiledStep:
    """The compiled step for this configuration: a cached one that no run is using, or a
    new one (two panels optimizing the same model at once each get their own).
    ``loaded`` may hold a reduced-precision twin of the model ``names``; ``update`` is
    ``("adam",)`` or ``("l2", lr_final, radius)``."""
    update = tuple(update)
    key = (objective.structure(), param, transforms, batch, hwc, loaded.preprocessing.name, update)
    # under a lock: two threads asking at once (a warm-up and a run) share one step rather
    # than each building and tracing its own
    with POOL_LOCK:
        pool = _COMPILED.setdefault(loaded.model, {}).setdefault(key, [])
        for compiled in pool:
            if not compiled.busy.locked() or compiled.warming:
                return compiled
        compiled = CompiledStep(loaded, objective, param, transforms, batch, hwc, names, update)
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
