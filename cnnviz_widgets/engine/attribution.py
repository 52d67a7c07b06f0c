"""How the network sees one image: feature maps, saliency, Grad-CAM, occlusion, top-k.

Every method takes an image in *display space* (RGB floats in ``[0, 1]`` or uint8, any
size: see :mod:`.imageio`), applies the model's own preprocessing inside a compiled
``tf.function`` and returns a small dataclass.  The compiled functions are cached per
Keras model (weakly, so a model that goes away takes its functions with it) and per
layer; the image, the class index, the noise level and the occlusion patches are tensor
arguments with fixed signatures, so a new image or a new class never retraces.

Reading inner tensors never changes the model: top-level layers are read with
:func:`.taps.extractor`; for a layer inside a nested model (a pretrained base inside a
Sequential) the model's graph is run once with the nested model replaced by an extractor
of its own graph, so the inner activation and the class score come from *one*
computation and the gradient between them exists.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from ..errors import CnnvizError
from .filters import Montage, tile_images, to_rgba
from .imageio import as_image, fit_image
from .images import resize
from .introspect import get_layer, iter_layers
from .models import LoadedModel, as_loaded, resolve_class
from .taps import Tap, extractor, logit_source

__all__ = [
    "Attribution",
    "ChannelStats",
    "FeatureMaps",
    "GradCam",
    "Occlusion",
    "Predictions",
    "Saliency",
    "default_cam_layer",
    "feature_maps",
    "grad_cam",
    "occlusion",
    "predict_top",
    "saliency",
    "spatial_layers",
]


# ------------------------------------------------------------------------------ results
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
    """

    maps: np.ndarray
    layer: str
    stats: ChannelStats
    montage: Montage
    sort: str | None
    image: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def order(self) -> np.ndarray:
        """The channel shown at each tile of the montage."""
        return self.montage.order

    def top(self, k: int = 8, by: str = "mean") -> np.ndarray:
        """The ``k`` channels with the largest ``by`` statistic (``mean``, ``max``, ``std``
        or ``active``)."""
        values = _stat(self.stats, by)
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


# ------------------------------------------------------------------------- model checks
def _input_hwc(loaded: LoadedModel) -> tuple[int | None, int | None, int]:
    model = loaded.model
    if len(model.inputs) != 1:
        raise CnnvizError(
            f"the model {model.name!r} has {len(model.inputs)} inputs; these methods need one "
            "image input. Build a keras.Model from the image input with the others fixed"
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise CnnvizError(
            f"the model's input has shape {shape}, which is not an image: expected (batch, "
            "height, width, channels)"
        )
    h, w, c = shape[1:]
    if c is None or c > 4:
        raise CnnvizError(
            f"the model's input has shape {shape}: expected channels last, (batch, height, "
            "width, channels) with 1, 3 or 4 channels. A channels_first model is not supported"
        )
    return h, w, int(c)


def _prepare(loaded: LoadedModel, image) -> tuple[np.ndarray, list[str]]:
    """The display image fitted to the model, and the notes about what changed."""
    h, w, c = _input_hwc(loaded)
    arr, notes = as_image(image)
    return fit_image(arr, h, w, c, notes=notes)


def _final_activation(model) -> str | None:
    layer = model.layers[-1]
    while isinstance(layer, keras.Model):
        layer = layer.layers[-1]
    try:
        act = layer.get_config().get("activation")
    except Exception:
        return None
    return act if isinstance(act, str) else None


def _class_count(loaded: LoadedModel) -> int:
    model = loaded.model
    if len(model.outputs) != 1:
        raise CnnvizError(
            f"the model has {len(model.outputs)} outputs; class explanations need one output "
            "of class scores. Build a keras.Model with the output you want explained"
        )
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2 or shape[-1] is None:
        raise CnnvizError(
            f"the model's output has shape {shape}; class explanations need (batch, classes). "
            "For a model that outputs maps or sequences, explain a model cut at a class layer"
        )
    return int(shape[-1])


def _resolve_class(loaded: LoadedModel, target, n: int) -> int:
    """``target`` (index, name or ``None``) as an index; ``-1`` means "the predicted one"."""
    if target is None:
        return -1
    return resolve_class(target, n, loaded.class_names)


# -------------------------------------------------------------------- spatial layers
_NOT_CAM = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
    keras.layers.Reshape,
    keras.layers.InputLayer,
    keras.layers.Rescaling,
    keras.layers.Normalization,
)


