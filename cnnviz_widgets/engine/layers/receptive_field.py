"""Which image pixels can change a unit: :func:`receptive_field` composes the kernels,
strides, dilations, padding and pooling on the way from the input to a unit.

Boxes are ``(top, left, bottom, right)`` with ``bottom`` and ``right`` exclusive, like a
slice: ``image[top:bottom, left:right]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from ...errors import CnnvizError
from ..model.internals import image_input, inbound_paths, iter_layers
from ..model.introspect import get_layer
from ..model.loading import as_loaded
from .geometry import CONV_LAYER_TYPES, as_int, pad_before

__all__ = ["ReceptiveField", "receptive_field"]


@dataclass(frozen=True, eq=False)
class ReceptiveField:
    """The input-image pixels that can change one unit of a layer (see
    :func:`receptive_field`).

    Attributes:
        layer: the layer's path.
        position: ``(y, x)`` in its output map.
        box: ``(top, left, bottom, right)`` in image pixels, bottom/right exclusive: the
            smallest box around ``rows`` x ``cols``; ``(0, 0, 0, 0)`` when the unit sees
            only padding.
        full_box: the window the unit spans, padding included, before any clipping:
            ``size`` is the layer's receptive field size; it may extend past the image.
        rows, cols: the image rows and columns that can reach the unit (dilation leaves
            gaps; padding positions are left out at every layer on the way).
        image_size: ``(height, width)`` of the model's input.
    """

    layer: str
    position: tuple[int, int]
    box: tuple[int, int, int, int]
    full_box: tuple[int, int, int, int]
    rows: np.ndarray
    cols: np.ndarray
    image_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` of the unclipped box: the layer's receptive field size."""
        t, left, b, r = self.full_box
        return b - t, r - left

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices of the clipped box: ``image[rf.slices]``."""
        t, left, b, r = self.box
        return slice(t, b), slice(left, r)


_WHOLE = "whole"  # every input position can matter (global pooling, flatten, ...)

_POINTWISE = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.BatchNormalization,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Rescaling,
    keras.layers.Normalization,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
    keras.layers.Identity,
    keras.layers.UnitNormalization,
)
_GLOBAL = (
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.GroupNormalization,
)


def _input_shape(layer) -> tuple:
    value = layer.input
    if isinstance(value, (list, tuple)):
        value = value[0]
    return tuple(value.shape)


def _input_hw(layer) -> tuple:
    shape = _input_shape(layer)
    return shape[1:3] if len(shape) == 4 else (None, None)


def _needs_size(path: str, layer) -> CnnvizError:
    return CnnvizError(
        f"the receptive field through {path!r} ({type(layer).__name__}) depends on the input "
        "size, and this model takes images of any size: build it with a fixed input "
        "(keras.Input(shape=(H, W, C)))"
    )


def _pad(n, k, s, d, padding, path, layer) -> int:
    """Padding before the input along one axis, as TensorFlow pads."""
    if padding != "same":
        return 0
    if s == 1:
        return ((k - 1) * d) // 2  # what pad_before gives for stride 1, whatever the size
    if n is None:
        raise _needs_size(path, layer)
    return pad_before(n, k, s, d, padding)


def _inside(index: np.ndarray, n) -> np.ndarray:
    """The indices that are real positions of an axis of size ``n`` (not padding)."""
    keep = index >= 0 if n is None else (index >= 0) & (index < n)
    return index[keep]


@dataclass(frozen=True, eq=False)
class _Field:
    """What can reach a set of output units: per axis, the exact input indices (padding
    left out) and the unclipped interval ``[lo, hi)``."""

    rows: np.ndarray
    cols: np.ndarray
    box: tuple[int, int, int, int]

    def map(self, rows, cols, box) -> _Field:
        rows, cols = np.unique(rows), np.unique(cols)
        if not (len(rows) and len(cols)):  # no real position: only padding reaches here
            rows, cols = rows[:0], cols[:0]
        return _Field(rows, cols, tuple(int(v) for v in box))


def _window(index, lo, hi, n, k, s, d, p):
    taps = np.arange(k) * d
    reached = _inside((index[:, None] * s - p + taps).ravel(), n)
    return reached, lo * s - p, (hi - 1) * s - p + (k - 1) * d + 1


def _channel_axis_only(axis) -> bool:
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    return all(a in (-1, 3) for a in axes)


def _back(path: str, layer, field):
    """What reaches the layer's input from a field of its output."""
    if field is _WHOLE:
        return _WHOLE
    rows, cols, (t, left, b, r) = field.rows, field.cols, field.box
    if isinstance(layer, CONV_LAYER_TYPES) or isinstance(
        layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
    ):
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise CnnvizError(f"layer {path!r} is channels_first: not supported")
        if isinstance(layer, CONV_LAYER_TYPES):
            k, d = tuple(layer.kernel_size), tuple(layer.dilation_rate)
        else:
            k, d = tuple(layer.pool_size), (1, 1)
        s = tuple(layer.strides)
        n = _input_hw(layer)
        p = [_pad(n[a], k[a], s[a], d[a], layer.padding, path, layer) for a in (0, 1)]
        rows, t, b = _window(rows, t, b, n[0], k[0], s[0], d[0], p[0])
        cols, left, r = _window(cols, left, r, n[1], k[1], s[1], d[1], p[1])
        return field.map(rows, cols, (t, left, b, r))
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (pt, _), (pl, _) = layer.padding
        n = _input_hw(layer)
        return field.map(
            _inside(rows - pt, n[0]), _inside(cols - pl, n[1]), (t - pt, left - pl, b - pt, r - pl)
        )
    if isinstance(layer, keras.layers.Cropping2D):
        (ct, _), (cl, _) = layer.cropping
        return field.map(rows + ct, cols + cl, (t + ct, left + cl, b + ct, r + cl))
    if isinstance(layer, keras.layers.UpSampling2D):
        sh, sw = layer.size
        box = (t // sh, left // sw, (b - 1) // sh + 1, (r - 1) // sw + 1)
        return field.map(rows // sh, cols // sw, box)
    if isinstance(layer, keras.layers.Dense):
        return field if len(_input_shape(layer)) == 4 else _WHOLE  # on (H, W, C): per position
    if isinstance(layer, keras.layers.LayerNormalization):
        return field if _channel_axis_only(layer.axis) else _WHOLE
    if isinstance(layer, _POINTWISE):
        if isinstance(layer, keras.layers.Concatenate) and not _channel_axis_only(layer.axis):
            raise CnnvizError(
                f"layer {path!r} concatenates along a spatial axis: the receptive field "
                "through it is not followed"
            )
        return field
    if isinstance(layer, _GLOBAL):
        return _WHOLE
    raise CnnvizError(
        f"cannot follow the receptive field through layer {path!r} ({type(layer).__name__}): "
        "receptive_field knows convolutions, pooling, padding, cropping, up-sampling and "
        "element-wise layers"
    )


def _union(a, b):
    if a is None:
        return b
    if a is _WHOLE or b is _WHOLE:
        return _WHOLE
    box = (
        min(a.box[0], b.box[0]),
        min(a.box[1], b.box[1]),
        max(a.box[2], b.box[2]),
        max(a.box[3], b.box[3]),
    )
    return a.map(np.concatenate([a.rows, b.rows]), np.concatenate([a.cols, b.cols]), box)


def receptive_field(model, layer, y: int, x: int) -> ReceptiveField:
    """The box of input-image pixels that can change unit ``(y, x)`` of a layer.

    Composes the kernels, strides, dilations and padding of the convolutions and pooling
    layers (and padding, cropping and up-sampling layers) between the input and the layer,
    through every branch of the graph (the union), nested models included.  Element-wise
    layers (activations, batch normalization, additions, ...) pass the box on; a global
    pooling or flatten on the way makes the whole image count.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or a ``load_model`` source.
        layer: any layer with an ``(H, W, C)`` output: name, path, index or object.
        y, x: the unit's position in that layer's output map.

    Returns:
        A :class:`ReceptiveField` (``.box`` clipped to the image, ``.full_box`` not,
        ``.size``, ``.slices``).

    Raises:
        CnnvizError: a position outside the layer's output (naming the valid ranges), a
            layer without a spatial output, a layer on the way that cannot be followed.
    """
    loaded = as_loaded(model)
    keras_model = loaded.model
    found, path = get_layer(keras_model, layer)
    if isinstance(found, keras.Model):
        raise CnnvizError(f"{path!r} is a nested model: pick one of its layers")
    try:
        shape = tuple(found.output.shape)
    except (AttributeError, ValueError, RuntimeError):
        raise CnnvizError(
            f"layer {path!r} has no single output (it is used more than once?): pick another"
        ) from None
    if len(shape) != 4:
        raise CnnvizError(
            f"layer {path!r} outputs {shape}: a receptive field is the box of one unit of an "
            "(H, W, C) map; pick a convolution or pooling layer"
        )
    y, x = as_int(y, "y"), as_int(x, "x")
    oh, ow = shape[1], shape[2]
    if y < 0 or x < 0 or (oh is not None and y >= oh) or (ow is not None and x >= ow):
        raise CnnvizError(
            f"position (y={y}, x={x}) is outside the {oh}×{ow} output of {path!r}: use y in "
            f"0..{(oh or 1) - 1} and x in 0..{(ow or 1) - 1}"
        )
    ih, iw, _ = image_input(keras_model)
    order = [p for _, p, _, lay, _ in iter_layers(keras_model) if not isinstance(lay, keras.Model)]
    where = {p: i for i, p in enumerate(order)}
    start = _Field(np.array([y]), np.array([x]), (y, x, y + 1, x + 1))
    pending: dict[str, object] = {path: start}
    result = None
    for i in range(where[path], -1, -1):
        p = order[i]
        if p not in pending:
            continue
        field = _back(p, get_layer(keras_model, p)[0], pending.pop(p))
        for q in inbound_paths(keras_model, p):
            if q == "":
                result = _union(result, field)
            elif where.get(q, len(order)) >= i:
                raise CnnvizError(
                    f"layer {q!r} feeds {p!r} but comes after it in the model's layer list: "
                    "the receptive field cannot be followed"
                )
            else:
                pending[q] = _union(pending.get(q), field)
    if result is None:
        raise CnnvizError(f"layer {path!r} is not connected to the model's input")
    if result is _WHOLE:
        if ih is None or iw is None:
            raise _needs_size(path, found)
        result = _Field(np.arange(ih), np.arange(iw), (0, 0, ih, iw))
    rows, cols = result.rows, result.cols
    if len(rows) and len(cols):
        box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    else:
        box = (0, 0, 0, 0)
    return ReceptiveField(
        layer=path,
        position=(y, x),
        box=box,
        full_box=result.box,
        rows=rows,
        cols=cols,
        image_size=(ih, iw),
    )
