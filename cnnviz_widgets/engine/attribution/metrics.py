"""How faithful a map is: deletion and insertion curves (Petsiuk et al. 2018), μ-Fidelity
(Bhatt et al. 2020), and, when the object's mask is known, the pointing game and the
relevance mass inside the mask.

The perturbed images of a metric are made and scored inside one compiled function per
model (a batch of masks in, the class probabilities out), so a metric costs its model
passes and little else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model.internals import class_count, image_input
from ..model.loading import LoadedModel
from ..model.outputs import select_output
from ..model.precision import model_in, resolve
from ..model.scoring import (
    INT,
    AttributionFns,
    Net,
    cached_fns,
    image_spec,
    prepare_image,
    target_class,
)
from .methods import predict_fns
from .results import Attribution
from .shared import batch_for, blur, even_batch

__all__ = [
    "BASELINES",
    "Curve",
    "deletion",
    "insertion",
    "mu_fidelity",
    "pointing_game",
    "relevance_mass",
    "saliency_map",
]

BASELINES = ("blur", "mean", "zero")
"""What replaces the pixels a deletion curve removes (and an insertion curve starts from):
the image blurred, its mean colour, or zeros."""


@dataclass
class Curve:
    """A deletion or insertion curve.

    Attributes:
        kind: ``"deletion"`` or ``"insertion"``.
        fractions: ``(steps + 1,)`` the fraction of pixels removed (deletion) or inserted.
        scores: the class's probability (or logit) at each fraction.
        auc: the area under the curve over ``[0, 1]`` (trapezoidal rule); for deletion
            lower is better (the score falls as soon as the first pixels go), for insertion
            higher is better.
        class_index: the class scored; ``baseline``: what replaced the pixels.
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: float
    class_index: int
    baseline: str


def _curve_fns(loaded: LoadedModel) -> AttributionFns:
    def build():
        net = Net(loaded, [])
        h, w, _ = image_input(loaded.model)
        counts = tf.TensorSpec((None,), tf.int32)
        ranks = tf.TensorSpec((h, w), tf.int32)
        masks = tf.TensorSpec((None, h, w), tf.float32)

        @tf.function(
            input_signature=[image_spec(loaded), image_spec(loaded), ranks, counts, INT],
            autograph=False,
        )
        def ranked(start, end, rank, count, class_index):
            """Scores of ``start`` with its ``count[i]`` first-ranked pixels from ``end``."""
            m = tf.cast(rank[None] < count[:, None, None], tf.float32)[..., None]
            _, logits, probs = net(start * (1.0 - m) + end * m)
            return tf.gather(probs, class_index, axis=1), tf.gather(logits, class_index, axis=1)

        @tf.function(
            input_signature=[image_spec(loaded), image_spec(loaded), masks, INT],
            autograph=False,
        )
        def masked(image, base, m, class_index):
            """Scores of ``image`` with the pixels where ``m`` is 1 from ``base``."""
            m = m[..., None]
            _, logits, probs = net(image * (1.0 - m) + base * m)
            return tf.gather(probs, class_index, axis=1), tf.gather(logits, class_index, axis=1)

        return AttributionFns(net, ranked=ranked, masked=masked)

    return cached_fns(loaded, ("metrics",), build)


def _open(model, image, saliency, target, output=None, call="cw.deletion"):
    """The model (its output ``output``, else the Attribution's), the image fitted, the
    ``(H, W)`` map and the class, from either an :class:`Attribution` (its image, class
    and output) or an image and a map."""
    if output is None and isinstance(saliency, Attribution):
        output = saliency.output
    loaded = select_output(model, output, call=call + "(model, image, saliency, output={output})")
    if isinstance(saliency, Attribution):
        img = saliency.image if image is None else prepare_image(loaded, image)[0]
        heat = saliency_map(saliency)
        c = saliency.class_index if target is None else target
    else:
        if image is None:
            raise CnnvizError("give the image the map is for (image=None needs an Attribution)")
        img = prepare_image(loaded, image)[0]
        heat = np.asarray(saliency, np.float32)
        c = target
    if heat.shape != img.shape[:2]:
        raise CnnvizError(
            f"the map is {heat.shape}, the image {img.shape[:2]}: give an (H, W) map at the "
            "image's resolution (an Attribution's heatmap)"
        )
    c = target_class(loaded, c, class_count(loaded.model))
    if c < 0:
        logits, _ = predict_fns(loaded).predict(img[None])
        c = int(np.argmax(logits))
    return loaded, img, np.asarray(heat, np.float32), c