def _output_shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(out, (list, tuple)):
        return tuple(out[0].shape) if len(out) == 1 else None
    return tuple(out.shape)


def _is_spatial(shape) -> bool:
    if shape is None or len(shape) != 4:
        return False
    h, w = shape[1], shape[2]
    return h is None or w is None or h * w > 1


def spatial_layers(model) -> list[str]:
    """Paths of the layers Grad-CAM can use: 4-D outputs ``(batch, h, w, channels)`` with
    more than one position, in model order, inside nested models too (pooling, dropout,
    padding and reshape layers left out)."""
    loaded = as_loaded(model)
    return [
        path
        for _, path, _, layer, _ in iter_layers(loaded.model)
        if not isinstance(layer, (keras.Model, *_NOT_CAM)) and _is_spatial(_output_shape(layer))
    ]


def default_cam_layer(model) -> str:
    """The layer Grad-CAM uses by default: the last of :func:`spatial_layers` (VGG16:
    ``block5_conv3``; ResNet50: ``conv5_block3_out``; Xception: ``block14_sepconv2_act``),
    looking inside nested models."""
    layers = spatial_layers(model)
    if not layers:
        raise CnnvizError(
            "the model has no layer with a spatial output (batch, h, w, channels): Grad-CAM "
            "needs a convolutional model"
        )
    return layers[-1]


def _cam_layer(loaded: LoadedModel, layer) -> str:
    if layer is None:
        return default_cam_layer(loaded)
    found, path = get_layer(loaded.model, layer)
    shape = _output_shape(found)
    if isinstance(found, keras.Model) or not _is_spatial(shape):
        options = spatial_layers(loaded)
        shown = ", ".join(options[-8:]) if options else "none in this model"
        raise CnnvizError(
            f"Grad-CAM needs a layer with a spatial output (batch, h, w, channels); {path!r} "
            f"({type(found).__name__}) outputs {shape}. Use a convolutional layer: "
            f"{shown} (default: the last one)"
        )
    return path


# ------------------------------------------------------------------ reading the model
def _called_once(layer) -> bool:
    """The layer has one call in any graph, so ``layer.output`` is unambiguous."""
    return len(getattr(layer, "_inbound_nodes", ())) <= 1


