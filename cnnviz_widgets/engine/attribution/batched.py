"""Attributions of many images at once: Grad-CAM (++) and saliency/SmoothGrad over a batch or
any data source :func:`~..dataset.examples.top_examples` accepts, as batched compiled passes.

One compiled function per model and layer takes a whole batch ``(B, H, W, C)`` and a class
per image (``-1``: the image's prediction) and returns every image's map from one forward
and one backward pass: the gradient of the *sum* of the images' class logits is, image by
image, the gradient of that image's own logit (the images do not interact: the model runs
in inference mode).  The maps equal those of the one-image functions
(:func:`~.methods.grad_cam`, :func:`~.methods.saliency`) up to float rounding.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..dataset.sources import data_source
from ..model.internals import Tap, class_count, image_input
from ..model.loading import LoadedModel
from ..model.outputs import select_output
from ..model.precision import model_in, resolve
from ..model.scoring import (
    AttributionFns,
    Net,
    cached_fns,
    cam_layer,
    class_name_at,
    is_classifier,
    target_class,
)
from ..results_io import Keepable
from .noise import noise_sigma
from .results import Attribution, GradCam, Saliency

__all__ = ["Attributions", "explain_batch"]

METHODS = ("grad_cam", "grad_cam++", "saliency", "smoothgrad")


@dataclass
class Attributions(Keepable):
    """One method's attributions of many images; ``result[i]`` is image ``i``'s own
    :class:`~.results.GradCam` or :class:`~.results.Saliency`.

    Attributes:
        heatmaps: ``(N, H, W)`` float32 in ``[0, 1]``, each normalized on its own (as the
            one-image methods do).
        raw: ``(N, h, w)`` the class-weighted channel sums before the ReLU (Grad-CAM), or
            ``(N, H, W, C)`` the gradients (saliency; averaged over the noisy copies).
        class_indices: ``(N,)`` the class explained in each image.
        class_names: their names (``None`` when unknown).
        scores: ``(N,)`` each class's logit (or output value).
        probabilities: ``(N,)`` its probability (NaN for a head that is not a classifier).
        images: ``(N, H, W, C)`` uint8, the display images (fitted to the model).
        labels: ``(N,)`` the data's labels (``-1`` unknown).
        sources: the file of each image (path sources), else ``None``.
        method: ``"grad_cam"``, ``"grad_cam++"``, ``"saliency"`` or ``"smoothgrad"``.
        layer: Grad-CAM's layer, else ``None``.
        weights: ``(N, channels)`` Grad-CAM's channel weights, else ``None``.
        samples, noise: SmoothGrad's noisy copies per image and noise level.
        seconds: wall time.
        stopped: the run was stopped before the end of the data (the images done are kept).
        notes: caveats (images fitted to the model, the model's head...).
        precision, precision_reason: what the passes ran in, and why.
        output: the output explained, for a model with several (its name), else ``None``.
    """

    heatmaps: np.ndarray
    raw: np.ndarray
    class_indices: np.ndarray
    class_names: list[str | None]
    scores: np.ndarray
    probabilities: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    sources: list[str | None] | None
    method: str
    layer: str | None = None
    weights: np.ndarray | None = None
    samples: int = 0
    noise: float = 0.0
    seconds: float = 0.0
    stopped: bool = False
    notes: list[str] = field(default_factory=list)
    precision: str = "float32"
    precision_reason: str = ""
    output: str | None = None

    def __len__(self) -> int:
        return len(self.heatmaps)

    def __getitem__(self, i: int) -> Attribution:
        """Image ``i``'s attribution, as the one-image method returns it."""
        n = len(self)
        if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
            raise CnnvizError(f"index an Attributions with an image number, got {i!r}")
        if not -n <= i < n:
            raise CnnvizError(f"image {i} out of range: {n} images (0..{n - 1})")
        i = int(i) % n
        common = dict(
            heatmap=self.heatmaps[i],
            raw=self.raw[i],
            class_index=int(self.class_indices[i]),
            class_name=self.class_names[i],
            score=float(self.scores[i]),
            probability=float(self.probabilities[i]),
            image=self.images[i].astype(np.float32) / 255.0,
            method=self.method,
            notes=list(self.notes),
            precision=self.precision,
            precision_reason=self.precision_reason,
            output=self.output,
        )
        if self.method.startswith("grad_cam"):
            return GradCam(layer=self.layer, weights=self.weights[i], **common)
        return Saliency(samples=self.samples, noise=self.noise, **common)


# ------------------------------------------------------------------ compiled passes
def _classes_of(logits, classes):
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.where(classes < 0, pred, classes)


def _batch_spec(loaded: LoadedModel) -> tf.TensorSpec:
    h, w, c = image_input(loaded.model)
    return tf.TensorSpec((None, h, w, c), tf.float32)


CLASSES = tf.TensorSpec((None,), tf.int32)


def _cam_batch_fns(loaded: LoadedModel, path: str) -> AttributionFns:
    def build():
        net = Net(loaded, [Tap(path)])

        @tf.function(input_signature=[_batch_spec(loaded), CLASSES], autograph=False)
        def cam(images, classes):
            with tf.GradientTape() as tape:
                acts, logits, probs = net(images)
                a = acts[0]
                c = _classes_of(logits, classes)
                score = tf.reduce_sum(tf.gather(logits, c, axis=1, batch_dims=1))
            g = tape.gradient(score, a)
            if g is None:
                raise CnnvizError(
                    f"the class scores do not depend on layer {path!r} (no gradient path): "
                    "pick a layer that leads to the output"
                )
            a = tf.cast(a, tf.float32)
            g = tf.cast(g, tf.float32)
            weights = tf.reduce_mean(g, axis=(1, 2))  # (B, channels)
            raw = tf.reduce_sum(a * weights[:, None, None, :], axis=-1)
            g2 = tf.square(g)  # Grad-CAM++, as in methods._gradcam_fns
            denom = 2.0 * g2 + tf.reduce_sum(a, axis=(1, 2), keepdims=True) * g2 * g
            alpha = tf.math.divide_no_nan(g2, denom)
            weights_pp = tf.reduce_sum(alpha * tf.nn.relu(g), axis=(1, 2))
            raw_pp = tf.reduce_sum(a * weights_pp[:, None, None, :], axis=-1)
            both = tf.nn.relu(tf.stack([raw, raw_pp], axis=-1))
            up = tf.image.resize(both, tf.shape(images)[1:3], method="bilinear")
            chosen = tf.gather(logits, c, axis=1, batch_dims=1)
            p = tf.gather(probs, c, axis=1, batch_dims=1)
            return raw, raw_pp, weights, weights_pp, up, chosen, p, c

        return AttributionFns(net, cam=cam)

    return cached_fns(loaded, ("grad_cam_batch", path), build)


def _grad_batch_fns(loaded: LoadedModel) -> AttributionFns:
    def build():
        net = Net(loaded, [])

        @tf.function(input_signature=[_batch_spec(loaded), CLASSES], autograph=False)
        def grads(images, classes):
            with tf.GradientTape() as tape:
                tape.watch(images)
                _, logits, probs = net(images)
                c = _classes_of(logits, classes)
                chosen = tf.gather(logits, c, axis=1, batch_dims=1)
                total = tf.reduce_sum(chosen)
            g = tf.cast(tape.gradient(total, images), tf.float32)
            return g, chosen, tf.gather(probs, c, axis=1, batch_dims=1), c

        return AttributionFns(net, grads=grads)

    return cached_fns(loaded, ("saliency_batch",), build)


def is_batch(image) -> bool:
    """A numpy batch of several images (``(N, H, W, C)``, ``N > 1``): what the one-image
    methods hand to :func:`explain_batch`."""
    return isinstance(image, np.ndarray) and image.ndim == 4 and image.shape[0] > 1


def batches_too(fn):
    """Decorator of :func:`~.methods.grad_cam` and :func:`~.methods.saliency`: given a batch
    of several images (:func:`is_batch`), they return :func:`explain_batch`'s
    :class:`Attributions` (their options carried over)."""

    @functools.wraps(fn)
    def one_or_many(model, image, target=None, **kw):
        if not is_batch(image):
            return fn(model, image, target, **kw)
        if fn.__name__ == "grad_cam":
            method = "grad_cam++" if kw.pop("plus_plus", False) else "grad_cam"
        else:
            method = "smoothgrad" if kw.get("smooth") else "saliency"
            kw.pop("batch_size", None)  # (noisy copies per call, for one image)
        return explain_batch(model, image, method, target, **kw)

    return one_or_many


# ------------------------------------------------------------------------- the door
def _targets(loaded: LoadedModel, target, n_classes: int):
    """``target`` as a function of (batch labels, start, count) -> int32 classes."""
    if isinstance(target, str) and target == "label":

        def from_labels(labels, start, count):
            if labels is None:
                raise CnnvizError(
                    'target="label" needs labelled data (a folder of class sub-folders, '
                    "(images, labels) pairs, shapes data); this data has no labels"
                )
            if (labels < 0).any() or (labels >= n_classes).any():
                bad = labels[(labels < 0) | (labels >= n_classes)][:4].tolist()
                raise CnnvizError(
                    f"labels {bad} are not classes of this model (0..{n_classes - 1}): "
                    "explain the predictions (target=None) or name a class"
                )
            return labels.astype(np.int32)

        return from_labels
    if target is None or isinstance(target, (str, int, np.integer)):
        c = target_class(loaded, target, n_classes)
        return lambda labels, start, count: np.full(count, c, np.int32)
    per_image = np.asarray(
        [target_class(loaded, t, n_classes) for t in np.atleast_1d(np.asarray(target, object))],
        np.int32,
    )

    def listed(labels, start, count):
        if start + count > len(per_image):
            raise CnnvizError(
                f"target lists {len(per_image)} classes but the data has more images: give "
                "one class per image, one class for all, None or 'label'"
            )
        return per_image[start : start + count]

    return listed


def explain_batch(
    model,
    data,
    method: str = "grad_cam",
    target=None,
    *,
    layer=None,
    smooth: int = 25,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int = 64,
    precision: str = "float32",
    progress: Callable[[int, int | None], None] | None = None,
    stop: threading.Event | None = None,
    output=None,
) -> Attributions:
    """Explain many images with one method, in batched compiled passes.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        data: a batch ``(N, H, W, C)`` (uint8 or floats in ``[0, 1]``), ``(images,
            labels)``, a folder or list of image files, generated shapes, a
            ``tf.data.Dataset`` or a generator: anything :func:`top_examples` takes.
        method: ``"grad_cam"``, ``"grad_cam++"``, ``"saliency"`` (the plain gradient) or
            ``"smoothgrad"``.
        target: ``None`` (each image's prediction), a class (index or name) for all,
            ``"label"`` (each image's own label from the data), or one class per image.
        layer: Grad-CAM's layer (default: the last spatial one).
        smooth, noise, seed: SmoothGrad's noisy copies per image, noise level (a fraction
            of the input range: see :mod:`.noise`) and seed (image ``i`` of the data gets
            the noise the one-image :func:`saliency` would give it with ``seed + i``).
        batch_size: images per compiled pass.
        precision: ``"float32"`` (default), ``"bfloat16"``, ``"float16"`` or ``"auto"``.
        progress: called as ``progress(done, total)`` after each batch (``total`` may be
            ``None`` for a stream); an exception it raises ends the run.
        stop: set it (from any thread) to end after the batch in progress; the images
            done are returned (``stopped=True``).
        output: for a model with several outputs, the one to explain (name or index:
            see :func:`~cnnviz_widgets.select_output`); optional with one output.

    Returns:
        :class:`Attributions`.
    """
    if method not in METHODS:
        raise CnnvizError(f"unknown batched method {method!r}: use one of {', '.join(METHODS)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise CnnvizError(f"batch_size is a number of images >= 1, got {batch_size!r}")
    if batch_size < 1:
        raise CnnvizError(f"batch_size is a number of images >= 1, got {batch_size}")
    smooth = int(smooth) if method == "smoothgrad" else 0
    if method == "smoothgrad" and smooth < 1:
        raise CnnvizError(f"smoothgrad needs smooth >= 1 noisy copies, got {smooth}")
    if not 0.0 <= float(noise) <= 2.0:
        raise CnnvizError(
            f"noise is a fraction of the input range (0.1 to 0.2 is usual), got {noise}"
        )
    t0 = time.perf_counter()
    loaded = select_output(
        model, output, call=f"cw.explain_batch(model, data, {method!r}, output={{output}})"
    )
    n_classes = class_count(loaded.model)
    classes_for = _targets(loaded, target, n_classes)
    cam = method.startswith("grad_cam")
    path = cam_layer(loaded, layer) if cam else None
    source = data_source(data, loaded)
    choice = resolve(loaded, precision, "gradient", batch=int(batch_size), exact=True)
    twin = model_in(loaded, choice.precision)
    fns = _cam_batch_fns(twin, path) if cam else _grad_batch_fns(twin)
    parts: dict[str, list] = {k: [] for k in ("heat", "raw", "w", "c", "s", "p", "img", "lab")}
    sources: list = []
    done, stopped = 0, False
    for batch in source.batches(int(batch_size)):
        if stop is not None and stop.is_set():
            stopped = True
            break
        x = tf.constant(batch.images)
        wanted = tf.constant(classes_for(batch.labels, done, len(batch)))
        if cam:
            raw, raw_pp, w, w_pp, up, score, prob, used = fns.cam(x, wanted)
            k = 1 if method == "grad_cam++" else 0
            parts["raw"].append((raw_pp if k else raw).numpy())
            parts["w"].append((w_pp if k else w).numpy())
            parts["heat"].append(_per_image_unit(up.numpy()[..., k]))
        else:
            grad, score, prob, used = _gradients(
                fns, batch.images, wanted, smooth, noise, seed, done
            )
            parts["raw"].append(grad)
            parts["heat"].append(_saliency_heat(grad))
        parts["c"].append(used.numpy())
        parts["s"].append(score.numpy())
        parts["p"].append(prob.numpy())
        parts["img"].append(np.clip(np.rint(batch.images * 255.0), 0, 255).astype(np.uint8))
        n = len(batch)
        parts["lab"].append(batch.labels if batch.labels is not None else np.full(n, -1))
        sources.extend(batch.sources if batch.sources is not None else [None] * n)
        done += n
        if progress is not None:
            progress(done, source.total)
    if done == 0:
        raise CnnvizError(
            "no image was explained: the data is empty" + (" (stopped)" if stopped else "")
        )
    classes = np.concatenate(parts["c"]).astype(np.int64)
    probs = np.concatenate(parts["p"]).astype(np.float32)
    notes = list(source.notes) + list(fns.notes)
    if not is_classifier(loaded):
        probs[:] = np.nan
    return Attributions(
        heatmaps=np.concatenate(parts["heat"]).astype(np.float32),
        raw=np.concatenate(parts["raw"]).astype(np.float32),
        class_indices=classes,
        class_names=[class_name_at(loaded, int(c)) for c in classes],
        scores=np.concatenate(parts["s"]).astype(np.float32),
        probabilities=probs,
        images=np.concatenate(parts["img"]),
        labels=np.concatenate(parts["lab"]).astype(np.int64),
        sources=sources if any(s is not None for s in sources) else None,
        method=method,
        layer=path,
        weights=np.concatenate(parts["w"]).astype(np.float32) if cam else None,
        samples=smooth,
        noise=float(noise) if smooth else 0.0,
        seconds=time.perf_counter() - t0,
        stopped=stopped,
        notes=notes,
        precision=choice.precision,
        precision_reason=choice.reason,
        output=loaded.output,
    )


def _gradients(fns, images: np.ndarray, wanted, smooth: int, noise: float, seed: int, start: int):
    """Saliency (``smooth == 0``) or SmoothGrad gradients of a batch: ``smooth`` batched
    passes, one per noisy copy; image ``start + i`` draws its noise from ``seed + start + i``
    (as the one-image :func:`saliency` with that seed)."""
    x = tf.constant(images)
    grad, score, prob, used = fns.grads(x, wanted)
    if not smooth:
        return grad.numpy(), score, prob, used
    sigma = noise_sigma(noise)
    shape = (smooth, *images.shape[1:])
    eps = np.stack(  # drawn and rounded as saliency() draws them, so the maps agree
        [
            (np.random.default_rng(seed + start + i).standard_normal(shape) * sigma).astype(
                np.float32
            )
            for i in range(len(images))
        ]
    )
    total = np.zeros(images.shape, np.float32)
    fixed = used  # the clean image's class, for every noisy copy
    for s in range(smooth):
        g, _, _, _ = fns.grads(tf.constant(images + eps[:, s]), fixed)
        total += g.numpy()
    return total / smooth, score, prob, used


def _per_image_unit(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its own maximum (all-zero maps stay zero)."""
    top = maps.reshape(len(maps), -1).max(axis=1)
    safe = np.where(top > 0, top, 1.0)
    return (maps / safe[:, None, None]).astype(np.float32)


def _saliency_heat(grad: np.ndarray) -> np.ndarray:
    """As :func:`~.methods.saliency`: the largest absolute value over channels, divided by
    its 99th percentile (per image) and clipped."""
    mag = np.abs(grad).max(axis=-1)
    out = np.empty_like(mag)
    for i, m in enumerate(mag):
        top = float(np.percentile(m, 99.0))
        if top > 0:
            out[i] = np.clip(m / top, 0.0, 1.0)
        else:
            peak = float(m.max())
            out[i] = m / peak if peak > 0 else m
    return out.astype(np.float32)
