"""Class activation maps: Grad-CAM, Grad-CAM++, Score-CAM, Layer-CAM and Guided Grad-CAM.

Each weighs the channels of one layer with a spatial output (``layer=``: a path inside
nested models too; default the last such layer) and returns a :class:`GradCam` whose
``raw`` is the map at the layer's resolution and ``heatmap`` its ReLU, upsampled
(bilinear) to the image and divided by its maximum.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..model.internals import Tap, image_input
from ..model.loading import LoadedModel
from ..model.precision import model_in, resolve
from ..model.scoring import (
    INT,
    AttributionFns,
    Net,
    cached_fns,
    cam_layer,
    image_spec,
    pick_class,
    unit,
)
from .gradients import batch_gradients, gradient_heat, rule_twin
from .methods import explained, grad_cam, predict_fns
from .registry import Method, Param, Run, register
from .results import Attribution, GradCam
from .shared import batch_for, even_batch

__all__ = ["layer_gradients", "upsample"]

LAYER = Param("layer", None, "layer", help="a layer with a spatial output (default: the last)")


def _grad_cam(run: Run, layer=None, plus_plus=False, precision="float32") -> Attribution:
    precision = "float32" if precision == "auto" else precision
    return grad_cam(
        run.loaded, run.image, run.target_arg, layer=layer, plus_plus=plus_plus, precision=precision
    )


register(Method(
    "grad_cam", "Grad-CAM",
    "class-weighted sum of a conv layer's channels", "Selvaraju et al. 2017",
    "cam", _grad_cam, (LAYER,), needs_layer=True,
))  # fmt: skip
register(Method(
    "grad_cam++", "Grad-CAM++",
    "Grad-CAM with higher-order channel weights", "Chattopadhay et al. 2018",
    "cam", _grad_cam, (LAYER,), needs_layer=True, fixed={"plus_plus": True},
))  # fmt: skip


def _layer_fns(loaded: LoadedModel, path: str) -> AttributionFns:
    def build():
        net = Net(loaded, [Tap(path)])

        @tf.function(input_signature=[image_spec(loaded), INT], autograph=False)
        def acts_grads(image, class_index):
            with tf.GradientTape() as tape:
                acts, logits, probs = net(image)
                c = pick_class(logits, class_index)
                score = tf.gather(logits[0], c)
            g = tape.gradient(score, acts[0])
            return (
                tf.cast(acts[0][0], tf.float32),
                tf.cast(g[0], tf.float32),
                logits[0],
                probs[0],
                c,
            )

        h, w, _ = image_input(loaded.model)
        masks = tf.TensorSpec((None, h, w), tf.float32)

        @tf.function(input_signature=[image_spec(loaded), masks, INT], autograph=False)
        def masked(image, m, class_index):
            """The class probability of ``image * m[i]`` for each mask."""
            _, _, probs = net(image * m[..., None])
            return tf.gather(probs, class_index, axis=1)

        return AttributionFns(net, acts_grads=acts_grads, masked=masked)

    return cached_fns(loaded, ("layer_maps", path), build)


def layer_gradients(loaded: LoadedModel, image: np.ndarray, path: str, target: int = -1):
    """``(activations (h, w, k), gradients of the class logit (h, w, k), logits, probs,
    class)`` at layer ``path`` for one display image, one pass."""
    a, g, logits, probs, c = _layer_fns(loaded, path).acts_grads(
        tf.constant(image[None], tf.float32), tf.constant(target, tf.int32)
    )
    return a.numpy(), g.numpy(), logits.numpy(), probs.numpy(), int(c)


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` or ``(h, w, k)`` maps resized (bilinear) to ``size``."""
    x = tf.constant(maps[None, ..., None] if maps.ndim == 2 else maps[None], tf.float32)
    out = tf.image.resize(x, size, method="bilinear")[0].numpy()
    return out[..., 0] if maps.ndim == 2 else out


