"""How a convolution computes one value, and which image pixels can change a unit.

:func:`convolution_at` takes one value of a convolution layer's output for one image and
shows where it comes from: the input patch the kernel sees (padding included, as zeros),
the kernel, their element-wise products, the sum, the bias and the activation; the final
value is the layer's own output there.  The layer's input is read from the model in one
pass (nested models included); nothing in the model changes.

:func:`receptive_field` composes the kernels, strides, dilations, padding and pooling on
the way from the input to a unit: the box of input-image pixels that can change it (it
lives in :mod:`.receptive_field`; imported here too, where it always was).

Boxes are ``(top, left, bottom, right)`` with ``bottom`` and ``right`` exclusive, like a
slice: ``image[top:bottom, left:right]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..model.internals import Tap, iter_layers
from ..model.introspect import get_layer
from ..model.loading import LoadedModel, as_loaded
from ..model.scoring import AttributionFns, Net, cached_fns, image_spec, prepare_image
from .geometry import CONV_LAYER_TYPES, as_int, pad_before
from .receptive_field import ReceptiveField, receptive_field

__all__ = [
    "CONV_LAYER_TYPES",
    "ConvolutionTrace",
    "ReceptiveField",
    "conv_layer",
    "conv_layer_paths",
    "convolution_at",
    "layer_input_output",
    "receptive_field",
    "trace_from_maps",
]


# activations that mix the channels of one position (every other one is element-wise)
_ACROSS_CHANNELS = ("softmax", "log_softmax")


@dataclass(frozen=True, eq=False)
class ConvolutionTrace:
    """What made one value of a convolution's feature map (see :func:`convolution_at`).

    Attributes:
        layer: the layer's path (``"conv2"``, ``"base/block1_conv1"``).
        kind: ``"conv2d"``, ``"depthwise"`` (one input channel per output channel) or
            ``"separable"`` (``kernel`` is then the depthwise kernels times the pointwise
            weights of this channel: the one kernel the two steps amount to).
        channel: the output channel.
        position: ``(y, x)`` in the layer's output map.
        patch: ``(kh, kw, in_ch)`` float32, the input values the kernel sees (stride and
            dilation respected); ``0`` at padding positions.
        padded: ``(kh, kw)`` bool, ``True`` where the kernel lies over the padding, outside
            the input.
        kernel: ``(kh, kw, in_ch)`` float32, the weights of this output channel.
        products: ``patch * kernel``.
        total: ``products.sum()``.
        bias: the channel's bias (``0.0`` when the layer has none, see ``use_bias``).
        use_bias: whether the layer adds a bias.
        pre_activation: ``total + bias``.
        activation: the activation's name (``"relu"``, ``"linear"``, ...).
        value: the activation applied to ``pre_activation``: the feature map's value.
        model_value: the layer's own output at this position and channel, read from the
            model in the same pass as its input (equal to ``value`` up to float rounding).
        input_box: ``(top, left, bottom, right)`` of the patch in the layer's input
            coordinates, bottom/right exclusive; it extends past the edges where the
            kernel lies over padding.
        input_rows, input_cols: the input rows and columns of the patch's rows and
            columns (``-1``, ``H``... over the padding).
        input_channels: the input channels of the patch's last axis.
        input_shape: ``(H, W, C)`` of the layer's input.
        output_shape: ``(H, W, C)`` of the layer's output.
        strides, dilation: per axis ``(rows, columns)``.
        padding: ``"valid"`` or ``"same"``.
    """

    layer: str
    kind: str
    channel: int
    position: tuple[int, int]
    patch: np.ndarray
    padded: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    total: float
    bias: float
    use_bias: bool
    pre_activation: float
    activation: str
    value: float
    model_value: float
    input_box: tuple[int, int, int, int]
    input_rows: np.ndarray
    input_cols: np.ndarray
    input_channels: np.ndarray
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    strides: tuple[int, int]
    dilation: tuple[int, int]
    padding: str

    @property
    def channel_sums(self) -> np.ndarray:
        """The products summed per input channel, ``(in_ch,)``: ``total`` is their sum."""
        return self.products.sum(axis=(0, 1))

    def text(self, digits: int = 2) -> str:
        """The arithmetic as one line a student can follow, e.g.
        ``"sum 3.41 + bias −0.20 = 3.21 → relu → 3.21"``."""
        f = _number_format(digits)
        head = f"sum {f(self.total)}"
        if self.use_bias:
            head += f" + bias {f(self.bias)} = {f(self.pre_activation)}"
        else:
            head += " (no bias)"
        if self.activation == "linear":
            return head + " (no activation)"
        if self.activation in _ACROSS_CHANNELS:
            return head + f" → {self.activation} over the channels → {f(self.value)}"
        return head + f" → {self.activation} → {f(self.value)}"

    def __repr__(self) -> str:
        y, x = self.position
        kh, kw, c = self.kernel.shape
        return (
            f"ConvolutionTrace({self.layer!r}, channel={self.channel}, y={y}, x={x}, "
            f"kernel {kh}x{kw}x{c}: {self.text()})"
        )


def _number_format(digits: int):
    def fmt(value: float) -> str:
        a = abs(value)
        text = f"{value:.{digits}f}" if a == 0 or 1e-2 <= a < 1e5 else f"{value:.{digits + 1}g}"
        return text.replace("-", "−")

    return fmt


# ----------------------------------------------------------------------------- the layer
def conv_layer_paths(model) -> list[str]:
    """Paths of the layers :func:`convolution_at` explains, in model order."""
    loaded = as_loaded(model)
    return [
        path
        for _, path, _, layer, _ in iter_layers(loaded.model)
        if isinstance(layer, CONV_LAYER_TYPES)
    ]


def conv_layer(model, layer) -> tuple[keras.layers.Layer, str]:
    """``(layer, path)`` of a convolution :func:`convolution_at` explains, or a clear error."""
    loaded = as_loaded(model)
    found, path = get_layer(loaded.model, layer)
    if not isinstance(found, CONV_LAYER_TYPES):
        convs = conv_layer_paths(loaded)
        listed = ", ".join(convs[:8]) + (", ..." if len(convs) > 8 else "")
        raise CnnvizError(
            f"layer {path!r} is a {type(found).__name__}, not a convolution: convolution_at "
            "explains Conv2D, DepthwiseConv2D and SeparableConv2D layers; "
            + (f"this model's are {listed}" if convs else "this model has none")
        )
    if getattr(found, "data_format", "channels_last") != "channels_last":
        raise CnnvizError(
            f"layer {path!r} is channels_first: convolution_at reads channels-last "
            "convolutions only (Keras' default)"
        )
    return found, path


def _io_fns(loaded: LoadedModel, path: str) -> AttributionFns:
    def build():
        net = Net(loaded, [Tap(path, "input"), Tap(path, "output")], scores=False)

        @tf.function(input_signature=[image_spec(loaded)], autograph=False)
        def io(image):
            acts, _, _ = net(image)
            return tf.cast(acts[0][0], tf.float32), tf.cast(acts[1][0], tf.float32)

        return AttributionFns(net, io=io)

    return cached_fns(loaded, ("conv_io", path), build)


def layer_input_output(model, image, layer) -> tuple[np.ndarray, np.ndarray]:
    """The input and the output of a convolution layer for one image, from one pass:
    ``(input (H, W, C_in), output (H', W', C_out))`` float32.

    ``image`` is a display image as the rest of the engine takes it (the model's
    preprocessing is applied); nested models are read through."""
    loaded = as_loaded(model)
    _, path = conv_layer(loaded, layer)
    img, _ = prepare_image(loaded, image)
    inputs, outputs = _io_fns(loaded, path).io(tf.constant(img[None]))
    return inputs.numpy(), outputs.numpy()


def _channel_kernel(layer, channel: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``(kernel (kh, kw, in_ch), input channel indices, kind)`` of one output channel."""
    if isinstance(layer, keras.layers.SeparableConv2D):
        dw = np.asarray(layer.depthwise_kernel, np.float32)  # (kh, kw, cin, mult)
        pw = np.asarray(layer.pointwise_kernel, np.float32)[0, 0, :, channel]  # (cin*mult,)
        cin, mult = dw.shape[2:]
        kernel = (dw * pw.reshape(cin, mult)).sum(axis=-1)
        return kernel, np.arange(cin), "separable"
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        k = np.asarray(layer.kernel, np.float32)  # (kh, kw, cin, mult)
        i, m = divmod(channel, k.shape[3])
        return k[:, :, i : i + 1, m], np.array([i]), "depthwise"
    k = np.asarray(layer.kernel, np.float32)  # (kh, kw, cin / groups, cout)
    groups = int(getattr(layer, "groups", 1) or 1)
    per_group = k.shape[3] // groups
    group = channel // per_group
    cin_g = k.shape[2]
    return k[:, :, :, channel], np.arange(group * cin_g, (group + 1) * cin_g), "conv2d"


