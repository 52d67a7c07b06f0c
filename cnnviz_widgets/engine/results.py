"""What the attribution methods and feature maps return: small dataclasses with the maps,
the class explained and its scores, and their overlays on the image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import CnnvizError
from .filters import Montage, to_rgba
from .images import resize

__all__ = [
    "SORTS",
    "Attribution",
    "ChannelStats",
    "FeatureMaps",
    "GradCam",
    "Occlusion",
    "Predictions",
    "Saliency",
]

SORTS = ("mean", "max", "std", "active")
"""The channel statistics feature maps can be sorted by."""


def _rgb(image: np.ndarray) -> np.ndarray:
    """A display image as 3 channels (gray repeated, alpha dropped)."""
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    return image[..., :3]


def _overlay(image, heat, cmap: str, opacity: float, weighted: bool) -> np.ndarray:
    if not 0.0 <= float(opacity) <= 1.0:
        raise CnnvizError(f"opacity is a fraction in [0, 1], got {opacity}")
    colour = to_rgba(heat, cmap)[..., :3].astype(np.float32) / 255.0
    a = float(opacity) * (np.clip(heat, 0.0, 1.0)[..., None] if weighted else 1.0)
    rgb = _rgb(image) * (1.0 - a) + colour * a
    out = np.empty((*heat.shape, 4), np.uint8)
    out[..., :3] = np.clip(np.rint(rgb * 255.0), 0, 255)
    out[..., 3] = 255
    return out


def _layer_rgba(heat, cmap: str, opacity: float, weighted: bool) -> np.ndarray:
    if not 0.0 <= float(opacity) <= 1.0:
        raise CnnvizError(f"opacity is a fraction in [0, 1], got {opacity}")
    out = to_rgba(heat, cmap).copy()
    alpha = float(opacity) * (np.clip(heat, 0.0, 1.0) if weighted else 1.0)
    out[..., 3] = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    return out


@dataclass
class Attribution:
    """Where in the image the evidence for one class is.

    Attributes:
        heatmap: ``(H, W)`` float32 in ``[0, 1]`` at the image's resolution (1 = most
            important); this is what the overlay shows.
        raw: the method's own map before normalization (see each method).
        class_index: the class explained.
        class_name: its name, when the model's class names are known.
        score: the class's score on the image (its logit when it can be read, else the
            model's output).
        probability: the class's probability on the image.
        image: the ``(H, W, C)`` float32 display image the map is for (after any resizing
            or conversion listed in ``notes``).
        method: ``"grad_cam"``, ``"grad_cam++"``, ``"saliency"``, ``"smoothgrad"`` or
            ``"occlusion"``.
        layer: the layer's path (Grad-CAM), else ``None``.
        notes: what was changed to make the input fit, and caveats.
        precision: what the model's passes ran in (``"float32"``, ``"bfloat16"`` or
            ``"float16"``); results are float32 always.  ``precision_reason`` says why.
    """

    heatmap: np.ndarray
    raw: np.ndarray
    class_index: int
    class_name: str | None
    score: float
    probability: float
    image: np.ndarray
    method: str
    layer: str | None = None
    notes: list[str] = field(default_factory=list)
    precision: str = "float32"
    precision_reason: str = ""

    @property
    def peak(self) -> tuple[int, int]:
        """``(y, x)`` of the heatmap's maximum (the first one on ties)."""
        y, x = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
        return int(y), int(x)

    def overlay(self, cmap: str = "jet", opacity: float = 0.5, *, weighted: bool = False):
        """The heatmap through a matplotlib colormap, blended over the image.

        Args:
            cmap: a matplotlib colormap name.
            opacity: the heatmap's opacity in ``[0, 1]``.
            weighted: scale the opacity by the heat, so cold regions show the image.

        Returns:
            ``(H, W, 4)`` uint8 RGBA (opaque).
        """
        return _overlay(self.image, self.heatmap, cmap, opacity, weighted)

    def colorized(self, cmap: str = "jet", opacity: float = 1.0, *, weighted: bool = False):
        """The heatmap alone as ``(H, W, 4)`` uint8 RGBA whose alpha is ``opacity`` (times
        the heat when ``weighted``): a layer to draw over the image yourself."""
        return _layer_rgba(self.heatmap, cmap, opacity, weighted)


@dataclass
class GradCam(Attribution):
    """Grad-CAM (or Grad-CAM++) on one layer.

    ``raw`` is the weighted sum of the layer's channels, ``(h, w)`` at the layer's
    resolution, *before* the ReLU (negative values: evidence against the class);
    ``heatmap`` is its ReLU, upsampled (bilinear) and divided by its maximum.

    Attributes:
        weights: ``(channels,)`` the channel weights (mean gradient for Grad-CAM; the
            alpha-weighted positive gradients for Grad-CAM++).
    """

    weights: np.ndarray | None = None


@dataclass
class Saliency(Attribution):
    """Gradient of the class score with respect to the display image.

    ``raw`` is the ``(H, W, C)`` gradient (averaged over the noisy copies for SmoothGrad);
    ``heatmap`` is the largest absolute value over channels, scaled so that its 99th
    percentile is 1 (and clipped).

    Attributes:
        samples: noisy copies averaged (0 for the vanilla gradient).
        noise: the noise's standard deviation, as a fraction of the image's value range.
    """

    samples: int = 0
    noise: float = 0.0