def _cam_result(run, used, logits, probs, choice, raw, path, weights, notes) -> GradCam:
    heat = unit(np.maximum(upsample(raw, run.image.shape[:2]), 0.0))
    if not heat.any():
        notes.append(f"no positive evidence for class {used} at {path!r}: the map is all zero")
    return explained(
        GradCam, run.loaded, used, logits, probs, choice, heatmap=heat,
        raw=raw.astype(np.float32), image=run.image, method="", layer=path, notes=notes,
        weights=None if weights is None else weights.astype(np.float32),
    )  # fmt: skip


# ----------------------------------------------------------------------------- Score-CAM
def _score_cam(run: Run, layer=None, batch_size=None, precision="auto") -> Attribution:
    path = cam_layer(run.loaded, layer)
    a, _, logits, probs, used = layer_gradients(run.loaded, run.image, path, run.target)
    k = a.shape[-1]
    up = upsample(a, run.image.shape[:2])  # (H, W, K)
    lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
    masks = np.divide(up - lo, hi - lo, out=np.zeros_like(up), where=hi > lo)
    masks = np.ascontiguousarray(np.moveaxis(masks, -1, 0))  # (K, H, W)
    per_call = even_batch(k, int(batch_size) if batch_size else batch_for(run.image))
    choice = resolve(run.loaded, precision, "forward", batch=per_call)
    fns = _layer_fns(model_in(run.loaded, choice.precision), path)
    x, cls = tf.constant(run.image[None], tf.float32), tf.constant(used, tf.int32)
    weights = np.empty(k, np.float32)
    for s in range(0, k, per_call):
        e = min(k, s + per_call)
        weights[s:e] = fns.masked(x, tf.constant(masks[s:e]), cls).numpy()
        run.progress(e, k)
    raw = a @ weights
    notes = run.notes + fns.notes
    return _cam_result(run, used, logits, probs, choice, raw, path, weights, notes)


register(Method(
    "score_cam", "Score-CAM",
    "channels weighted by the class probability of the image masked by each",
    "Wang et al. 2020", "cam", _score_cam,
    (LAYER, Param("batch_size", None, "int", 1, 4096, help="masked images per pass")),
    needs_layer=True, long=True,
))  # fmt: skip


# ----------------------------------------------------------------------------- Layer-CAM
def _layer_cam(run: Run, layer=None, precision="float32") -> Attribution:
    path = cam_layer(run.loaded, layer)
    choice = resolve(run.loaded, precision, "gradient", exact=True)
    runner = model_in(run.loaded, choice.precision)
    a, g, logits, probs, used = layer_gradients(runner, run.image, path, run.target)
    raw = (np.maximum(g, 0.0) * a).sum(axis=-1)
    notes = run.notes + _layer_fns(runner, path).notes
    return _cam_result(run, used, logits, probs, choice, raw, path, None, notes)


register(Method(
    "layer_cam", "Layer-CAM",
    "each position's activations weighted by its own positive gradients",
    "Jiang et al. 2021", "cam", _layer_cam, (LAYER,), needs_layer=True,
))  # fmt: skip


# ----------------------------------------------------------------------- Guided Grad-CAM
def _guided_grad_cam(run: Run, layer=None, precision="float32") -> Attribution:
    cam = _grad_cam(run, layer, False, precision)
    twin, count = rule_twin(model_in(run.loaded, cam.precision), "guided")
    predict_fns(twin)  # the twin's notes match the model's
    g = batch_gradients(twin, run.image[None], cam.class_index)[0]
    raw = g * cam.heatmap[..., None]
    cam.raw, cam.heatmap = raw.astype(np.float32), gradient_heat(raw, "abs_max")
    if not count:
        cam.notes.append("the model has no ReLU: the guided part is the plain gradient")
    return cam


register(Method(
    "guided_grad_cam", "Guided Grad-CAM",
    "Guided Backprop times the Grad-CAM map", "Selvaraju et al. 2017",
    "cam", _guided_grad_cam, (LAYER,), needs_layer=True,
))  # fmt: skip
