"""How the network sees one image: saliency, Grad-CAM, top-k (occlusion:
:mod:`.occlusion_sensitivity`; feature maps: :mod:`..layers.features`; the results:
:mod:`.results`).

Every method takes an image in *display space* (RGB floats in ``[0, 1]`` or uint8, any
size: see :mod:`.imageio`), applies the model's own preprocessing inside a compiled
``tf.function`` and returns a small dataclass.  The compiled functions are cached per
Keras model (weakly, so a model that goes away takes its functions with it) and per
layer; the image, the class index, the noise level and the occlusion patches are tensor
arguments with fixed signatures, so a new image or a new class never retraces.

Reading inner tensors never changes the model: top-level layers are read with
an extractor (:mod:`.internals`); for a layer inside a nested model (a pretrained base inside a
Sequential) the model's graph is run once with the nested model replaced by an extractor
of its own graph, so the inner activation and the class score come from *one*
computation and the gradient between them exists.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model import budget
from ..model.distribution import distribution_check
from ..model.internals import Tap, class_count
from ..model.loading import LoadedModel
from ..model.outputs import select_output
from ..model.precision import PrecisionChoice, loss_scale, model_in, resolve
from ..model.scoring import (
    FLOAT,
    INT,
    AttributionFns,
    Net,
    cached_fns,
    cam_layer,
    class_name_at,
    default_cam_layer,
    image_spec,
    is_classifier,
    pick_class,
    prepare_image,
    spatial_layers,
    target_class,
    tracing_count,
    unit,
)
from .batched import batches_too
from .noise import noise_sigma
from .results import (
    Attribution,
    GradCam,
    Predictions,
    Saliency,
)
from .shared import batch_for as _batch_for
from .shared import even_batch as _even_batch

__all__ = [
    "default_cam_layer",
    "grad_cam",
    "predict_top",
    "saliency",
    "spatial_layers",
    "tracing_count",
]


def _predict_fns(loaded: LoadedModel) -> AttributionFns:
    def build():
        net = Net(loaded, [])

        @tf.function(input_signature=[image_spec(loaded)], autograph=False)
        def predict(image):
            _, logits, probs = net(image)
            return logits[0], probs[0]

        return AttributionFns(net, predict=predict)

    return cached_fns(loaded, ("predict",), build)


def _gradcam_fns(loaded: LoadedModel, path: str) -> AttributionFns:
    def build():
        net = Net(loaded, [Tap(path)])

        @tf.function(input_signature=[image_spec(loaded), INT], autograph=False)
        def cam(image, class_index):
            with tf.GradientTape() as tape:
                acts, logits, probs = net(image)
                a = acts[0]
                c = pick_class(logits, class_index)
                score = tf.gather(logits[0], c)
            g = tape.gradient(score, a)
            if g is None:
                raise CnnvizError(
                    f"the class scores do not depend on layer {path!r} (no gradient path): "
                    "pick a layer that leads to the output"
                )
            a = tf.cast(a[0], tf.float32)
            g = tf.cast(g[0], tf.float32)
            weights = tf.reduce_mean(g, axis=(0, 1))
            raw = tf.reduce_sum(a * weights, axis=-1)
            # Grad-CAM++ (Chattopadhay et al. 2018) with the score's exponential: its 2nd
            # and 3rd derivatives are powers of the gradient, and exp(S) cancels in alpha.
            g2 = tf.square(g)
            g3 = g2 * g
            denom = 2.0 * g2 + tf.reduce_sum(a, axis=(0, 1)) * g3
            alpha = tf.math.divide_no_nan(g2, denom)
            weights_pp = tf.reduce_sum(alpha * tf.nn.relu(g), axis=(0, 1))
            raw_pp = tf.reduce_sum(a * weights_pp, axis=-1)
            both = tf.nn.relu(tf.stack([raw, raw_pp], axis=-1))[None]
            up = tf.image.resize(both, tf.shape(image)[1:3], method="bilinear")[0]
            return raw, raw_pp, weights, weights_pp, up, logits[0], probs[0], c

        return AttributionFns(net, cam=cam)

    return cached_fns(loaded, ("grad_cam", path), build)


def _saliency_fns(loaded: LoadedModel) -> AttributionFns:
    def build():
        net = Net(loaded, [])
        spec = image_spec(loaded)
        noise_spec = tf.TensorSpec((None, *spec.shape[1:]), tf.float32)
        scale = loss_scale(loaded)  # float16 gradients underflow unless scaled

        @tf.function(input_signature=[spec, INT, noise_spec, FLOAT], autograph=False)
        def grads(image, class_index, noise, clean_weight):
            """The gradient of the clean image (weight ``clean_weight``) plus those of
            ``image + noise[i]`` (weight 1 each), summed; the logits, probabilities and
            class of the clean image."""
            xs = tf.concat([image, image + noise], axis=0)
            with tf.GradientTape() as tape:
                tape.watch(xs)
                _, logits, probs = net(xs)
                c = pick_class(logits, class_index)
                total = tf.reduce_sum(tf.gather(logits, c, axis=1)) * scale
            g = tf.cast(tape.gradient(total, xs), tf.float32) / scale
            w = tf.concat([[clean_weight], tf.ones(tf.shape(noise)[:1], tf.float32)], axis=0)
            return tf.reduce_sum(w[:, None, None, None] * g, axis=0), logits[0], probs[0], c

        return AttributionFns(net, grads=grads)

    return cached_fns(loaded, ("saliency",), build)


def _reference(loaded: LoadedModel, img: np.ndarray, choice: PrecisionChoice, c: int):
    """``(class, (logits, probabilities) or None)``: when the passes run in reduced
    precision, the float32 scores of the image (one float32 pass) and the class to explain
    (``c``, or float32's top class when ``c`` is -1), so that the numbers a user compares
    with the model stay float32; in float32, ``(c, None)``."""
    if choice.precision == "float32":
        return c, None
    logits, probs = (t.numpy() for t in _predict_fns(loaded).predict(tf.constant(img[None])))
    return (int(np.argmax(logits)) if c < 0 else c), (logits, probs)


def _explained(
    kind, loaded: LoadedModel, used: int, logits, probs, choice: PrecisionChoice, **fields
) -> Attribution:
    """A ``kind`` result for class ``used``: its name, score, probability (NaN: no classifier)."""
    return kind(
        class_index=used,
        class_name=class_name_at(loaded, used),
        score=float(np.asarray(logits)[used]),
        probability=float(np.asarray(probs)[used]) if is_classifier(loaded) else math.nan,
        precision=choice.precision,
        precision_reason=choice.reason,
        output=loaded.output,
        **fields,
    )


def predict_top(model, image, k: int = 5, *, output=None) -> Predictions:
    """The ``k`` most probable classes for one image.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: RGB in ``[0, 1]`` or uint8, ``(H, W, 3)`` (any size: resized, with a note),
            gray, a PIL image, a path or the bytes of an image file.
        k: how many classes (at most the number of classes).
        output: for a model with several outputs, the one to read (name or index: see
            :func:`~cnnviz_widgets.select_output`); optional with one output.

    Returns:
        :class:`Predictions`; ``str()`` gives a small table.  For a model that says what
        it was trained on (the embedded shapes models), ``in_distribution`` and a note say
        when the image is unlike its training images (``cw.distribution_check``).
    """
    loaded = select_output(model, output, call="cw.predict_top(model, image, output={output})")
    n = class_count(loaded.model)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CnnvizError(f"k is a number of classes >= 1, got {k!r}")
    img, notes = prepare_image(loaded, image)
    fns = _predict_fns(loaded)
    logits, probs = fns.predict(tf.constant(img[None]))
    logits, probs = logits.numpy(), probs.numpy()
    order = np.argsort(-probs, kind="stable")[: min(int(k), n)]
    check = distribution_check(loaded, img)
    note = check.note if check is not None else ""
    return Predictions(
        indices=order,
        names=[class_name_at(loaded, int(i)) for i in order],
        probabilities=probs[order].astype(np.float32),
        scores=logits[order].astype(np.float32),
        notes=([note] if note else []) + notes + fns.notes,
        in_distribution=None if check is None else check.in_distribution,
        distribution_note=note,
    )


@batches_too
def grad_cam(
    model,
    image,
    target=None,
    *,
    layer=None,
    plus_plus: bool = False,
    precision: str = "float32",
    output=None,
) -> GradCam:
    """Grad-CAM (Selvaraju et al. 2017) or Grad-CAM++: which regions of a conv layer's
    output raise the class score.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: RGB in ``[0, 1]`` or uint8 (see :func:`predict_top`).
        target: class index or name; ``None``: the predicted class.
        layer: a layer with a spatial output (index, name, path ``"base/conv5"`` or
            object); default :func:`default_cam_layer`, the last one, also inside nested
            models.
        plus_plus: Grad-CAM++ weights instead of mean gradients.
        precision: ``"float32"`` (default: one pass, checked against an exact reference),
            ``"bfloat16"``, ``"float16"`` or ``"auto"`` (float32: Grad-CAM is exact).
        output: for a model with several outputs, the one to explain: its name (a dict
            output's key, or the output layer's name) or its index (see
            :func:`~cnnviz_widgets.select_output`); optional with one output.

    Returns:
        :class:`GradCam`.  The score differentiated is the class logit (read before the
        softmax without changing the model).  Grad-CAM and Grad-CAM++ come from the same
        compiled function (one forward and one backward pass).  A batch: ``explain_batch``.
    """
    loaded = select_output(model, output, call="cw.grad_cam(model, image, output={output})")
    n = class_count(loaded.model)
    c = target_class(loaded, target, n)
    path = cam_layer(loaded, layer)
    img, notes = prepare_image(loaded, image)
    choice = resolve(loaded, precision, "gradient", exact=True)
    c, ref = _reference(loaded, img, choice, c)
    fns = _gradcam_fns(model_in(loaded, choice.precision), path)
    raw, raw_pp, w, w_pp, up, logits, probs, used = fns.cam(
        tf.constant(img[None]), tf.constant(c, tf.int32)
    )
    logits, probs = ref or (logits, probs)
    k = 1 if plus_plus else 0
    raw_map = (raw_pp if plus_plus else raw).numpy()
    heat = unit(up.numpy()[..., k])
    used = int(used)
    notes = notes + fns.notes
    if not heat.any():
        notes.append(
            f"no positive evidence for class {used} at {path!r}: the map is all zero (the "
            "weighted channels are negative everywhere)"
        )
    return _explained(
        GradCam,
        loaded,
        used,
        logits,
        probs,
        choice,
        heatmap=heat,
        raw=raw_map.astype(np.float32),
        image=img,
        method="grad_cam++" if plus_plus else "grad_cam",
        layer=path,
        notes=notes,
        weights=(w_pp if plus_plus else w).numpy().astype(np.float32),
    )


@batches_too
def saliency(
    model,
    image,
    target=None,
    *,
    smooth: int = 0,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
    output=None,
) -> Saliency:
    """Vanilla-gradient saliency (Simonyan et al. 2014) or SmoothGrad (Smilkov et al. 2017).

    The gradient of the class logit with respect to the display image (through the model's
    preprocessing).

    Args:
        model, image, target, output: as for :func:`grad_cam`.
        smooth: 0 for the plain gradient; ``n`` > 0 averages the gradients of ``n`` copies
            of the image with Gaussian noise (SmoothGrad; 25 to 50 is usual).
        noise: the noise's standard deviation as a fraction of the input's range (:mod:`.noise`).
        seed: the noise seed (same seed, same map, whatever the batch size).
        batch_size: noisy copies per compiled call, at most (default: by image size, at
            most 16; the copies are spread evenly over the calls).
        progress: called as ``progress(done, total)`` after each batch of noisy copies;
            an exception it raises ends the computation (a panel's Stop).
        precision: what the model's passes run in: ``"auto"`` (default: float32 for the
            plain gradient, which is exact; for SmoothGrad, reduced precision only where
            measured faster on this hardware), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``.  The map is float32.

    Returns:
        :class:`Saliency` (for a batch: ``explain_batch``'s ``Attributions``).
    """
    loaded = select_output(model, output, call="cw.saliency(model, image, output={output})")
    n_classes = class_count(loaded.model)
    c = target_class(loaded, target, n_classes)
    smooth = int(smooth)
    if smooth < 0:
        raise CnnvizError(f"smooth is a number of noisy samples >= 0, got {smooth}")
    if not 0.0 <= float(noise) <= 2.0:
        raise CnnvizError(
            f"noise is a fraction of the value range (0.1 to 0.2 is usual), got {noise}"
        )
    img, notes = prepare_image(loaded, image)
    per_call = int(batch_size) if batch_size else _batch_for(img, 16)
    if per_call < 1:
        raise CnnvizError(f"batch_size must be >= 1, got {batch_size}")
    per_call = _even_batch(smooth, per_call) if smooth else 1
    if smooth:
        budget.check_smoothgrad(loaded.model, img, smooth, per_call)
    choice = resolve(loaded, precision, "gradient", batch=per_call + 1, exact=smooth == 0)
    c, ref = _reference(loaded, img, choice, c)
    fns = _saliency_fns(model_in(loaded, choice.precision))
    x = tf.constant(img[None])
    if smooth == 0:
        none = tf.zeros((0, *img.shape), tf.float32)
        g, logits, probs, used = fns.grads(x, tf.constant(c, tf.int32), none, tf.constant(1.0))
        grad = g.numpy()
    else:
        sigma = noise_sigma(noise)  # a fraction of the input's range, as in the paper
        rng = np.random.default_rng(seed)  # one stream: the batch size changes nothing
        grad = np.zeros(img.shape, np.float32)
        cls = c
        done = 0
        while done < smooth:
            m = min(per_call, smooth - done)
            eps = (rng.standard_normal((m, *img.shape)) * sigma).astype(np.float32)
            g, lg, pr, u = fns.grads(x, tf.constant(cls, tf.int32), eps, tf.constant(0.0))
            if done == 0:
                used, logits, probs = u, lg, pr
                cls = int(u)  # the predicted class, fixed for the other batches
            grad += g.numpy()
            done += m
            if progress is not None:
                progress(done, smooth)
        grad /= smooth
    used = int(used)
    logits, probs = ref or (logits, probs)
    mag = np.abs(grad).max(axis=-1)
    top = float(np.percentile(mag, 99.0))
    heat = np.clip(mag / top, 0.0, 1.0).astype(np.float32) if top > 0 else unit(mag)
    return _explained(
        Saliency,
        loaded,
        used,
        logits,
        probs,
        choice,
        heatmap=heat,
        raw=grad.astype(np.float32),
        image=img,
        method="smoothgrad" if smooth else "saliency",
        notes=notes + fns.notes,
        samples=smooth,
        noise=float(noise) if smooth else 0.0,
    )


# shared with the other modules of the package (gradients, cams, perturbation, occlusion,
# metrics)
explained, predict_fns, reference = _explained, _predict_fns, _reference