def _runner(model: keras.Model, taps: list[Tap], with_outputs: bool):
    """``fn(x) -> (tap values, outputs or None)``, all from one computation.

    Top-level taps: one extractor.  Taps inside nested models (or on layers that are
    shared with another model, whose ``.output`` may belong to the other graph): the
    model's own graph is run with each such nested model replaced by a runner of its own
    graph (recursively) and the tapped layers' calls recorded, so the inner tensors and
    everything downstream share one computation.  Layers are called on tensors only
    (never on symbolic inputs), so the model gets no new nodes.
    """
    parts = [t.path.split("/") for t in taps]
    if all(len(p) == 1 and _called_once(model.get_layer(p[0])) for p in parts):
        ext = extractor(model, taps, with_outputs=with_outputs)
        n = len(taps)

        def run_flat(x):
            outs = ext(x, training=False)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            return outs[:n], (outs[n:] if with_outputs else None)

        return run_flat

    graph = getattr(model, "_functional", None) or model
    graph_ref = weakref.ref(graph)  # the caches must not keep the model alive
    if not hasattr(graph, "_run_through_graph"):
        raise CnnvizError(
            f"cannot read inside {model.name!r} ({type(model).__name__}): only Functional and "
            "Sequential models can be looked into; pick a layer of the outer model"
        )
    top: dict[str, list[int]] = {}
    nested: dict[str, list[int]] = {}
    for i, p in enumerate(parts):
        (top if len(p) == 1 else nested).setdefault(p[0], []).append(i)
    layers = {name: model.get_layer(name) for name in (*top, *nested)}
    inner = {
        name: _runner(layers[name], [Tap("/".join(parts[i][1:]), taps[i].kind) for i in idx], True)
        for name, idx in nested.items()
    }

    def run_graph(x):
        values: list = [None] * len(taps)

        def operation_fn(op):
            name = getattr(op, "name", None)
            if name in inner and op is layers[name]:

                def call_nested(*args, **kwargs):
                    got, outs = inner[name](args[0])
                    for i, v in zip(nested[name], got):
                        values[i] = v
                    return outs[0] if len(outs) == 1 else outs

                return call_nested
            if name in top and op is layers[name]:

                def call_tapped(*args, **kwargs):
                    out = op(*args, **kwargs)
                    for i in top[name]:
                        values[i] = out if taps[i].kind == "output" else args[0]
                    return out

                return call_tapped
            return op

        outs = graph_ref()._run_through_graph(x, operation_fn=operation_fn)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        return values, (outs if with_outputs else None)

    return run_graph


class _Net:
    """Display images -> (tapped activations, class scores, probabilities), one pass.

    Holds no reference to the model object itself (the caches are keyed weakly by it).
    """

    def __init__(self, loaded: LoadedModel, taps: list[Tap], scores: bool = True):
        model = loaded.model
        self.prep = loaded.preprocessing
        self.n_taps = len(taps)
        self.scores = scores
        self.src = None
        self.dense = None
        self.prob = "softmax"
        self.notes: list[str] = []
        all_taps = list(taps)
        with_outputs = False
        if scores:
            _class_count(loaded)
            try:
                self.src = logit_source(loaded)
            except CnnvizError:
                self.src = None
            if self.src is not None:
                all_taps.append(self.src.tap)
                if self.src.dense_path:
                    self.dense = get_layer(model, self.src.dense_path)[0]
                if loaded.softmax is None:
                    if _final_activation(model) == "sigmoid":
                        self.prob = "output"
                        self.notes.append(
                            "the model ends in a sigmoid: scores and probabilities are its "
                            "outputs (one per class, not summing to 1)"
                        )
                    else:
                        self.notes.append(
                            "the model's output has no softmax: scores are its outputs and "
                            "probabilities are their softmax"
                        )
            else:
                with_outputs = True
                self.prob = "output"
                self.notes.append(
                    "the logits cannot be read without changing the model: scores are the "
                    "output probabilities"
                )
        self.run = _runner(model, all_taps, with_outputs)

    def __call__(self, images):
        x = self.prep(images)
        values, outs = self.run(x)
        acts = values[: self.n_taps]
        if not self.scores:
            return acts, None, None
        if self.src is not None:
            logits = self.src.logits(values[-1], self.dense)
        else:
            logits = outs[0]
        logits = tf.cast(logits, tf.float32)
        probs = tf.nn.softmax(logits, axis=-1) if self.prob == "softmax" else logits
        return acts, logits, probs


# --------------------------------------------------------------- compiled functions
_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cached(loaded: LoadedModel, key: tuple, build):
    per_model = _FNS.setdefault(loaded.model, {})
    full = (*key, loaded.preprocessing.name, loaded.softmax)
    if full not in per_model:
        per_model[full] = build()
    return per_model[full]


def tracing_count(model) -> int:
    """How many times the compiled functions of ``model`` were traced (for checks)."""
    model = model.model if isinstance(model, LoadedModel) else model
    return sum(
        f.experimental_get_tracing_count()
        for entry in _FNS.get(model, {}).values()
        for f in entry.functions()
    )


