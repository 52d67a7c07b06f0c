"""Gradient methods: saliency, SmoothGrad, Integrated Gradients, Gradient x Input,
VarGrad, SquareGrad, Guided Backprop and DeconvNet.

They share one compiled function per model: the gradients of the class logit with
respect to a batch of display images (through the model's preprocessing), with the
logits.  Guided Backprop and DeconvNet run it on a *twin* of the model whose ReLUs carry
their gradient rule (:func:`rule_twin`): a rebuilt graph sharing the model's weights, so
the user's model and layers are never touched.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model import budget
from ..model.internals import image_input, share_weights
from ..model.loading import LoadedModel
from ..model.precision import model_in, resolve
from ..model.scoring import INT, AttributionFns, Net, cached_fns, unit
from .methods import explained, predict_fns, saliency
from .noise import noise_sigma
from .registry import Method, Param, Run, register
from .results import Attribution, Saliency
from .shared import batch_for, even_batch, fill_image

__all__ = ["batch_gradients", "gradient_heat", "rule_twin"]


def _batch_fns(loaded: LoadedModel) -> AttributionFns:
    def build():
        net = Net(loaded, [])
        h, w, c = image_input(loaded.model)
        spec = tf.TensorSpec((None, h, w, c), tf.float32)

        @tf.function(input_signature=[spec, INT], autograph=False)
        def grads(xs, class_index):
            """d logit[class] / d x for each image of the batch, and the logits."""
            with tf.GradientTape() as tape:
                tape.watch(xs)
                _, logits, _ = net(xs)
                total = tf.reduce_sum(logits[:, class_index])
            return tf.cast(tape.gradient(total, xs), tf.float32), logits

        return AttributionFns(net, grads=grads)

    return cached_fns(loaded, ("batch_grads",), build)


def batch_gradients(loaded: LoadedModel, images: np.ndarray, class_index: int) -> np.ndarray:
    """The gradient of the class logit for each of ``images`` ``(B, H, W, C)``, one pass."""
    g, _ = _batch_fns(loaded).grads(tf.constant(images, tf.float32), tf.constant(class_index))
    return g.numpy()


def gradient_heat(raw: np.ndarray, reduce: str = "abs_sum") -> np.ndarray:
    """An ``(H, W, C)`` map to a ``[0, 1]`` heatmap: per pixel the absolute sum over the
    channels (``"abs_sum"``), the largest absolute value (``"abs_max"``) or the plain sum
    (``"sum"``, for maps that are never negative), divided by its 99th percentile and
    clipped (one bright pixel does not darken the rest)."""
    if reduce == "abs_max":
        mag = np.abs(raw).max(axis=-1)
    elif reduce == "sum":
        mag = np.maximum(raw.sum(axis=-1), 0.0)
    else:
        mag = np.abs(raw.sum(axis=-1))
    top = float(np.percentile(mag, 99.0))
    return np.clip(mag / top, 0.0, 1.0).astype(np.float32) if top > 0 else unit(mag)


def _start(run: Run, precision: str, per_call: int, exact: bool):
    """The model to run (its precision resolved), the class and the clean image's scores."""
    choice = resolve(run.loaded, precision, "gradient", batch=per_call, exact=exact)
    runner = model_in(run.loaded, choice.precision)
    logits, probs = (t.numpy() for t in predict_fns(runner).predict(run.image[None]))
    used = int(np.argmax(logits)) if run.target < 0 else run.target
    return runner, choice, used, logits, probs


def _result(run, runner, choice, used, logits, probs, raw, heat, note="") -> Attribution:
    notes = run.notes + _batch_fns(runner).notes + ([note] if note else [])
    return explained(
        Saliency, run.loaded, used, logits, probs, choice,
        heatmap=heat, raw=raw.astype(np.float32), image=run.image, method="", notes=notes,
    )  # fmt: skip


def _in_batches(run: Run, runner, used: int, xs_of, n: int, per_call: int, each) -> None:
    """Call ``each(start, grads)`` for the gradients of ``xs_of(start, stop)``, batch by
    batch, reporting progress (``n`` images in all)."""
    fns = _batch_fns(runner)
    cls = tf.constant(used, tf.int32)
    for s in range(0, n, per_call):
        e = min(n, s + per_call)
        g, _ = fns.grads(tf.constant(xs_of(s, e), tf.float32), cls)
        each(s, g.numpy())
        run.progress(e, n)


def _per_call(run: Run, limit: int, n: int) -> int:
    return even_batch(n, batch_for(run.image, limit))


# ------------------------------------------------------------------ saliency, SmoothGrad
def _saliency(run: Run, precision: str = "auto") -> Attribution:
    return saliency(run.loaded, run.image, run.target_arg, precision=precision)


