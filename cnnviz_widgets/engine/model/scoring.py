"""What the attribution methods and the feature maps share: the display image fitted to the
model, the class to explain, and one compiled pass from images to (tapped activations,
class scores, probabilities), cached per Keras model (weakly, so a model that goes away
takes its functions with it) and per layer."""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from .imageio import as_image, fit_image
from .internals import (
    Tap,
    class_count,
    final_activation,
    image_input,
    is_spatial,
    iter_layers,
    layer_at,
    logit_source,
    output_shape,
    quiet_retracing,
    reader,
    spatial_layer_paths,
)
from .introspect import find_layer
from .loading import LoadedModel, as_loaded, resolve_class
from .precision import twins_of

__all__ = [
    "FLOAT",
    "INT",
    "AttributionFns",
    "Net",
    "cached_fns",
    "class_name_at",
    "default_cam_layer",
    "image_spec",
    "is_classifier",
    "pick_class",
    "prepare_image",
    "spatial_layers",
    "target_class",
    "tracing_count",
    "unit",
]


def prepare_image(loaded: LoadedModel, image) -> tuple[np.ndarray, list[str]]:
    """The display image fitted to the model, and the notes about what changed."""
    h, w, c = image_input(loaded.model)
    arr, notes = as_image(image)
    return fit_image(arr, h, w, c, notes=notes)


def target_class(loaded: LoadedModel, target, n: int) -> int:
    """``target`` (index, name or ``None``) as an index; ``-1`` means "the predicted one"."""
    if target is None:
        return -1
    return resolve_class(target, n, loaded.class_names)


def spatial_layers(model) -> list[str]:
    """Paths of the layers Grad-CAM can use: 4-D outputs ``(batch, h, w, channels)`` with
    more than one position, in model order, inside nested models too (pooling, dropout,
    padding and reshape layers left out)."""
    return spatial_layer_paths(as_loaded(model).model)


def default_cam_layer(model) -> str:
    """The layer Grad-CAM uses by default: the last of :func:`spatial_layers` (VGG16:
    ``block5_conv3``; ResNet50: ``conv5_block3_out``; Xception: ``block14_sepconv2_act``),
    looking inside nested models."""
    layers = spatial_layers(model)
    if not layers:
        raise CnnvizError(
            "Grad-CAM needs a layer with a 2-D spatial (image) output (batch, height, width, "
            f"channels); this model has none: {_what_instead(as_loaded(model).model)}. "
            "Grad-CAM explains models with 2-D convolutions (Conv2D, DepthwiseConv2D, ...); "
            "for a model that takes an image without them, use saliency or occlusion"
        )
    return layers[-1]


def cam_layer(loaded: LoadedModel, layer) -> str:
    """The path of the layer a CAM method explains: ``layer`` when its output is spatial,
    the last spatial layer when ``layer`` is ``None``; a message naming the spatial layers
    otherwise."""
    if layer is None:
        return default_cam_layer(loaded)
    found, path = find_layer(loaded.model, layer)
    shape = output_shape(found)
    if isinstance(found, keras.Model) or not is_spatial(shape):
        options = spatial_layers(loaded)
        shown = ", ".join(options[-8:]) if options else "none in this model"
        raise CnnvizError(
            f"Grad-CAM needs a layer with a spatial output (batch, h, w, channels); {path!r} "
            f"({type(found).__name__}) outputs {shape}. Use a convolutional layer: "
            f"{shown} (default: the last one)"
        )
    return path


def _what_instead(model) -> str:
    """The layers that have a grid of some other rank (Conv1D, Conv3D, ...), for messages."""
    found = []
    for _, path, _, layer, _ in iter_layers(model):
        shape = output_shape(layer)
        if isinstance(layer, (keras.Model, keras.layers.InputLayer)) or shape is None:
            continue
        if len(shape) == 3 or len(shape) >= 5:  # (batch, steps, channels), (b, d, h, w, c)
            found.append(f"{path!r} ({type(layer).__name__}, output {shape}, {len(shape) - 2}-D)")
    if not found:
        return "no layer keeps a spatial grid (its layers give flat vectors)"
    shown = ", ".join(found[-3:])
    return f"it has {len(found)} layer(s) with a grid of another dimension, such as {shown}"


