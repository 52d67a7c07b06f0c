"""How the network sees one image: saliency, Grad-CAM, occlusion, top-k (feature maps:
:mod:`.features`; the results: :mod:`.results`).

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

import keras
import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model import budget
from ..model.internals import Tap, class_count, is_spatial, output_shape
from ..model.introspect import find_layer
from ..model.loading import LoadedModel, as_loaded
from ..model.precision import PrecisionChoice, model_in, resolve
from ..model.scoring import (
    FLOAT,
    INT,
    AttributionFns,
    Net,
    cached_fns,
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
    Occlusion,
    Predictions,
    Saliency,
)

__all__ = [
    "default_cam_layer",
    "grad_cam",
    "occlusion",
    "occlusion_grid",
    "predict_top",
    "saliency",
    "spatial_layers",
    "tracing_count",
]


def _cam_layer(loaded: LoadedModel, layer) -> str:
    if layer is None:
        return default_cam_layer(loaded)
    found, path = find_layer(loaded.model, layer)
    shape = output_shape(found)
    if isinstance(found, keras.Model) or not is_spatial(shape):
        options = spatial_layers(loaded)
        shown = ", ".join(options[-8:]) if options else "none in this model"
        raise CnnvizError(
            f"Grad-CAM needs a layer with a spatial output (batch, h, w, channels); {path!r} "
            f"({type(found).__name__}) outputs {shape}. Use a convolutional layer: "
            f"{shown} (default: the last one)"
        )
    return path


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
                total = tf.reduce_sum(tf.gather(logits, c, axis=1))
            g = tf.cast(tape.gradient(total, xs), tf.float32)
            w = tf.concat([[clean_weight], tf.ones(tf.shape(noise)[:1], tf.float32)], axis=0)
            return tf.reduce_sum(w[:, None, None, None] * g, axis=0), logits[0], probs[0], c

        return AttributionFns(net, grads=grads)

    return cached_fns(loaded, ("saliency",), build)


def _occlusion_fns(loaded: LoadedModel) -> AttributionFns:
    def build():
        net = Net(loaded, [])
        spec = image_spec(loaded)
        pos = tf.TensorSpec((None,), tf.int32)

        @tf.function(input_signature=[spec, spec, pos, pos, pos, pos, INT], autograph=False)
        def occlude(image, fill, y0, y1, x0, x1, class_index):
            """The class's (logit, probability) with each box [y0, y1) x [x0, x1) filled."""
            h, w = tf.shape(image)[1], tf.shape(image)[2]
            ys = tf.range(h)[None, :]
            xs = tf.range(w)[None, :]
            in_y = (ys >= y0[:, None]) & (ys < y1[:, None])  # (B, H)
            in_x = (xs >= x0[:, None]) & (xs < x1[:, None])  # (B, W)
            m = tf.cast(in_y[:, :, None] & in_x[:, None, :], tf.float32)[..., None]
            _, logits, probs = net(image * (1.0 - m) + fill * m)
            return tf.gather(logits, class_index, axis=1), tf.gather(probs, class_index, axis=1)

        return AttributionFns(net, occlude=occlude)

    return cached_fns(loaded, ("occlusion",), build)


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
        **fields,
    )