def _smoothgrad(run: Run, samples=25, noise=0.15, seed=0, precision="auto") -> Attribution:
    return saliency(
        run.loaded, run.image, run.target_arg, smooth=samples, noise=noise, seed=seed,
        progress=run.progress, precision=precision,
    )  # fmt: skip


SAMPLES = Param("samples", 25, "int", 1, 500, help="noisy copies of the image", step=5)
NOISE = Param("noise", 0.15, "float", 0.0, 2.0, help="noise std, fraction of the range", step=0.05)
SEED = Param("seed", 0, "int", 0, 2**31 - 1, help="random seed (same seed, same map)")
BASELINES = ("black", "blur", "mean", "gray", "white")

register(Method(
    "saliency", "Saliency",
    "gradient of the class score with respect to the pixels", "Simonyan et al. 2014",
    "gradient", _saliency,
))  # fmt: skip
register(Method(
    "smoothgrad", "SmoothGrad",
    "saliency averaged over noisy copies of the image", "Smilkov et al. 2017",
    "gradient", _smoothgrad, (SAMPLES, NOISE, SEED), long=True,
))  # fmt: skip


# ------------------------------------------------------------------ Integrated Gradients
def _integrated_gradients(run: Run, steps=64, baseline="black", precision="auto") -> Attribution:
    img = run.image
    base, base_name = fill_image(img, baseline, max(2, round(min(img.shape[:2]) / 8)))
    n = steps + 1  # the trapezoidal rule on alpha = 0, 1/steps, ..., 1
    per_call = _per_call(run, 32, n)
    budget.check_smoothgrad(run.loaded.model, img, n, per_call)
    runner, choice, used, logits, probs = _start(run, precision, per_call, exact=True)
    alphas = np.linspace(0.0, 1.0, n, dtype=np.float32)
    weights = np.full(n, 1.0 / steps, np.float32)
    weights[[0, -1]] *= 0.5
    diff = (img - base).astype(np.float32)
    total = np.zeros(img.shape, np.float64)

    def xs_of(s, e):
        return base[None] + alphas[s:e, None, None, None] * diff[None]

    def each(s, g):
        total[...] += np.tensordot(weights[s : s + len(g)], g, axes=1)

    _in_batches(run, runner, used, xs_of, n, per_call, each)
    raw = diff * total.astype(np.float32)
    note = f"baseline: {base_name}; {steps} steps (trapezoidal rule)"
    return _result(run, runner, choice, used, logits, probs, raw, gradient_heat(raw), note)


register(Method(
    "integrated_gradients", "Integrated Gradients",
    "gradients integrated along the path from a baseline image to the image",
    "Sundararajan et al. 2017", "gradient", _integrated_gradients,
    (Param("steps", 64, "int", 2, 1024, help="points on the path (64: sums within ~1%)"),
     Param("baseline", "black", "choice", choices=BASELINES, help="the image to start from")),
    long=True,
))  # fmt: skip


# -------------------------------------------------------------------- Gradient x Input
def _gradient_x_input(run: Run, precision: str = "auto") -> Attribution:
    runner, choice, used, logits, probs = _start(run, precision, 1, exact=True)
    g = batch_gradients(runner, run.image[None], used)[0]
    raw = g * run.image
    return _result(run, runner, choice, used, logits, probs, raw, gradient_heat(raw))


register(Method(
    "gradient_x_input", "Gradient × Input",
    "the gradient times the pixel values", "Shrikumar et al. 2016",
    "gradient", _gradient_x_input,
))  # fmt: skip


# ----------------------------------------------------------------- VarGrad, SquareGrad
def _noisy_moments(run: Run, samples, noise, seed, precision):
    """Mean and mean square of the gradients of ``samples`` noisy copies (SmoothGrad's
    noise: one seeded stream, whatever the batch size)."""
    img = run.image
    per_call = _per_call(run, 16, samples)
    budget.check_smoothgrad(run.loaded.model, img, samples, per_call)
    runner, choice, used, logits, probs = _start(run, precision, per_call, exact=False)
    sigma = noise_sigma(noise)  # a fraction of the input range, as SmoothGrad's paper
    rng = np.random.default_rng(seed)
    s1 = np.zeros(img.shape, np.float64)
    s2 = np.zeros(img.shape, np.float64)

    def xs_of(s, e):
        return img[None] + (rng.standard_normal((e - s, *img.shape)) * sigma).astype(np.float32)

    def each(s, g):
        s1[...] += g.sum(axis=0)
        s2[...] += np.square(g, dtype=np.float64).sum(axis=0)

    _in_batches(run, runner, used, xs_of, samples, per_call, each)
    mean, square = s1 / samples, s2 / samples
    return (runner, choice, used, logits, probs), mean, square