class _Compiled:
    def __init__(self, net: _Net, **fns):
        self.net = net
        self.notes = net.notes
        self.fns = fns
        for name, f in fns.items():
            setattr(self, name, f)
            # Each function has a fixed signature and traces once; TensorFlow counts the
            # traces of all closures of one Python function together (one per model and
            # layer here) and would warn about "retracing" after a few models or layers.
            if hasattr(f, "_omit_frequent_tracing_warning"):
                f._omit_frequent_tracing_warning = True

    def functions(self):
        return list(self.fns.values())


def _image_spec(loaded: LoadedModel) -> tf.TensorSpec:
    h, w, c = _input_hwc(loaded)
    return tf.TensorSpec((1, h, w, c), tf.float32)


_INT = tf.TensorSpec((), tf.int32)
_FLOAT = tf.TensorSpec((), tf.float32)


def _pick(logits, class_index):
    """The class to explain: ``class_index``, or the prediction when it is negative."""
    pred = tf.argmax(logits[0], output_type=tf.int32)
    return tf.where(class_index < 0, pred, class_index)


def _predict_fns(loaded: LoadedModel) -> _Compiled:
    def build():
        net = _Net(loaded, [])

        @tf.function(input_signature=[_image_spec(loaded)], autograph=False)
        def predict(image):
            _, logits, probs = net(image)
            return logits[0], probs[0]

        return _Compiled(net, predict=predict)

    return _cached(loaded, ("predict",), build)


def _gradcam_fns(loaded: LoadedModel, path: str) -> _Compiled:
    def build():
        net = _Net(loaded, [Tap(path)])

        @tf.function(input_signature=[_image_spec(loaded), _INT], autograph=False)
        def cam(image, class_index):
            with tf.GradientTape() as tape:
                acts, logits, probs = net(image)
                a = acts[0]
                c = _pick(logits, class_index)
                score = tf.gather(logits[0], c)
            g = tape.gradient(score, a)
            if g is None:
                raise CnnvizError(
                    f"the class scores do not depend on layer {path!r} (no gradient path): "
                    "pick a layer that leads to the output"
                )
            a = tf.cast(a[0], tf.float32)
            g = tf.cast(g[0], tf.float32)
            weights = tf.reduce_mean(g, axis=(0, 1))
            raw = tf.reduce_sum(a * weights, axis=-1)
            # Grad-CAM++ (Chattopadhay et al. 2018) with the score's exponential: its 2nd
            # and 3rd derivatives are powers of the gradient, and exp(S) cancels in alpha.
            g2 = tf.square(g)
            g3 = g2 * g
            denom = 2.0 * g2 + tf.reduce_sum(a, axis=(0, 1)) * g3
            alpha = tf.math.divide_no_nan(g2, denom)
            weights_pp = tf.reduce_sum(alpha * tf.nn.relu(g), axis=(0, 1))
            raw_pp = tf.reduce_sum(a * weights_pp, axis=-1)
            both = tf.nn.relu(tf.stack([raw, raw_pp], axis=-1))[None]
            up = tf.image.resize(both, tf.shape(image)[1:3], method="bilinear")[0]
            return raw, raw_pp, weights, weights_pp, up, logits[0], probs[0], c

        return _Compiled(net, cam=cam)

    return _cached(loaded, ("grad_cam", path), build)


def _saliency_fns(loaded: LoadedModel) -> _Compiled:
    def build():
        net = _Net(loaded, [])
        spec = _image_spec(loaded)
        noise_spec = tf.TensorSpec((None, *spec.shape[1:]), tf.float32)

        @tf.function(input_signature=[spec, _INT, noise_spec, _FLOAT], autograph=False)
        def grads(image, class_index, noise, clean_weight):
            """The gradient of the clean image (weight ``clean_weight``) plus those of
            ``image + noise[i]`` (weight 1 each), summed; the logits, probabilities and
            class of the clean image."""
            xs = tf.concat([image, image + noise], axis=0)
            with tf.GradientTape() as tape:
                tape.watch(xs)
                _, logits, probs = net(xs)
                c = _pick(logits, class_index)
                total = tf.reduce_sum(tf.gather(logits, c, axis=1))
            g = tf.cast(tape.gradient(total, xs), tf.float32)
            w = tf.concat([[clean_weight], tf.ones(tf.shape(noise)[:1], tf.float32)], axis=0)
            return tf.reduce_sum(w[:, None, None, None] * g, axis=0), logits[0], probs[0], c

        return _Compiled(net, grads=grads)

    return _cached(loaded, ("saliency",), build)