def _out_channels(layer) -> int:
    if isinstance(layer, keras.layers.SeparableConv2D):
        return int(layer.pointwise_kernel.shape[-1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return int(layer.kernel.shape[2] * layer.kernel.shape[3])
    return int(layer.kernel.shape[-1])


def _activation_name(layer) -> str:
    try:
        name = layer.get_config().get("activation")
    except Exception:
        name = None
    if isinstance(name, str):
        return name
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", None) or type(fn).__name__


def _pre_activation(layer, inputs, channel, y, x) -> dict:
    """Everything about one output channel at (y, x) that does not need the activation."""
    h, w, _ = inputs.shape
    kernel, channels, kind = _channel_kernel(layer, channel)
    kh, kw = kernel.shape[:2]
    (sy, sx), (dy, dx) = tuple(layer.strides), tuple(layer.dilation_rate)
    top = y * sy - pad_before(h, kh, sy, dy, layer.padding)
    left = x * sx - pad_before(w, kw, sx, dx, layer.padding)
    rows = top + dy * np.arange(kh)
    cols = left + dx * np.arange(kw)
    inside_r = (rows >= 0) & (rows < h)
    inside_c = (cols >= 0) & (cols < w)
    padded = ~(inside_r[:, None] & inside_c[None, :])
    patch = np.zeros((kh, kw, len(channels)), np.float32)
    sub = inputs[np.ix_(rows[inside_r], cols[inside_c], channels)]
    patch[np.ix_(np.flatnonzero(inside_r), np.flatnonzero(inside_c))] = sub
    products = patch * kernel
    total = float(products.astype(np.float64).sum())
    use_bias = bool(getattr(layer, "use_bias", False)) and getattr(layer, "bias", None) is not None
    bias = float(np.asarray(layer.bias)[channel]) if use_bias else 0.0
    return dict(
        kind=kind,
        patch=patch,
        padded=padded,
        kernel=kernel,
        products=products,
        total=total,
        bias=bias,
        use_bias=use_bias,
        pre_activation=total + bias,
        input_box=(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1),
        input_rows=rows,
        input_cols=cols,
        input_channels=channels,
        strides=(int(sy), int(sx)),
        dilation=(int(dy), int(dx)),
        padding=str(layer.padding),
    )


def _activate(layer, values: np.ndarray) -> np.ndarray:
    out = layer.activation(tf.constant(values[None].astype(np.float32)))
    return np.asarray(out, np.float32)[0]


def trace_from_maps(
    model, layer, inputs: np.ndarray, outputs: np.ndarray, channel: int, y: int, x: int
) -> ConvolutionTrace:
    """:func:`convolution_at` from a layer's input and output already read
    (:func:`layer_input_output`): no model pass, for many positions of one image."""
    found, path = conv_layer(model, layer)
    inputs = np.asarray(inputs, np.float32)
    outputs = np.asarray(outputs, np.float32)
    if inputs.ndim != 3 or outputs.ndim != 3:
        raise CnnvizError(
            f"the input and output of {path!r} must be (H, W, C) maps of one image, got "
            f"{inputs.shape} and {outputs.shape}"
        )
    oh, ow, oc = outputs.shape
    n = _out_channels(found)
    if oc != n:
        raise CnnvizError(f"the output given has {oc} channels, but {path!r} has {n}")
    channel = as_int(channel, "channel")
    y, x = as_int(y, "y"), as_int(x, "x")
    if not 0 <= channel < n:
        raise CnnvizError(
            f"channel {channel} is out of range: layer {path!r} has {n} output channels, so "
            f"use 0..{n - 1}"
        )
    if not (0 <= y < oh and 0 <= x < ow):
        raise CnnvizError(
            f"position (y={y}, x={x}) is outside the {oh}×{ow} output of {path!r}: use y in "
            f"0..{oh - 1} and x in 0..{ow - 1}"
        )
    parts = _pre_activation(found, inputs, channel, y, x)
    name = _activation_name(found)
    if name in _ACROSS_CHANNELS:  # the activation needs every channel's pre-activation
        every = np.array(
            [_pre_activation(found, inputs, c, y, x)["pre_activation"] for c in range(n)]
        )
        value = float(_activate(found, every)[channel])
    else:
        value = float(_activate(found, np.array([parts["pre_activation"]]))[0])
    return ConvolutionTrace(
        layer=path,
        channel=channel,
        position=(y, x),
        activation=name,
        value=value,
        model_value=float(outputs[y, x, channel]),
        input_shape=tuple(int(v) for v in inputs.shape),
        output_shape=(int(oh), int(ow), int(oc)),
        **parts,
    )


def convolution_at(model, image, layer, channel: int, y: int, x: int) -> ConvolutionTrace:
    """What made one value of a convolution layer's feature map, for one image.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or a ``load_model`` source
            (``"shapes"``).
        image: one image as the rest of the engine takes it (``(H, W, 3)`` floats in
            ``[0, 1]`` or uint8, a path, ...); the model's preprocessing is applied.
        layer: a Conv2D, DepthwiseConv2D or SeparableConv2D layer: name, path
            (``"base/conv1"``), top-level index or the layer object.
        channel: the output channel (``0..channels-1``).
        y, x: the position in the layer's output map.

    Returns:
        A :class:`ConvolutionTrace`: the patch, kernel, products, sum, bias, activation
        and value; ``trace.text()`` is the arithmetic as one line.

    Raises:
        CnnvizError: not a convolution layer, a channel or position out of range (the
            message names the valid ranges), an image that is not one.

    Example::

        t = cw.convolution_at("shapes", cw.sample_image("circle"), "conv2", 5, 10, 12)
        print(t.text())   # sum 3.41 + bias −0.20 = 3.21 → relu → 3.21
    """
    loaded = as_loaded(model)
    _, path = conv_layer(loaded, layer)
    for value, what in ((channel, "channel"), (y, "y"), (x, "x")):
        as_int(value, what)  # before the model runs
    inputs, outputs = layer_input_output(loaded, image, path)
    return trace_from_maps(loaded, path, inputs, outputs, channel, y, x)