def predict_top(model, image, k: int = 5) -> Predictions:
    """The ``k`` most probable classes for one image.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: RGB in ``[0, 1]`` or uint8, ``(H, W, 3)`` (any size: resized, with a note),
            gray, a PIL image, a path or the bytes of an image file.
        k: how many classes (at most the number of classes).

    Returns:
        :class:`Predictions`; ``str()`` gives a small table.
    """
    loaded = as_loaded(model)
    n = class_count(loaded.model)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CnnvizError(f"k is a number of classes >= 1, got {k!r}")
    img, notes = prepare_image(loaded, image)
    fns = _predict_fns(loaded)
    logits, probs = fns.predict(tf.constant(img[None]))
    logits, probs = logits.numpy(), probs.numpy()
    order = np.argsort(-probs, kind="stable")[: min(int(k), n)]
    return Predictions(
        indices=order,
        names=[class_name_at(loaded, int(i)) for i in order],
        probabilities=probs[order].astype(np.float32),
        scores=logits[order].astype(np.float32),
        notes=notes + fns.notes,
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

    Returns:
        :class:`GradCam`.  The score differentiated is the class logit (read before the
        softmax without changing the model).  Grad-CAM and Grad-CAM++ come from the same
        compiled function (one forward and one backward pass).  A batch: ``explain_batch``.
    """
    loaded = as_loaded(model)
    n = class_count(loaded.model)
    c = target_class(loaded, target, n)
    path = _cam_layer(loaded, layer)
    img, notes = prepare_image(loaded, image)
    choice = resolve(loaded, precision, "optimize", exact=True)
    fns = _gradcam_fns(model_in(loaded, choice.precision), path)
    raw, raw_pp, w, w_pp, up, logits, probs, used = fns.cam(
        tf.constant(img[None]), tf.constant(c, tf.int32)
    )
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


def _batch_for(img: np.ndarray, limit: int = 128) -> int:
    """Images per forward batch: about 2^19 pixels (224 px: 10; 64 px: 128)."""
    return int(max(1, min(limit, (1 << 19) // max(1, img.shape[0] * img.shape[1]))))


def _even_batch(n: int, limit: int) -> int:
    """The batch that spreads ``n`` items evenly over the fewest passes of at most
    ``limit`` (16 items, limit 10: 8 per pass, not 10 + 6)."""
    passes = -(-int(n) // max(1, int(limit)))
    return max(1, -(-int(n) // max(1, passes)))


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
) -> Saliency:
    """Vanilla-gradient saliency (Simonyan et al. 2014) or SmoothGrad (Smilkov et al. 2017).

    The gradient of the class logit with respect to the display image (through the model's
    preprocessing).

    Args:
        model, image, target: as for :func:`grad_cam`.
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
    loaded = as_loaded(model)
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
    choice = resolve(loaded, precision, "optimize", batch=per_call + 1, exact=smooth == 0)
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


FILLS = ("mean", "blur", "black", "gray", "white")


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (separable, reflected edges) of an (H, W, C) image."""
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        out = sum(
            k[i] * np.take(p, np.arange(i, i + out.shape[axis]), axis=axis) for i in range(len(k))
        )
    return out.astype(np.float32)


def _fill_image(img: np.ndarray, fill, patch: int) -> tuple[np.ndarray, str]:
    if isinstance(fill, str):
        if fill == "mean":
            return np.broadcast_to(img.mean(axis=(0, 1)), img.shape).copy(), fill
        if fill == "blur":
            return _blur(img, max(1.0, patch / 2.0)), fill
        if fill in ("black", "gray", "white"):
            value = {"black": 0.0, "gray": 0.5, "white": 1.0}[fill]
            return np.full(img.shape, value, np.float32), fill
        raise CnnvizError(
            f"unknown fill {fill!r}: use one of {', '.join(FILLS)}, a value in [0, 1] or "
            "one value per channel"
        )
    value = np.asarray(fill, np.float32)
    if value.ndim == 0 or value.shape == (img.shape[-1],):
        return np.broadcast_to(value, img.shape).copy(), str(np.round(value, 3).tolist())
    raise CnnvizError(
        f"fill {fill!r}: give a name ({', '.join(FILLS)}), one value, or {img.shape[-1]} values"
    )


def _boxes(size: int, patch: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Patch starts and ends along one axis: centres every ``stride`` pixels from
    ``stride / 2``, so every pixel is covered alike; patches clipped at the border."""
    count = math.ceil(size / stride)
    start = np.arange(count) * stride + (stride - patch) // 2
    return np.clip(start, 0, size), np.clip(start + patch, 0, size)


def occlusion_grid(
    height: int, width: int, patch: int | None = None, stride: int | None = None
) -> tuple[int, int, int]:
    """``(patch, stride, positions)`` of :func:`occlusion` on a ``height x width`` image:
    the defaults where ``patch`` or ``stride`` is ``None`` (an eighth of the smaller side;
    half a patch), checked, and how many patches (forward passes) that makes.

    Raises:
        CnnvizError: a patch outside ``1..max(height, width)`` or a stride below 1.
    """
    h, w = int(height), int(width)
    patch = max(2, round(min(h, w) / 8)) if patch is None else int(patch)
    if not 1 <= patch <= max(h, w):
        raise CnnvizError(f"patch must be 1..{max(h, w)} pixels for a {h}x{w} image, got {patch}")
    stride = max(1, patch // 2) if stride is None else int(stride)
    if stride < 1:
        raise CnnvizError(f"stride must be >= 1 pixel, got {stride}")
    return patch, stride, math.ceil(h / stride) * math.ceil(w / stride)


def occlusion(
    model,
    image,
    target=None,
    *,
    patch: int | None = None,
    stride: int | None = None,
    fill="mean",
    score: str = "logit",
    batch_size: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
) -> Occlusion:
    """Occlusion sensitivity (Zeiler and Fergus 2014): hide one patch at a time and
    measure how much the class score drops.  All patches go through the model in batches
    of one compiled function.

    Args:
        model, image, target: as for :func:`grad_cam`.
        patch: patch side in pixels (default: an eighth of the image's smaller side, so 8
            px on the 64 px embedded model and 28 px on 224 px models).
        stride: step between patch centres (default ``patch // 2``); the grid has
            ``ceil(H / stride) x ceil(W / stride)`` positions.
        fill: what hides a patch: ``"mean"`` (the image's mean colour; default), ``"blur"``
            (the image blurred), ``"black"``, ``"gray"``, ``"white"``, a value or one
            value per channel (display space, [0, 1]).
        score: ``"logit"`` (default: drops stay comparable for confident classes) or
            ``"probability"``.
        batch_size: occluded images per forward pass, at most (default: by image size:
            10 at 224 px, 128 at 64 px).  The positions are spread evenly over the
            passes and the last pass is padded, so every pass has the same batch (16
            positions at most 10 per pass: two passes of 8, not 10 + 6).
        progress: called as ``progress(done, total)`` (patches) after each forward pass;
            an exception it raises ends the computation (a panel's Stop).
        precision: what the model's passes run in: ``"auto"`` (default: reduced
            precision only where measured faster on this hardware), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.  Scores are float32.

    Returns:
        :class:`Occlusion`.
    """
    loaded = as_loaded(model)
    n_classes = class_count(loaded.model)
    c = target_class(loaded, target, n_classes)
    if score not in ("logit", "probability"):
        raise CnnvizError(f"score must be 'logit' or 'probability', got {score!r}")
    img, notes = prepare_image(loaded, image)
    h, w = img.shape[:2]
    patch, stride, _ = occlusion_grid(h, w, patch, stride)
    if stride > patch:
        notes.append(f"stride {stride} > patch {patch}: some pixels are never hidden (heat 0)")
    fill_img, fill_name = _fill_image(img, fill, patch)
    ys0, ys1 = _boxes(h, patch, stride)
    xs0, xs1 = _boxes(w, patch, stride)
    rows, cols = len(ys0), len(xs0)
    # every (row, column) box, row-major
    y0 = np.repeat(ys0, cols).astype(np.int32)
    y1 = np.repeat(ys1, cols).astype(np.int32)
    x0 = np.tile(xs0, rows).astype(np.int32)
    x1 = np.tile(xs1, rows).astype(np.int32)

    limit = int(batch_size) if batch_size else _batch_for(img)
    if limit < 1:
        raise CnnvizError(f"batch_size must be >= 1, got {batch_size}")
    per_call = _even_batch(len(y0), limit)
    budget.check_occlusion(loaded.model, img, len(y0), per_call)
    choice = resolve(loaded, precision, "forward", batch=per_call)
    runner = model_in(loaded, choice.precision)
    # the base score comes from the same model as the occluded ones (drops stay honest)
    pred = _predict_fns(runner)
    logits, probs = (t.numpy() for t in pred.predict(tf.constant(img[None])))
    used = int(np.argmax(logits)) if c < 0 else c
    fns = _occlusion_fns(runner)
    x = tf.constant(img[None])
    f = tf.constant(fill_img[None].astype(np.float32))
    cls = tf.constant(used, tf.int32)
    n_pos = len(y0)
    padded = -(-n_pos // per_call) * per_call  # every pass the same batch: pad the last
    boxes = [np.concatenate([v, np.repeat(v[-1:], padded - n_pos)]) for v in (y0, y1, x0, x1)]
    out = np.empty(padded, np.float32)
    for s in range(0, padded, per_call):
        e = s + per_call
        lg, pr = fns.occlude(x, f, *(b[s:e] for b in boxes), cls)
        out[s:e] = (lg if score == "logit" else pr).numpy()
        if progress is not None:
            progress(min(e, n_pos), n_pos)
    out = out[:n_pos]
    base = float(logits[used] if score == "logit" else probs[used])
    scores = out.reshape(rows, cols)
    drops = base - scores
    # each pixel: the mean drop over the patches that covered it
    ry = (np.arange(h)[None, :] >= ys0[:, None]) & (np.arange(h)[None, :] < ys1[:, None])
    rx = (np.arange(w)[None, :] >= xs0[:, None]) & (np.arange(w)[None, :] < xs1[:, None])
    ry, rx = ry.astype(np.float32), rx.astype(np.float32)
    total = ry.T @ drops @ rx
    count = np.outer(ry.sum(axis=0), rx.sum(axis=0))
    mean_drop = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    heat = unit(np.maximum(mean_drop, 0.0))
    notes = notes + (fns.notes if score == "logit" else [])
    if not heat.any():
        notes.append("no patch lowered the score: the map is all zero; try a larger patch")
    return _explained(
        Occlusion,
        loaded,
        used,
        logits,
        probs,
        choice,
        heatmap=heat,
        raw=drops.astype(np.float32),
        image=img,
        method="occlusion",
        notes=notes,
        patch=patch,
        stride=stride,
        fill=fill_name,
        scores=scores,
        base_score=base,
        score_kind=score,
    )