def _occlusion_fns(loaded: LoadedModel) -> _Compiled:
    def build():
        net = _Net(loaded, [])
        spec = _image_spec(loaded)
        pos = tf.TensorSpec((None,), tf.int32)

        @tf.function(input_signature=[spec, spec, pos, pos, pos, pos, _INT], autograph=False)
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

        return _Compiled(net, occlude=occlude)

    return _cached(loaded, ("occlusion",), build)


def _features_fns(loaded: LoadedModel, path: str) -> _Compiled:
    def build():
        net = _Net(loaded, [Tap(path)], scores=False)

        @tf.function(input_signature=[_image_spec(loaded)], autograph=False)
        def features(image):
            acts, _, _ = net(image)
            return tf.cast(acts[0][0], tf.float32)

        return _Compiled(net, features=features)

    return _cached(loaded, ("features", path), build)


# ------------------------------------------------------------------------ the methods
def _name(loaded: LoadedModel, index: int) -> str | None:
    names = loaded.class_names
    return names[index] if names and 0 <= index < len(names) else None


def _unit(x: np.ndarray) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return (x / top).astype(np.float32) if top > 0 else np.zeros_like(x, np.float32)


def predict_top(model, image, k: int = 5) -> Predictions:
    """The ``k`` most probable classes for one image.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: RGB in ``[0, 1]`` or uint8, ``(H, W, 3)`` (any size: resized, with a note),
            gray, a PIL image, a path or the bytes of an image file.
        k: how many classes (at most the number of classes).

    Returns:
        :class:`Predictions`; ``str()`` gives a small table.
    """
    loaded = as_loaded(model)
    n = _class_count(loaded)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CnnvizError(f"k is a number of classes >= 1, got {k!r}")
    img, notes = _prepare(loaded, image)
    fns = _predict_fns(loaded)
    logits, probs = fns.predict(tf.constant(img[None]))
    logits, probs = logits.numpy(), probs.numpy()
    order = np.argsort(-probs, kind="stable")[: min(int(k), n)]
    return Predictions(
        indices=order,
        names=[_name(loaded, int(i)) for i in order],
        probabilities=probs[order].astype(np.float32),
        scores=logits[order].astype(np.float32),
        notes=notes + fns.notes,
    )


def grad_cam(model, image, target=None, *, layer=None, plus_plus: bool = False) -> GradCam:
    """Grad-CAM (Selvaraju et al. 2017) or Grad-CAM++: which regions of a conv layer's
    output raise the class score.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        image: RGB in ``[0, 1]`` or uint8 (see :func:`predict_top`).
        target: class index or name; ``None``: the predicted class.
        layer: a layer with a spatial output (index, name, path ``"base/conv5"`` or
            object); default :func:`default_cam_layer`, the last one, also inside nested
            models.
        plus_plus: Grad-CAM++ weights instead of mean gradients.

    Returns:
        :class:`GradCam`.  The score differentiated is the class logit (read before the
        softmax without changing the model).  Grad-CAM and Grad-CAM++ come from the same
        compiled function (one forward and one backward pass).
    """
    loaded = as_loaded(model)
    n = _class_count(loaded)
    c = _resolve_class(loaded, target, n)
    path = _cam_layer(loaded, layer)
    img, notes = _prepare(loaded, image)
    fns = _gradcam_fns(loaded, path)
    raw, raw_pp, w, w_pp, up, logits, probs, used = fns.cam(
        tf.constant(img[None]), tf.constant(c, tf.int32)
    )
    k = 1 if plus_plus else 0
    raw_map = (raw_pp if plus_plus else raw).numpy()
    heat = _unit(up.numpy()[..., k])
    used = int(used)
    notes = notes + fns.notes
    if not heat.any():
        notes.append(
            f"no positive evidence for class {used} at {path!r}: the map is all zero (the "
            "weighted channels are negative everywhere)"
        )
    return GradCam(
        heatmap=heat,
        raw=raw_map.astype(np.float32),
        class_index=used,
        class_name=_name(loaded, used),
        score=float(logits.numpy()[used]),
        probability=float(probs.numpy()[used]),
        image=img,
        method="grad_cam++" if plus_plus else "grad_cam",
        layer=path,
        notes=notes,
        weights=(w_pp if plus_plus else w).numpy().astype(np.float32),
    )


