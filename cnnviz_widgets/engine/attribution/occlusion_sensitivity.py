"""Occlusion sensitivity: hide one patch at a time and measure how much the class score
drops, all patches through one compiled function in even batches.

When the passes run in reduced precision (``precision="auto"`` on hardware with fast
bfloat16, or asked for), the numbers a user compares with the model stay float32: the
class explained, the base score and the probability come from a float32 pass; the drops
come from the reduced twin alone (base and occluded scores from the same model, so a
constant offset of the twin cancels); and a few positions are checked in float32, the
result saying how closely the reduced map agrees (:attr:`Occlusion.agreement`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model import budget
from ..model.internals import class_count
from ..model.loading import LoadedModel
from ..model.outputs import select_output
from ..model.precision import PrecisionChoice, model_in, resolve
from ..model.scoring import (
    INT,
    AttributionFns,
    Net,
    cached_fns,
    image_spec,
    prepare_image,
    target_class,
    unit,
)
from .methods import explained, predict_fns, reference
from .results import Occlusion
from .shared import FILLS, batch_for, even_batch, fill_image

__all__ = ["FILLS", "occlusion", "occlusion_grid"]

CHECKED = 4
"""Positions of a reduced-precision occlusion recomputed in float32 to say how closely the
map agrees: the two largest drops, the most negative one and the median one (one float32
pass of 4 images; on a 224 px image that is about 2 % of a float32 run's passes)."""


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
    output=None,
) -> Occlusion:
    """Occlusion sensitivity (Zeiler and Fergus 2014): hide one patch at a time and
    measure how much the class score drops.  All patches go through the model in batches
    of one compiled function.

    Args:
        model, image, target, output: as for :func:`grad_cam`.
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
        precision: what the occluded passes run in: ``"auto"`` (default: reduced
            precision only where measured faster on this hardware), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``.  In every precision the class explained,
            ``base_score``, ``score`` and ``probability`` come from a float32 pass; in a
            reduced one a few positions are recomputed in float32 and
            :attr:`Occlusion.agreement` says how closely the map agrees.

    Returns:
        :class:`Occlusion`.
    """
    loaded = select_output(model, output, call="cw.occlusion(model, image, output={output})")
    n_classes = class_count(loaded.model)
    c = target_class(loaded, target, n_classes)
    if score not in ("logit", "probability"):
        raise CnnvizError(f"score must be 'logit' or 'probability', got {score!r}")
    img, notes = prepare_image(loaded, image)
    h, w = img.shape[:2]
    patch, stride, _ = occlusion_grid(h, w, patch, stride)
    if stride > patch:
        notes.append(f"stride {stride} > patch {patch}: some pixels are never hidden (heat 0)")
    fill_img, fill_name = fill_image(img, fill, patch)
    ys0, ys1 = _boxes(h, patch, stride)
    xs0, xs1 = _boxes(w, patch, stride)
    rows, cols = len(ys0), len(xs0)
    # every (row, column) box, row-major
    y0 = np.repeat(ys0, cols).astype(np.int32)
    y1 = np.repeat(ys1, cols).astype(np.int32)
    x0 = np.tile(xs0, rows).astype(np.int32)
    x1 = np.tile(xs1, rows).astype(np.int32)

    limit = int(batch_size) if batch_size else batch_for(img)
    if limit < 1:
        raise CnnvizError(f"batch_size must be >= 1, got {batch_size}")
    per_call = even_batch(len(y0), limit)
    budget.check_occlusion(loaded.model, img, len(y0), per_call)
    choice = resolve(loaded, precision, "forward", batch=per_call)
    runner = model_in(loaded, choice.precision)
    # the class and the numbers the user compares with the model: float32 always
    c, ref = reference(loaded, img, choice, c)
    # the base score of the drops comes from the same model as the occluded ones (drops
    # stay honest: an offset of a reduced twin cancels)
    pred = predict_fns(runner)
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
    agreement = None
    if ref is not None:  # reduced: float32 base, scores float32's base minus the drops
        logits, probs = ref
        base = float(logits[used] if score == "logit" else probs[used])
        scores = (base - drops).astype(np.float32)
        boxes = (y0, y1, x0, x1)
        agreement = _check_in_float32(loaded, x, f, boxes, cls, score, drops.ravel(), base)
        choice = _with_agreement(choice, agreement, n_pos)
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
    return explained(
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
        agreement=agreement,
    )


def _check_in_float32(
    loaded, x, fill, boxes, cls, score: str, drops: np.ndarray, base: float
) -> float:
    """The largest difference between the reduced-precision ``drops`` and float32's at
    :data:`CHECKED` positions (the two largest drops, the most negative, the median), as
    a fraction of the largest drop magnitude (0 when no patch changes the score)."""
    order = np.argsort(drops, kind="stable")
    picks = np.unique(np.concatenate([order[-2:], order[:1], order[len(order) // 2 :][:1]]))
    picks = picks[:CHECKED]
    fns = _occlusion_fns(loaded)
    lg, pr = fns.occlude(x, fill, *(b[picks] for b in boxes), cls)
    exact = base - (lg if score == "logit" else pr).numpy()
    top = float(np.abs(drops).max())
    diff = float(np.abs(exact - drops[picks]).max())
    return diff / top if top > 0 else diff


def _with_agreement(choice: PrecisionChoice, agreement: float, n_pos: int) -> PrecisionChoice:
    return replace(
        choice,
        reason=(
            f"{choice.reason}; checked in float32 at {min(CHECKED, n_pos)} of {n_pos} "
            f"positions: drops within {agreement:.1%} of the largest drop"
        ),
    )
