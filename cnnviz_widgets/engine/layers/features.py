"""A layer's activations for one image: the maps, per-channel statistics, one montage."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model.images import resize
from ..model.internals import Tap
from ..model.introspect import find_layer, tap_shape
from ..model.loading import LoadedModel, as_loaded
from ..model.precision import model_in, resolve
from ..model.scoring import (
    AttributionFns,
    Net,
    cached_fns,
    default_cam_layer,
    image_spec,
    prepare_image,
)
from ..results_io import Keepable
from .filters import Montage, overlay_rgba, select_indices, tile_images, to_rgba

__all__ = ["SORTS", "ChannelStats", "FeatureMaps", "feature_maps"]

SORTS = ("mean", "max", "std", "active")
"""The channel statistics feature maps can be sorted by."""


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
class FeatureMaps(Keepable):
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
        return overlay_rgba(self.image, self.channel_heatmap(channel), cmap, opacity, weighted)


def _features_fns(loaded: LoadedModel, path: str) -> AttributionFns:
    def build():
        net = Net(loaded, [Tap(path)], scores=False)

        @tf.function(input_signature=[image_spec(loaded)], autograph=False)
        def features(image):
            acts, _, _ = net(image)
            return tf.cast(acts[0][0], tf.float32)

        return AttributionFns(net, features=features)

    return cached_fns(loaded, ("features", path), build)


_NORMS = ("channel", "layer", "symmetric")


def feature_maps(
    model,
    image,
    layer=None,
    *,
    sort: str | None = None,
    channels=None,
    normalization: str = "channel",
    cmap: str | None = None,
    tile: int | None = None,
    columns: int | None = None,
    padding: int = 1,
    precision: str = "auto",
) -> FeatureMaps:
    """A layer's activations for one image, as one montage, with per-channel statistics.

    Args:
        model, image: as for :func:`grad_cam`.
        layer: any layer (index, name, path ``"base/conv5"`` or object); default
            :func:`default_cam_layer`.
        sort: ``None`` (channel order) or a statistic, largest first: ``"mean"``,
            ``"max"``, ``"std"`` or ``"active"`` (fraction of positions > 0).
        channels: a slice or list of channel indices to show (paging; default all);
            sorting orders the selection.
        normalization: ``"channel"`` (each map to its own min..max; a constant map is
            black), ``"layer"`` (one range for the whole layer, so maps compare) or
            ``"symmetric"`` (``-m..m`` around 0, for signed activations).
        cmap: matplotlib colormap; default ``"viridis"`` (``"RdBu_r"`` for symmetric).
        tile: tile side in pixels (default: about 32 px, at least the map's own size).
        columns: tiles per row (default: a near-square grid).
        padding: pixels between tiles.
        precision: what the model's pass runs in: ``"auto"`` (default: reduced
            precision only where measured faster on this hardware), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``; the maps are float32 (with bfloat16's 8-bit
            mantissa: about 0.4 % relative error).

    Returns:
        :class:`FeatureMaps`.
    """
    loaded = as_loaded(model)
    if normalization not in _NORMS:
        raise CnnvizError(
            f"unknown normalization {normalization!r}: use one of {', '.join(_NORMS)}"
        )
    if layer is None:
        path = default_cam_layer(loaded)
    else:
        found, path = find_layer(loaded.model, layer)
        tap_shape(found, path)  # refuses a nested model or a shared layer
    img, notes = prepare_image(loaded, image)
    choice = resolve(loaded, precision, "forward", batch=1)
    fns = _features_fns(model_in(loaded, choice.precision), path)
    out = fns.features(tf.constant(img[None])).numpy()
    if out.ndim == 3:
        maps = out
    elif out.ndim == 2:
        maps = out[None]  # Conv1D: one row per channel
    elif out.ndim == 1:
        maps = out[None, None]  # Dense: one tile per unit
    else:
        raise CnnvizError(
            f"layer {path!r} outputs shape {out.shape} per image: feature maps are shown for "
            "outputs of shape (h, w, channels), (length, channels) or (units,)"
        )
    maps = maps.astype(np.float32)
    flat = maps.reshape(-1, maps.shape[-1])
    stats = ChannelStats(
        mean=flat.mean(axis=0),
        max=flat.max(axis=0),
        min=flat.min(axis=0),
        std=flat.std(axis=0),
        active=(flat > 0).mean(axis=0).astype(np.float32),
    )
    n = maps.shape[-1]
    index = select_indices(n, channels, "channels", path)
    if sort is not None:
        values = stats.by(sort)
        index = index[np.argsort(-values[index], kind="stable")]
    h, w = maps.shape[:2]
    if normalization == "channel":
        lo, hi = stats.min[index], stats.max[index]
        span = np.where(hi > lo, hi - lo, 1.0)
        sel = maps[..., index]
        scaled = np.where(hi > lo, (sel - lo) / span, 0.0)
        value_range = (float(stats.min.min()), float(stats.max.max()))
    else:
        if normalization == "layer":
            lo, hi = float(stats.min.min()), float(stats.max.max())
        else:
            m = float(np.abs(maps).max())
            lo, hi = (-m, m) if m > 0 else (-1.0, 1.0)
        scaled = (maps[..., index] - lo) / (hi - lo if hi > lo else 1.0)
        value_range = (lo, hi)
    cmap = cmap or ("RdBu_r" if normalization == "symmetric" else "viridis")
    tiles = to_rgba(np.clip(scaled, 0.0, 1.0).transpose(2, 0, 1), cmap)  # (k, h, w, 4)
    scale = max(1, int(tile) // max(h, w)) if tile else max(1, round(32 / max(h, w)))
    if scale > 1:
        tiles = tiles.repeat(scale, axis=1).repeat(scale, axis=2)
    picture, grid = tile_images(tiles, columns=columns, padding=padding)
    montage = Montage(
        image=picture,
        order=index,
        tile=(h * scale, w * scale),
        grid=grid,
        padding=padding,
        layer=path,
        value_range=value_range,
        view="activation",
        normalization=normalization,
        cmap=cmap,
    )
    return FeatureMaps(
        maps=maps,
        layer=path,
        stats=stats,
        montage=montage,
        sort=sort,
        image=img,
        notes=notes,
        precision=choice.precision,
        precision_reason=choice.reason,
    )