def saliency_map(result: Attribution) -> np.ndarray:
    """The ``(H, W)`` map the metrics rank pixels by: the method's raw map when it has the
    image's resolution (summed in absolute value over channels), else its heatmap (the
    heatmap of a gradient method is clipped at its 99th percentile: many ties)."""
    raw = np.asarray(result.raw)
    if raw.shape[:2] != result.heatmap.shape:
        return result.heatmap
    return np.abs(raw).sum(axis=-1) if raw.ndim == 3 else raw


def _baseline(img: np.ndarray, baseline) -> np.ndarray:
    if isinstance(baseline, str):
        if baseline == "blur":
            return blur(img, max(1.0, min(img.shape[:2]) / 16))
        if baseline == "mean":
            return np.broadcast_to(img.mean(axis=(0, 1)), img.shape).astype(np.float32)
        if baseline == "zero":
            return np.zeros_like(img)
        raise CnnvizError(
            f"unknown baseline {baseline!r}: use one of {', '.join(BASELINES)} or a value"
        )
    return np.broadcast_to(np.asarray(baseline, np.float32), img.shape).astype(np.float32)


def _ranks(heat: np.ndarray) -> np.ndarray:
    """Each pixel's rank by heat, 0 for the hottest (ties: the first in row order)."""
    order = np.argsort(-heat.ravel(), kind="stable")
    ranks = np.empty(order.size, np.int32)
    ranks[order] = np.arange(order.size, dtype=np.int32)
    return ranks.reshape(heat.shape)


def _curve(
    kind, model, image, saliency, target, steps, baseline, score, batch_size, precision, output
):
    loaded, img, heat, c = _open(model, image, saliency, target, output, f"cw.{kind}")
    steps = int(steps)
    if not 1 <= steps <= heat.size:
        raise CnnvizError(f"steps must be in [1, {heat.size}] (one per pixel at most), got {steps}")
    if score not in ("probability", "logit"):
        raise CnnvizError(f"score must be 'probability' or 'logit', got {score!r}")
    base = _baseline(img, baseline)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * heat.size).astype(np.int32)
    start, end = (img, base) if kind == "deletion" else (base, img)
    fns = _curve_fns(model_in(loaded, resolve(loaded, precision, "forward").precision))
    n = len(counts)
    per_call = even_batch(n, int(batch_size) if batch_size else batch_for(img))
    args = (tf.constant(start[None]), tf.constant(end[None]), tf.constant(_ranks(heat)))
    out = np.empty(n, np.float32)
    for s in range(0, n, per_call):
        p, lg = fns.ranked(*args, tf.constant(counts[s : s + per_call]), tf.constant(c))
        out[s : s + per_call] = (p if score == "probability" else lg).numpy()
    auc = float(np.trapezoid(out, fractions))
    name = baseline if isinstance(baseline, str) else "value"
    return Curve(kind, fractions.astype(np.float32), out, auc, c, name)


def deletion(
    model,
    image=None,
    saliency=None,
    target=None,
    *,
    steps: int = 32,
    baseline="blur",
    score: str = "probability",
    batch_size: int | None = None,
    precision: str = "float32",
    output=None,
) -> Curve:
    """The deletion curve: the class score as the most important pixels are replaced by
    the baseline, most important first (Petsiuk et al. 2018); a faithful map makes it fall
    fast (a low AUC).

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: the image (``None``: the Attribution's own image).
        saliency: an :class:`Attribution` (its ``(H, W, C)`` raw map summed in absolute
            value over channels when it has the image's size, else its heatmap) or an
            ``(H, W)`` map; pixels are ranked by it (ties: row order).
        target: the class (``None``: the Attribution's class, or the predicted one).
        steps: points after the first; pixels removed per step: ``H * W / steps``.
        baseline: ``"blur"`` (the image blurred, sigma = side / 16), ``"mean"`` (its mean
            colour), ``"zero"``, or a value (one or one per channel).
        score: ``"probability"`` (default) or ``"logit"``.
        batch_size: images per forward pass (default: by image size).
        precision: the model's passes' precision (default float32).
        output: for a model with several outputs, the one scored (name or index: see
            :func:`~cnnviz_widgets.select_output`); default: the Attribution's.

    Returns:
        a :class:`Curve`.
    """
    return _curve(
        "deletion",
        model,
        image,
        saliency,
        target,
        steps,
        baseline,
        score,
        batch_size,
        precision,
        output,
    )