def _batch_for(img: np.ndarray, limit: int = 128) -> int:
    """Images per forward batch: about 2^19 pixels (224 px: 10; 64 px: 128)."""
    return int(max(1, min(limit, (1 << 19) // max(1, img.shape[0] * img.shape[1]))))


def saliency(
    model,
    image,
    target=None,
    *,
    smooth: int = 0,
    noise: float = 0.15,
    seed: int = 0,
    batch_size: int | None = None,
) -> Saliency:
    """Vanilla-gradient saliency (Simonyan et al. 2014) or SmoothGrad (Smilkov et al. 2017).

    The gradient of the class logit with respect to the display image (through the model's
    preprocessing).

    Args:
        model, image, target: as for :func:`grad_cam`.
        smooth: 0 for the plain gradient; ``n`` > 0 averages the gradients of ``n`` copies
            of the image with Gaussian noise (SmoothGrad; 25 to 50 is usual).
        noise: the noise's standard deviation as a fraction of the image's value range.
        seed: the noise seed (same seed, same map, whatever the batch size).
        batch_size: noisy copies per compiled call (default: by image size, at most 16).

    Returns:
        :class:`Saliency`.
    """
    loaded = as_loaded(model)
    n_classes = _class_count(loaded)
    c = _resolve_class(loaded, target, n_classes)
    smooth = int(smooth)
    if smooth < 0:
        raise CnnvizError(f"smooth is a number of noisy samples >= 0, got {smooth}")
    if not 0.0 <= float(noise) <= 2.0:
        raise CnnvizError(
            f"noise is a fraction of the value range (0.1 to 0.2 is usual), got {noise}"
        )
    img, notes = _prepare(loaded, image)
    fns = _saliency_fns(loaded)
    x = tf.constant(img[None])
    if smooth == 0:
        none = tf.zeros((0, *img.shape), tf.float32)
        g, logits, probs, used = fns.grads(x, tf.constant(c, tf.int32), none, tf.constant(1.0))
        grad = g.numpy()
    else:
        sigma = float(noise) * max(float(img.max() - img.min()), 1e-3)
        rng = np.random.default_rng(seed)  # one stream: the batch size changes nothing
        per_call = int(batch_size) if batch_size else _batch_for(img, 16)
        if per_call < 1:
            raise CnnvizError(f"batch_size must be >= 1, got {batch_size}")
        grad = np.zeros(img.shape, np.float32)
        cls = c
        done = 0
        while done < smooth:
            m = min(per_call, smooth - done)
            eps = (rng.standard_normal((m, *img.shape)) * sigma).astype(np.float32)
            g, lg, pr, u = fns.grads(x, tf.constant(cls, tf.int32), eps, tf.constant(0.0))
            if done == 0:
                used, logits, probs = u, lg, pr
                cls = int(u)  # the predicted class, fixed for the other batches
            grad += g.numpy()
            done += m
        grad /= smooth
    used = int(used)
    mag = np.abs(grad).max(axis=-1)
    top = float(np.percentile(mag, 99.0))
    heat = np.clip(mag / top, 0.0, 1.0).astype(np.float32) if top > 0 else _unit(mag)
    return Saliency(
        heatmap=heat,
        raw=grad.astype(np.float32),
        class_index=used,
        class_name=_name(loaded, used),
        score=float(logits.numpy()[used]),
        probability=float(probs.numpy()[used]),
        image=img,
        method="smoothgrad" if smooth else "saliency",
        notes=notes + fns.notes,
        samples=smooth,
        noise=float(noise) if smooth else 0.0,
    )


FILLS = ("mean", "blur", "black", "gray", "white")


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (separable, reflected edges) of an (H, W, C) image."""
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    k /= k.sum()
    out = img
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        p = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        out = sum(
            k[i] * np.take(p, np.arange(i, i + out.shape[axis]), axis=axis) for i in range(len(k))
        )
    return out.astype(np.float32)


def _fill_image(img: np.ndarray, fill, patch: int) -> tuple[np.ndarray, str]:
    if isinstance(fill, str):
        if fill == "mean":
            return np.broadcast_to(img.mean(axis=(0, 1)), img.shape).copy(), fill
        if fill == "blur":
            return _blur(img, max(1.0, patch / 2.0)), fill
        if fill in ("black", "gray", "white"):
            value = {"black": 0.0, "gray": 0.5, "white": 1.0}[fill]
            return np.full(img.shape, value, np.float32), fill
        raise CnnvizError(
            f"unknown fill {fill!r}: use one of {', '.join(FILLS)}, a value in [0, 1] or "
            "one value per channel"
        )
    value = np.asarray(fill, np.float32)
    if value.ndim == 0 or value.shape == (img.shape[-1],):
        return np.broadcast_to(value, img.shape).copy(), str(np.round(value, 3).tolist())
    raise CnnvizError(
        f"fill {fill!r}: give a name ({', '.join(FILLS)}), one value, or {img.shape[-1]} values"
    )


def _boxes(size: int, patch: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Patch starts and ends along one axis: centres every ``stride`` pixels from
    ``stride / 2``, so every pixel is covered alike; patches clipped at the border."""
    count = math.ceil(size / stride)
    start = np.arange(count) * stride + (stride - patch) // 2
    return np.clip(start, 0, size), np.clip(start + patch, 0, size)


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
) -> Occlusion:
    """Occlusion sensitivity (Zeiler and Fergus 2014): hide one patch at a time and
    measure how much the class score drops.  All patches go through the model in batches
    of one compiled function.

    Args:
        model, image, target: as for :func:`grad_cam`.
        patch: patch side in pixels (default: an eighth of the image's smaller side, so 8
            px on the 64 px embedded model and 28 px on 224 px models).
        stride: step between patch centres (default ``patch // 2``); the grid has
            ``ceil(H / stride) x ceil(W / stride)`` positions.
        fill: what hides a patch: ``"mean"`` (the image's mean colour; default), ``"blur"``
            (the image blurred), ``"black"``, ``"gray"``, ``"white"``, a value or one
            value per channel (display space, [0, 1]).
        score: ``"logit"`` (default: drops stay comparable for confident classes) or
            ``"probability"``.
        batch_size: occluded images per forward pass (default: by image size).

    Returns:
        :class:`Occlusion`.
    """
    loaded = as_loaded(model)
    n_classes = _class_count(loaded)
    c = _resolve_class(loaded, target, n_classes)
    if score not in ("logit", "probability"):
        raise CnnvizError(f"score must be 'logit' or 'probability', got {score!r}")
    img, notes = _prepare(loaded, image)
    h, w = img.shape[:2]
    if patch is None:
        patch = max(2, round(min(h, w) / 8))
    patch = int(patch)
    if not 1 <= patch <= max(h, w):
        raise CnnvizError(f"patch must be 1..{max(h, w)} pixels for a {h}x{w} image, got {patch}")
    stride = max(1, patch // 2) if stride is None else int(stride)
    if stride < 1:
        raise CnnvizError(f"stride must be >= 1 pixel, got {stride}")
    if stride > patch:
        notes.append(f"stride {stride} > patch {patch}: some pixels are never hidden (heat 0)")
    fill_img, fill_name = _fill_image(img, fill, patch)
    ys0, ys1 = _boxes(h, patch, stride)
    xs0, xs1 = _boxes(w, patch, stride)
    rows, cols = len(ys0), len(xs0)
    # every (row, column) box, row-major
    y0 = np.repeat(ys0, cols).astype(np.int32)
    y1 = np.repeat(ys1, cols).astype(np.int32)
    x0 = np.tile(xs0, rows).astype(np.int32)
    x1 = np.tile(xs1, rows).astype(np.int32)

    pred = _predict_fns(loaded)
    logits, probs = (t.numpy() for t in pred.predict(tf.constant(img[None])))
    used = int(np.argmax(logits)) if c < 0 else c
    fns = _occlusion_fns(loaded)
    x = tf.constant(img[None])
    f = tf.constant(fill_img[None].astype(np.float32))
    cls = tf.constant(used, tf.int32)
    per_call = int(batch_size) if batch_size else _batch_for(img)
    out = np.empty(len(y0), np.float32)
    for s in range(0, len(y0), per_call):
        e = min(s + per_call, len(y0))
        lg, pr = fns.occlude(x, f, y0[s:e], y1[s:e], x0[s:e], x1[s:e], cls)
        out[s:e] = (lg if score == "logit" else pr).numpy()
    base = float(logits[used] if score == "logit" else probs[used])
    scores = out.reshape(rows, cols)
    drops = base - scores
    # each pixel: the mean drop over the patches that covered it
    ry = (np.arange(h)[None, :] >= ys0[:, None]) & (np.arange(h)[None, :] < ys1[:, None])
    rx = (np.arange(w)[None, :] >= xs0[:, None]) & (np.arange(w)[None, :] < xs1[:, None])
    ry, rx = ry.astype(np.float32), rx.astype(np.float32)
    total = ry.T @ drops @ rx
    count = np.outer(ry.sum(axis=0), rx.sum(axis=0))
    mean_drop = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    heat = _unit(np.maximum(mean_drop, 0.0))
    notes = notes + (fns.notes if score == "logit" else [])
    if not heat.any():
        notes.append("no patch lowered the score: the map is all zero; try a larger patch")
    return Occlusion(
        heatmap=heat,
        raw=drops.astype(np.float32),
        class_index=used,
        class_name=_name(loaded, used),
        score=float(logits[used]),
        probability=float(probs[used]),
        image=img,
        method="occlusion",
        notes=notes,
        patch=patch,
        stride=stride,
        fill=fill_name,
        scores=scores,
        base_score=base,
        score_kind=score,
    )


# ------------------------------------------------------------------------ feature maps
_SORTS = ("mean", "max", "std", "active")
_NORMS = ("channel", "layer", "symmetric")


def _stat(stats: ChannelStats, by: str) -> np.ndarray:
    if by not in _SORTS:
        raise CnnvizError(f"unknown statistic {by!r}: use one of {', '.join(_SORTS)}")
    return getattr(stats, by)


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
        found, path = get_layer(loaded.model, layer)
        if isinstance(found, keras.Model):
            raise CnnvizError(
                f"{path!r} is a nested model: pick one of its layers, such as "
                f"{path}/{found.layers[-1].name}"
            )
        shape = _output_shape(found)
        if shape is None:
            raise CnnvizError(
                f"layer {path!r} has several outputs or is used more than once: pick another layer"
            )
    img, notes = _prepare(loaded, image)
    fns = _features_fns(loaded, path)
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
    index = np.arange(n)
    if channels is not None:
        try:
            index = index[channels] if isinstance(channels, slice) else index[np.asarray(channels)]
        except IndexError:
            raise CnnvizError(
                f"channels {channels!r} out of range: {path!r} has channels 0..{n - 1}"
            ) from None
        index = np.atleast_1d(index)
    if sort is not None:
        values = _stat(stats, sort)
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
    )