def _vargrad(run: Run, samples=25, noise=0.15, seed=0, precision="auto") -> Attribution:
    start, mean, square = _noisy_moments(run, samples, noise, seed, precision)
    raw = np.maximum(square - mean**2, 0.0).astype(np.float32)
    return _result(run, *start, raw, gradient_heat(raw, "sum"))


def _squaregrad(run: Run, samples=25, noise=0.15, seed=0, precision="auto") -> Attribution:
    start, _, square = _noisy_moments(run, samples, noise, seed, precision)
    raw = square.astype(np.float32)
    return _result(run, *start, raw, gradient_heat(raw, "sum"))


register(Method(
    "vargrad", "VarGrad",
    "variance of the gradients over noisy copies of the image", "Adebayo et al. 2018",
    "gradient", _vargrad, (SAMPLES, NOISE, SEED), long=True,
))  # fmt: skip
register(Method(
    "squaregrad", "SquareGrad",
    "mean square of the gradients over noisy copies of the image", "Hooker et al. 2019",
    "gradient", _squaregrad, (SAMPLES, NOISE, SEED), long=True,
))  # fmt: skip


# ------------------------------------------------------- Guided Backprop and DeconvNet
@tf.custom_gradient
def guided_relu(x):
    """ReLU whose gradient passes only where the input and the incoming gradient are
    positive (Springenberg et al. 2015)."""
    y = tf.nn.relu(x)

    def grad(dy):
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return y, grad


@tf.custom_gradient
def deconv_relu(x):
    """ReLU whose gradient is the ReLU of the incoming gradient (Zeiler and Fergus 2014)."""
    y = tf.nn.relu(x)

    def grad(dy):
        return tf.nn.relu(dy)

    return y, grad


_RULES = {"guided": guided_relu, "deconvnet": deconv_relu}
_TWINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _is_relu_layer(layer) -> bool:
    import keras

    config = layer.get_config()
    if isinstance(layer, keras.layers.ReLU):
        return not any(config.get(k) for k in ("max_value", "negative_slope", "threshold"))
    return isinstance(layer, keras.layers.Activation) and config.get("activation") == "relu"


def _rebuild(model, relu) -> tuple:
    import keras

    count = [0]

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        if _is_relu_layer(layer):
            count[0] += 1
            return keras.layers.Activation(relu, name=layer.name)
        config = layer.get_config()
        new = layer.__class__.from_config(config)
        if config.get("activation") == "relu" and hasattr(new, "activation"):
            count[0] += 1
            new.activation = relu
        return new

    way_out = "use a method without a gradient rule (saliency, integrated_gradients)"
    try:
        twin = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except Exception as err:
        raise CnnvizError(
            f"cannot rebuild {model.name!r} with another ReLU gradient ({type(err).__name__}: "
            f"{str(err)[:200]}): only Functional and Sequential models whose layers can be "
            f"rebuilt from their configs can; {way_out}"
        ) from None
    return share_weights(twin, model, "rebuilt copy", way_out), count[0]


def rule_twin(loaded: LoadedModel, rule: str) -> tuple[LoadedModel, int]:
    """``loaded`` around a twin of its model whose ReLUs have the gradient ``rule``
    (``"guided"`` or ``"deconvnet"``): a rebuilt graph that shares the model's weights
    (built once, cached weakly by the model); and how many ReLUs it changed.  The
    model itself is never touched."""
    with _LOCK:
        per_model = _TWINS.setdefault(loaded.model, {})
        if rule not in per_model:
            per_model[rule] = _rebuild(loaded.model, _RULES[rule])
        twin, count = per_model[rule]
    return replace(loaded, model=twin), count


def _rule_gradient(run: Run, rule: str, precision: str):
    start = _start(run, "float32" if precision == "auto" else precision, 1, exact=True)
    twin, count = rule_twin(start[0], rule)
    g = batch_gradients(twin, run.image[None], start[2])[0]
    note = "" if count else "the model has no ReLU: the rule changes nothing (plain gradient)"
    return start, g, note


def _guided_backprop(run: Run, precision: str = "auto") -> Attribution:
    start, g, note = _rule_gradient(run, "guided", precision)
    return _result(run, *start, g, gradient_heat(g, "abs_max"), note)


def _deconvnet(run: Run, precision: str = "auto") -> Attribution:
    start, g, note = _rule_gradient(run, "deconvnet", precision)
    return _result(run, *start, g, gradient_heat(g, "abs_max"), note)


register(Method(
    "guided_backprop", "Guided Backprop",
    "gradient passed back only through positive ReLU inputs and gradients",
    "Springenberg et al. 2015", "gradient", _guided_backprop,
))  # fmt: skip
register(Method(
    "deconvnet", "DeconvNet",
    "gradient passed back through the ReLU of the gradient", "Zeiler and Fergus 2014",
    "gradient", _deconvnet,
))  # fmt: skip
