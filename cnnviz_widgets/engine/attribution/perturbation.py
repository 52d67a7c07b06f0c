"""Perturbation methods: occlusion and RISE, forward passes only (batched, compiled)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..model.internals import image_input
from ..model.loading import LoadedModel
from ..model.precision import model_in, resolve
from ..model.scoring import INT, AttributionFns, Net, cached_fns, image_spec, unit
from .methods import explained, predict_fns
from .occlusion_sensitivity import occlusion
from .registry import Method, Param, Run, register
from .results import Attribution
from .shared import batch_for, even_batch

__all__ = ["rise_masks"]


def _occlusion(run: Run, patch=None, stride=None, fill="mean", precision="auto") -> Attribution:
    return occlusion(
        run.loaded, run.image, run.target_arg, patch=patch, stride=stride, fill=fill,
        progress=run.progress, precision=precision,
    )  # fmt: skip


register(Method(
    "occlusion", "Occlusion",
    "score drop when a patch is hidden", "Zeiler and Fergus 2014",
    "perturbation", _occlusion,
    (Param("patch", None, "int", 1, 4096, help="patch side in pixels (default: 1/8 of the image)"),
     Param("stride", None, "int", 1, 4096, help="step between patches (default: patch / 2)"),
     Param("fill", "mean", "choice", choices=("mean", "blur", "black", "gray", "white"),
           help="what hides a patch")),
    long=True,
))  # fmt: skip


# ---------------------------------------------------------------------------------- RISE
def rise_masks(n: int, size: tuple[int, int], cells: int, keep: float, seed: int):
    """The random grids and shifts of RISE's ``n`` masks: ``(grids (n, cells, cells) of
    0/1, shifts (n, 2))``; :func:`_rise_fns` upsamples and crops them.  One seeded stream,
    so the same seed gives the same masks whatever the batch size."""
    rng = np.random.default_rng(seed)
    grids = (rng.random((n, cells, cells)) < keep).astype(np.float32)
    ch, cw = -(-size[0] // cells), -(-size[1] // cells)
    shifts = np.stack([rng.integers(0, ch, n), rng.integers(0, cw, n)], axis=1)
    return grids, shifts.astype(np.int32)


def _rise_fns(loaded: LoadedModel, cells: int) -> AttributionFns:
    def build():
        net = Net(loaded, [])
        h, w, _ = image_input(loaded.model)
        ch, cw = -(-h // cells), -(-w // cells)
        grid = tf.TensorSpec((None, cells, cells), tf.float32)
        shift = tf.TensorSpec((None, 2), tf.int32)

        def masks_of(grids, shifts):
            up = tf.image.resize(grids[..., None], ((cells + 1) * ch, (cells + 1) * cw))[..., 0]
            rows = shifts[:, :1] + tf.range(h)[None]
            cols = shifts[:, 1:] + tf.range(w)[None]
            up = tf.gather(up, rows, axis=1, batch_dims=1)
            return tf.gather(up, cols, axis=2, batch_dims=1)  # (B, H, W)

        @tf.function(input_signature=[image_spec(loaded), grid, shift, INT], autograph=False)
        def rise(image, grids, shifts, class_index):
            """sum_i p_class(image * m_i) m_i over the batch, and the probabilities."""
            m = masks_of(grids, shifts)
            _, _, probs = net(image * m[..., None])
            p = tf.gather(probs, class_index, axis=1)
            return tf.tensordot(p, m, axes=1), p

        @tf.function(input_signature=[grid, shift], autograph=False)
        def masks(grids, shifts):
            return masks_of(grids, shifts)

        return AttributionFns(net, rise=rise, masks=masks)

    return cached_fns(loaded, ("rise", cells), build)


def _rise(
    run: Run, masks=1000, cells=7, keep=0.5, seed=0, batch_size=None, precision="auto"
) -> Attribution:
    img = run.image
    per_call = even_batch(masks, int(batch_size) if batch_size else batch_for(img))
    choice = resolve(run.loaded, precision, "forward", batch=per_call)
    runner = model_in(run.loaded, choice.precision)
    logits, probs = (t.numpy() for t in predict_fns(runner).predict(img[None]))
    used = int(np.argmax(logits)) if run.target < 0 else run.target
    grids, shifts = rise_masks(masks, img.shape[:2], cells, keep, seed)
    fns = _rise_fns(runner, cells)
    x, cls = tf.constant(img[None], tf.float32), tf.constant(used, tf.int32)
    total = np.zeros(img.shape[:2], np.float64)
    for s in range(0, masks, per_call):
        e = min(masks, s + per_call)
        part, _ = fns.rise(x, tf.constant(grids[s:e]), tf.constant(shifts[s:e]), cls)
        total += part.numpy()
        run.progress(e, masks)
    raw = (total / (masks * keep)).astype(np.float32)
    lo = float(raw.min())
    heat = unit(raw - lo)
    notes = run.notes + fns.notes + [f"{masks} masks of {cells}x{cells} cells, seed {seed}"]
    return explained(
        Attribution, run.loaded, used, logits, probs, choice, heatmap=heat, raw=raw,
        image=img, method="", notes=notes,
    )  # fmt: skip


register(Method(
    "rise", "RISE",
    "class probability averaged over random masks, each weighting the pixels it keeps",
    "Petsiuk et al. 2018", "perturbation", _rise,
    (Param("masks", 1000, "int", 10, 20000, help="random masks (forward passes)", step=100),
     Param("cells", 7, "int", 2, 32, help="mask grid cells per side"),
     Param("keep", 0.5, "float", 0.05, 0.95, help="fraction of cells kept", step=0.05),
     Param("seed", 0, "int", 0, 2**31 - 1, help="random seed (same seed, same map)"),
     Param("batch_size", None, "int", 1, 4096, help="masked images per pass")),
    long=True,
))  # fmt: skip
