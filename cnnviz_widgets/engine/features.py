"""A layer's activations for one image: the maps, per-channel statistics, one montage."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..errors import CnnvizError
from .filters import Montage, select_indices, tile_images, to_rgba
from .internals import Tap
from .introspect import find_layer, tap_shape
from .models import LoadedModel, as_loaded
from .precision import model_in, resolve
from .results import ChannelStats, FeatureMaps
from .scoring import AttributionFns, Net, cached_fns, default_cam_layer, image_spec, prepare_image

__all__ = ["feature_maps"]


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