@dataclass
class Occlusion(Attribution):
    """Occlusion sensitivity: how much the class score drops when a patch is hidden.

    ``raw`` is the ``(rows, columns)`` grid of score drops (positive: hiding that patch
    lowers the score); ``heatmap`` is, for each pixel, the mean drop of the patches that
    covered it, ReLU'd and divided by its maximum.

    Attributes:
        patch, stride: patch side and step in pixels.
        fill: what covered the patches (``"mean"``, ``"blur"``, ...).
        scores: ``(rows, columns)`` the score with each patch hidden.
        base_score: the score of the unoccluded image (in the unit of ``score_kind``).
        score_kind: ``"logit"`` or ``"probability"``.
    """

    patch: int = 0
    stride: int = 0
    fill: str = "mean"
    scores: np.ndarray | None = None
    base_score: float = 0.0
    score_kind: str = "logit"


@dataclass
class ChannelStats:
    """Per-channel statistics of a layer's activations (arrays of ``(channels,)``).

    Attributes:
        mean, max, min, std: over the spatial positions.
        active: fraction of positions with a value > 0.
    """

    mean: np.ndarray
    max: np.ndarray
    min: np.ndarray
    std: np.ndarray
    active: np.ndarray

    def row(self, channel: int) -> dict:
        """One channel's statistics as a dict."""
        return {
            "channel": int(channel),
            "mean": float(self.mean[channel]),
            "max": float(self.max[channel]),
            "min": float(self.min[channel]),
            "std": float(self.std[channel]),
            "active": float(self.active[channel]),
        }

    def by(self, name: str) -> np.ndarray:
        """One statistic by name: ``"mean"``, ``"max"``, ``"std"`` or ``"active"``."""
        if name not in SORTS:
            raise CnnvizError(f"unknown statistic {name!r}: use one of {', '.join(SORTS)}")
        return getattr(self, name)

    @property
    def dead(self) -> np.ndarray:
        """Indices of channels that are zero everywhere on this image."""
        return np.flatnonzero((self.max == 0) & (self.min == 0))


@dataclass
class FeatureMaps:
    """A layer's activations for one image.

    Attributes:
        maps: ``(h, w, channels)`` float32, the layer's output (a Conv1D output is
            ``(1, length, channels)``, a Dense output ``(1, 1, units)``).
        layer: the layer's path.
        stats: per-channel :class:`ChannelStats` (all channels).
        montage: the selected channels tiled into one RGBA image (``montage.order`` lists
            the channel shown at each tile; ``montage.filter_at(x, y)`` finds it back).
        sort: how the tiles are ordered (``None``: channel order).
        image: the display image the maps are for.
        notes: what was changed to make the input fit.
        precision: what the model's pass ran in (``"float32"``, ``"bfloat16"`` or
            ``"float16"``); ``maps`` are float32 always.  ``precision_reason`` says why.
    """

    maps: np.ndarray
    layer: str
    stats: ChannelStats
    montage: Montage
    sort: str | None
    image: np.ndarray
    notes: list[str] = field(default_factory=list)
    precision: str = "float32"
    precision_reason: str = ""

    @property
    def order(self) -> np.ndarray:
        """The channel shown at each tile of the montage."""
        return self.montage.order

    def top(self, k: int = 8, by: str = "mean") -> np.ndarray:
        """The ``k`` channels with the largest ``by`` statistic (``mean``, ``max``, ``std``
        or ``active``)."""
        values = self.stats.by(by)
        return np.argsort(-values, kind="stable")[: int(k)]

    def channel_heatmap(self, channel: int) -> np.ndarray:
        """One channel scaled to ``[0, 1]`` (0..its max; negative values clipped) and
        upsampled to the image's size: ``(H, W)`` float32."""
        n = self.maps.shape[-1]
        if not -n <= int(channel) < n:
            raise CnnvizError(f"channel {channel} is out of range: {self.layer!r} has 0..{n - 1}")
        m = self.maps[..., int(channel)]
        top = float(m.max())
        m = np.clip(m / top, 0.0, 1.0) if top > 0 else np.zeros_like(m)
        return resize(m[..., None].astype(np.float32), self.image.shape[:2])[..., 0]

    def overlay(self, channel: int, cmap: str = "jet", opacity: float = 0.5, *, weighted=False):
        """One channel's map over the image: ``(H, W, 4)`` uint8 RGBA."""
        return _overlay(self.image, self.channel_heatmap(channel), cmap, opacity, weighted)


@dataclass
class Predictions:
    """The top-k classes for one image, most probable first.

    Attributes:
        indices: ``(k,)`` class indices.
        names: their names (``None`` entries when the model's names are unknown).
        probabilities: ``(k,)``.
        scores: ``(k,)`` logits (or the model's outputs when its logits cannot be read).
        notes: what was changed to make the input fit, and caveats.
    """

    indices: np.ndarray
    names: list[str | None]
    probabilities: np.ndarray
    scores: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        """``(index, name, probability)`` per class."""
        for i, n, p in zip(self.indices, self.names, self.probabilities):
            yield int(i), n, float(p)

    @property
    def class_index(self) -> int:
        """The most probable class."""
        return int(self.indices[0])

    @property
    def class_name(self) -> str | None:
        return self.names[0]

    def __str__(self) -> str:
        lines = [
            f"{rank:>2}. {p * 100:6.2f}%  {i:>4}  {n if n is not None else ''}".rstrip()
            for rank, (i, n, p) in enumerate(self, 1)
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])
