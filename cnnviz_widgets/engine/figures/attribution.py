"""Figures of attributions: the image, the method's own map with its colour bar, and the
heat over the image."""

from __future__ import annotations

import math

import numpy as np

from .base import new_figure, register, show

_METHODS = {
    "grad_cam": "Grad-CAM",
    "grad_cam++": "Grad-CAM++",
    "saliency": "Saliency (gradient)",
    "smoothgrad": "SmoothGrad",
    "occlusion": "Occlusion",
}


def headline(r) -> str:
    """``"Grad-CAM: cat (class 3)"``: the method and the class explained."""
    method = _METHODS.get(r.method, r.method)
    name = r.class_name if r.class_name is not None else f"class {r.class_index}"
    extra = f" at {r.layer}" if getattr(r, "layer", None) else ""
    cls = f"{name} (class {r.class_index})" if r.class_name is not None else name
    return f"{method}{extra}: {cls}"


def score_line(r) -> str:
    """``"logit 3.21, probability 0.870"``, or ``"value 0.26"`` for a head that is not a
    classifier (its probability is NaN)."""
    p = r.probability
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return f"value {r.score:.4g}"
    return f"score {r.score:.4g}, probability {p:.3f}"


def _overlay(fig, ax, r, cmap: str, opacity: float, label: str):
    show(ax, r.image, "heat over the image")
    im = ax.imshow(
        r.heatmap, cmap=cmap, alpha=opacity, vmin=0.0, vmax=1.0, interpolation="bilinear"
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)


def _base(r, size, panels: int):
    fig = new_figure(size, (3.4 * panels, 3.4))
    axes = fig.subplots(1, panels)
    fig.suptitle(f"{headline(r)}\n{score_line(r)}", fontsize=10)
    show(axes[0], r.image, "image")
    return fig, axes


@register("Attribution")
def attribution_figure(r, *, size=None, cmap: str = "jet", opacity: float = 0.5):
    """The image and the heatmap over it, with a colour bar of the normalized importance.

    Args:
        size: ``(width, height)`` in inches.
        cmap: the heatmap's matplotlib colormap.
        opacity: the heat's opacity over the image.
    """
    fig, axes = _base(r, size, 2)
    _overlay(fig, axes[1], r, cmap, opacity, "importance (normalized)")
    return fig


@register("GradCam")
def grad_cam_figure(r, *, size=None, cmap: str = "jet", opacity: float = 0.5):
    """Image | the class-weighted sum of the layer's channels at the layer's resolution
    (before the ReLU: blue is evidence against the class) | the ReLU'd, upsampled map
    over the image.  Options as for :func:`attribution_figure`."""
    fig, axes = _base(r, size, 3)
    raw = np.asarray(r.raw, np.float32)
    top = float(np.abs(raw).max()) or 1.0
    h, w = raw.shape[:2]
    im = axes[1].imshow(raw, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
    axes[1].set_title(f"weighted channels ({h}x{w})", fontsize=9)
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.colorbar(im, ax=axes[1], shrink=0.8, label="evidence (before ReLU)")
    _overlay(fig, axes[2], r, cmap, opacity, "Grad-CAM (ReLU, / max)")
    return fig


@register("Saliency")
def saliency_figure(r, *, size=None, cmap: str = "jet", opacity: float = 0.5):
    """Image | the gradient's magnitude (largest over colours, / its 99th percentile) |
    that map over the image.  Options as for :func:`attribution_figure`."""
    fig, axes = _base(r, size, 3)
    im = show(axes[1], r.heatmap, "|gradient|", cmap="magma", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=axes[1], shrink=0.8, label="|gradient| / 99th percentile")
    if r.samples:
        axes[1].set_title(
            f"|gradient|, mean of {r.samples} noisy copies (noise {r.noise:g})", fontsize=9
        )
    _overlay(fig, axes[2], r, cmap, opacity, "importance (normalized)")
    return fig


@register("Occlusion")
def occlusion_figure(r, *, size=None, cmap: str = "jet", opacity: float = 0.5):
    """Image | the score drop when each patch is hidden (red: hiding it lowers the
    score) | the drop per pixel over the image.  Options as for
    :func:`attribution_figure`."""
    fig, axes = _base(r, size, 3)
    raw = np.asarray(r.raw, np.float32)
    top = float(np.abs(raw).max()) or 1.0
    im = axes[1].imshow(raw, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
    axes[1].set_title(f"{r.patch} px patches, stride {r.stride}, fill {r.fill}", fontsize=9)
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.colorbar(im, ax=axes[1], shrink=0.8, label=f"{r.score_kind} drop")
    _overlay(fig, axes[2], r, cmap, opacity, "mean drop (ReLU, / max)")
    return fig


@register("Predictions")
def predictions_figure(r, *, size=None):
    """A horizontal bar chart of the top-k probabilities."""
    fig = new_figure(size, (5.0, 0.45 * len(r) + 1.2))
    ax = fig.subplots()
    names = [n if n is not None else f"class {i}" for i, n, _ in r]
    ax.barh(range(len(r)), r.probabilities, color="tab:blue")
    ax.set_yticks(range(len(r)), names)
    ax.invert_yaxis()
    for y, p in enumerate(r.probabilities):
        ax.text(min(float(p), 0.8) + 0.01, y, f"{p:.3f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    ax.set_title(f"top {len(r)} classes", fontsize=10)
    return fig


@register("Attributions")
def attributions_figure(
    r,
    *,
    images=None,
    columns: int | None = None,
    size=None,
    cmap: str = "jet",
    opacity: float = 0.5,
):
    """Many images' heat over them, in a labelled grid with one colour bar: each titled
    with the class explained and its probability (or value), and its label when known.

    Args:
        images: the image numbers to draw (default the first 16).
        columns: grid columns (default about square).
        size: ``(width, height)`` in inches.
        cmap, opacity: the heat's colormap and opacity.
    """
    from ...errors import CnnvizError

    chosen = list(range(min(16, len(r)))) if images is None else [int(i) for i in images]
    if not chosen or any(not 0 <= i < len(r) for i in chosen):
        raise CnnvizError(f"images are numbers in 0..{len(r) - 1}, got {images!r}")
    cols = int(columns) if columns else max(1, math.ceil(math.sqrt(len(chosen))))
    rows = math.ceil(len(chosen) / cols)
    fig = new_figure(size, (1.9 * cols + 1.0, 2.1 * rows + 0.5))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False)).ravel()
    im = None
    for ax, i in zip(axes, chosen):
        one = r[i]
        name = one.class_name if one.class_name is not None else f"class {one.class_index}"
        p = one.probability
        what = f"value {one.score:.3g}" if math.isnan(p) else f"p={p:.2f}"
        label = ""
        if r.labels[i] >= 0:
            label = f" [label {r.labels[i]}]"
        show(ax, one.image, f"#{i}: {name}\n{what}{label}")
        ax.title.set_fontsize(7)
        im = ax.imshow(
            one.heatmap, cmap=cmap, alpha=opacity, vmin=0, vmax=1, interpolation="bilinear"
        )
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    fig.colorbar(im, ax=list(axes), shrink=0.6, label="importance (normalized)")
    method = _METHODS.get(r.method, r.method)
    where = f" at {r.layer}" if r.layer else ""
    fig.suptitle(f"{method}{where}: {len(chosen)} of {len(r)} images", fontsize=10)
    return fig