VALUE_NOTE = (
    "the model's output has no softmax, no sigmoid and no class names: it is read as a head "
    "of values (a regression), not a classifier, so the score is its output value and there "
    "is no probability (NaN). For a classifier that outputs logits, pass class_names= to "
    "load_model"
)


def is_classifier(loaded: LoadedModel) -> bool:
    """Whether the model's output reads as class scores: it ends in a softmax or a sigmoid,
    or its class names are known.  A linear head without class names is taken for a head
    of values (a regression): its softmax would be a meaningless "probability"."""
    if loaded.softmax is not None or loaded.class_names:
        return True
    return final_activation(loaded.model) == "sigmoid"


class Net:
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
            class_count(model)
            try:
                self.src = logit_source(loaded)
            except CnnvizError:
                self.src = None
            if self.src is not None:
                all_taps.append(self.src.tap)
                if self.src.dense_path:
                    self.dense = layer_at(model, self.src.dense_path)
                if loaded.softmax is None:
                    if final_activation(model) == "sigmoid":
                        self.prob = "output"
                        self.notes.append(
                            "the model ends in a sigmoid: scores and probabilities are its "
                            "outputs (one per class, not summing to 1)"
                        )
                    elif not is_classifier(loaded):
                        self.notes.append(VALUE_NOTE)
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
        self.run = reader(model, all_taps, with_outputs)

    def __call__(self, images):
        x = self.prep(images)
        values, outs = self.run(x)
        acts = values[: self.n_taps]  # in the model's compute dtype (cast by the callers)
        if not self.scores:
            return acts, None, None
        if self.src is not None:
            # a reduced-precision twin's last layer is recomputed in float32
            logits = self.src.logits(tf.cast(values[-1], tf.float32), self.dense)
        else:
            logits = outs[0]
        logits = tf.cast(logits, tf.float32)
        probs = tf.nn.softmax(logits, axis=-1) if self.prob == "softmax" else logits
        return acts, logits, probs


_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cached_fns(loaded: LoadedModel, key: tuple, build):
    per_model = _FNS.setdefault(loaded.model, {})
    full = (*key, loaded.preprocessing.name, loaded.softmax)
    if full not in per_model:
        per_model[full] = build()
    return per_model[full]


def tracing_count(model) -> int:
    """How many times the compiled attribution functions of ``model`` and of its
    reduced-precision twins were traced (for checks;
    :func:`~cnnviz_widgets.engine.optvis.step.step_tracing_count` counts the optimization
    steps)."""
    model = model.model if isinstance(model, LoadedModel) else model
    return sum(
        f.experimental_get_tracing_count()
        for m in (model, *twins_of(model))
        for entry in _FNS.get(m, {}).values()
        for f in entry.functions()
    )


class AttributionFns:
    """The compiled attribution functions of one model (and layer), with the notes of the
    network they read; cached by :func:`cached_fns`."""

    def __init__(self, net: Net, **fns):
        self.net = net
        self.notes = net.notes
        self.fns = fns
        for name, f in fns.items():
            setattr(self, name, quiet_retracing(f))

    def functions(self):
        return list(self.fns.values())


def image_spec(loaded: LoadedModel) -> tf.TensorSpec:
    h, w, c = image_input(loaded.model)
    return tf.TensorSpec((1, h, w, c), tf.float32)


INT = tf.TensorSpec((), tf.int32)
FLOAT = tf.TensorSpec((), tf.float32)


def pick_class(logits, class_index):
    """The class to explain: ``class_index``, or the prediction when it is negative."""
    pred = tf.argmax(logits[0], output_type=tf.int32)
    return tf.where(class_index < 0, pred, class_index)


def class_name_at(loaded: LoadedModel, index: int) -> str | None:
    names = loaded.class_names
    return names[index] if names and 0 <= index < len(names) else None


def unit(x: np.ndarray) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return (x / top).astype(np.float32) if top > 0 else np.zeros_like(x, np.float32)