def insertion(
    model,
    image=None,
    saliency=None,
    target=None,
    *,
    steps: int = 32,
    baseline="blur",
    score: str = "probability",
    batch_size: int | None = None,
    precision: str = "float32",
    output=None,
) -> Curve:
    """The insertion curve: the class score as the most important pixels are put back
    into the baseline, most important first (Petsiuk et al. 2018); a faithful map makes it
    rise fast (a high AUC).  Arguments as for :func:`deletion`."""
    return _curve(
        "insertion",
        model,
        image,
        saliency,
        target,
        steps,
        baseline,
        score,
        batch_size,
        precision,
        output,
    )


def mu_fidelity(
    model,
    image=None,
    saliency=None,
    target=None,
    *,
    grid: int = 9,
    subset: float = 0.2,
    samples: int = 128,
    baseline="zero",
    score: str = "logit",
    seed: int = 0,
    precision: str = "float32",
    output=None,
) -> float:
    """μ-Fidelity (Bhatt et al. 2020): the Pearson correlation, over ``samples`` random
    subsets of a ``grid x grid`` partition of the image (each cell in with probability
    ``subset``), between the sum of the map over a subset and the score drop when that
    subset is replaced by the baseline.  1: the map predicts the drops; 0: it does not.
    Arguments as for :func:`deletion`; the same ``seed`` gives the same subsets.  The score
    is the logit by default: a confident softmax barely moves when part of the image goes,
    and a correlation with constant drops is 0."""
    loaded, img, heat, c = _open(model, image, saliency, target, output, "cw.mu_fidelity")
    if not 1 <= int(grid) <= min(heat.shape) or not 0.0 < float(subset) < 1.0:
        raise CnnvizError(
            f"grid must be in [1, {min(heat.shape)}] and subset in (0, 1), got {grid}, {subset}"
        )
    if int(samples) < 3:
        raise CnnvizError(f"samples must be >= 3 (a correlation), got {samples}")
    h, w = heat.shape
    rng = np.random.default_rng(seed)
    cells = (rng.random((int(samples), grid, grid)) < subset).astype(np.float32)
    ys = np.minimum(np.arange(h) * grid // h, grid - 1)
    xs = np.minimum(np.arange(w) * grid // w, grid - 1)
    masks = cells[:, ys][:, :, xs]  # (n, H, W)
    base = _baseline(img, baseline)
    fns = _curve_fns(model_in(loaded, resolve(loaded, precision, "forward").precision))
    per_call = even_batch(len(masks), batch_for(img))
    x, b, cls = tf.constant(img[None]), tf.constant(base[None]), tf.constant(c)
    p0, lg0 = fns.masked(x, b, tf.zeros((1, h, w)), cls)
    full = float((p0 if score == "probability" else lg0).numpy()[0])
    drops = np.empty(len(masks), np.float64)
    for s in range(0, len(masks), per_call):
        p, lg = fns.masked(x, b, tf.constant(masks[s : s + per_call]), cls)
        drops[s : s + per_call] = full - (p if score == "probability" else lg).numpy()
    sums = np.tensordot(masks, heat, axes=2)
    if np.std(sums) == 0 or np.std(drops) == 0:
        return 0.0
    return float(np.corrcoef(sums, drops)[0, 1])


def pointing_game(saliency, mask, tolerance: int = 0) -> bool:
    """Whether the map's hottest pixel falls on the object's ``mask`` (any of them, when
    several share the maximum), or within ``tolerance`` pixels of it."""
    heat, mask = _heat_and_mask(saliency, mask)
    t = int(tolerance)
    if t > 0:
        padded = np.pad(mask, t)
        h, w = mask.shape
        mask = np.zeros_like(mask)
        for dy in range(2 * t + 1):
            for dx in range(2 * t + 1):
                mask |= padded[dy : dy + h, dx : dx + w]
    return bool(mask[heat == heat.max()].any())


def relevance_mass(saliency, mask) -> float:
    """The share of the map's (non-negative) mass inside the object's ``mask``
    (Arras et al. 2022's relevance mass accuracy); 0 for an all-zero map."""
    heat, mask = _heat_and_mask(saliency, mask)
    heat = np.maximum(heat, 0.0)
    total = float(heat.sum())
    return float(heat[mask].sum()) / total if total > 0 else 0.0


def _heat_and_mask(saliency, mask) -> tuple[np.ndarray, np.ndarray]:
    heat = saliency.heatmap if isinstance(saliency, Attribution) else np.asarray(saliency)
    mask = np.asarray(mask).astype(bool)
    if heat.shape != mask.shape:
        raise CnnvizError(f"the map is {heat.shape} and the mask {mask.shape}: give the same size")
    return heat.astype(np.float64), mask
