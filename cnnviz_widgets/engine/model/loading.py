"""Model sources: the embedded shapes CNN, keras.applications names, files, built models.

``load_model`` returns a :class:`LoadedModel`: the Keras model with what the engine needs
to know about it (preprocessing, class names, whether the output is a softmax).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import keras
import numpy as np

from ...errors import CnnvizError, ModelNotBuiltError, ModelSourceError, closest
from .internals import last_layer
from .output_names import BY_OUTPUT, names_by_output
from .preprocessing import Preprocessing, get_preprocessing

# name -> (keras.applications constructor, preprocessing, weights file size in MB)
APPLICATIONS: dict[str, tuple[str, str, int]] = {
    "vgg16": ("VGG16", "caffe", 528),
    "vgg19": ("VGG19", "caffe", 549),
    "resnet50": ("ResNet50", "caffe", 98),
    "resnet101": ("ResNet101", "caffe", 171),
    "resnet152": ("ResNet152", "caffe", 232),
    "resnet50v2": ("ResNet50V2", "tf", 98),
    "resnet101v2": ("ResNet101V2", "tf", 171),
    "resnet152v2": ("ResNet152V2", "tf", 232),
    "mobilenet": ("MobileNet", "tf", 16),
    "mobilenet_v2": ("MobileNetV2", "tf", 14),
    "mobilenet_v3_small": ("MobileNetV3Small", "raw", 10),
    "mobilenet_v3_large": ("MobileNetV3Large", "raw", 22),
    "inception_v3": ("InceptionV3", "tf", 92),
    "inception_resnet_v2": ("InceptionResNetV2", "tf", 215),
    "xception": ("Xception", "tf", 88),
    "densenet121": ("DenseNet121", "torch", 33),
    "densenet169": ("DenseNet169", "torch", 57),
    "densenet201": ("DenseNet201", "torch", 80),
    "nasnet_mobile": ("NASNetMobile", "tf", 23),
    "efficientnet_b0": ("EfficientNetB0", "raw", 29),
    "efficientnet_b3": ("EfficientNetB3", "raw", 48),
    "efficientnet_v2_s": ("EfficientNetV2S", "raw", 88),
    "convnext_tiny": ("ConvNeXtTiny", "raw", 110),
}

MODEL_NAMES: tuple[str, ...] = ("shapes", "shapes-robust", "shapes-standard", *APPLICATIONS)
"""Every name ``load_model`` accepts, besides paths and model objects."""


@dataclass
class LoadedModel:
    """A Keras model with what the engine needs to know about it.

    Attributes:
        model: the ``keras.Model`` itself (never modified by the engine).
        name: a short name (``"shapes"``, ``"vgg16"``, the model's own name, ...).
        preprocessing: maps RGB images in [0, 1] to model inputs.
        class_names: the output classes' names, or ``None`` when unknown.
        softmax: where a softmax sits at the output: ``"activation"`` (the last layer's
            activation), ``"layer"`` (a separate Softmax/Activation layer) or ``None``.
        source: what it was loaded from, for people.
        metadata: what the model says about itself beyond that (the embedded models'
            shipped metadata: ``"recipe"``, the optimization recipe it declares for
            ``preset="auto"``, ``"seeds"``, the class-conditional seed statistics
            of its training images, and ``"training_data"``, the name of the data it was
            trained on, for ``distribution_check``); for a model with several outputs
            given ``class_names={output: names}``, ``"output_class_names"``; else empty.
        output: for a view of one output of a model with several (made by
            ``select_output``), that output's name; else ``None``.
    """

    model: keras.Model
    name: str
    preprocessing: Preprocessing
    class_names: list[str] | None
    softmax: str | None
    source: str
    metadata: dict = field(default_factory=dict, repr=False, compare=False)
    output: str | None = field(default=None, compare=False)

    @property
    def output_is_softmax(self) -> bool:
        """True when the model's output is a probability distribution."""
        return self.softmax is not None

    @property
    def input_shape(self):
        """The input shape without the batch axis; a list of shapes for multi-input models."""
        shapes = [tuple(t.shape[1:]) for t in self.model.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def __repr__(self) -> str:
        n = len(self.class_names) if self.class_names else "?"
        return (
            f"LoadedModel({self.name!r}, input={self.input_shape}, classes={n}, "
            f"preprocessing={self.preprocessing.name!r}, softmax={self.softmax!r})"
        )


@lru_cache(maxsize=1)
def _imagenet_index() -> list[list[str]]:
    text = resources.files("cnnviz_widgets.data").joinpath("imagenet_classes.json").read_text()
    return json.loads(text)["classes"]


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in Keras' style (``"tench"``, ``"Indian_elephant"``)."""
    return [row[1] for row in _imagenet_index()]


def imagenet_wnids() -> list[str]:
    """The 1000 ImageNet WordNet ids (``"n01440764"``, ...), in output order."""
    return [row[0] for row in _imagenet_index()]


def softmax_position(model: keras.Model) -> str | None:
    """Where a softmax sits at the model's (single) output, if anywhere.

    ``"activation"`` when the last layer has ``activation="softmax"``, ``"layer"`` when it
    is a ``Softmax`` layer or ``Activation("softmax")``, ``None`` otherwise.  Looks inside a
    nested model that produces the output.
    """
    if len(model.outputs) != 1:
        return None
    layer, _ = last_layer(model, single_output=True)
    if layer is None:
        return None
    if isinstance(layer, keras.layers.Softmax):
        return "layer"
    activation = layer.get_config().get("activation")
    if activation == "softmax":
        return "layer" if isinstance(layer, keras.layers.Activation) else "activation"
    return None


def _guess_class_names(model: keras.Model) -> list[str] | None:
    """ImageNet's class names for a ``keras.applications`` classifier built by the user
    (``keras.applications.VGG16(weights=None)``): its name is the application's, its last
    layer the applications' ``"predictions"`` with 1000 outputs.  ``None`` otherwise."""
    if model.name.lower() not in APPLICATIONS or len(model.outputs) != 1:
        return None
    last = model.layers[-1] if model.layers else None
    shape = tuple(model.outputs[0].shape)
    if last is None or last.name != "predictions" or shape[1:] != (1000,):
        return None
    return imagenet_class_names()


def _guess_preprocessing(model: keras.Model) -> str:
    """A keras.applications model's own preprocessing when its name says which it is
    (``VGG16(...)`` is named ``"vgg16"``); [0, 255] when the model rescales its input
    itself; [0, 1] otherwise."""
    name = model.name.lower()
    if name in APPLICATIONS:
        return APPLICATIONS[name][1]
    for layer in model.layers[:4]:
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return "raw"
    return "unit"


def check_built(model: keras.Model) -> None:
    """Raise a clear error when ``model`` has no defined inputs yet."""
    if not isinstance(model, keras.Model):
        raise ModelSourceError(
            f"expected a keras.Model, got {type(model).__name__}: pass a model, a model "
            f"name ({', '.join(MODEL_NAMES[:4])}, ...) or a path to a .keras/.h5 file"
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not model.built or not inputs:
        raise ModelNotBuiltError(
            f"the model {model.name!r} is not built, so its layers have no shapes or "
            "weights yet. Build it first: start it with keras.Input(shape=(H, W, C)), or "
            "call model.build((None, H, W, C)), or run it once on a batch of images"
        )


def _checked_names(model: keras.Model, class_names) -> list[str] | None:
    """``class_names`` as strings, checked against the model's number of classes."""
    if class_names is None:
        return None
    if isinstance(class_names, (str, bytes)):
        raise CnnvizError(
            f"class_names is one string ({class_names!r}): give a list with one name per class"
        )
    names = [str(c) for c in class_names]
    outputs = getattr(model, "outputs", None) or []
    shape = tuple(outputs[0].shape) if len(outputs) == 1 else ()
    if len(shape) == 2 and shape[-1] is not None and len(names) != shape[-1]:
        raise CnnvizError(
            f"class_names has {len(names)} names but the model {model.name!r} has "
            f"{shape[-1]} classes (output shape {shape}): give exactly one name per class, "
            "in the order of the model's outputs"
        )
    return names


def _split_names(model: keras.Model, class_names) -> tuple[list[str] | None, dict]:
    """``(class names, metadata)``: a list checked against the model's classes, or a dict
    ``{output: names}`` checked against the outputs (a one-output model's becomes its
    list; several outputs' go to the metadata, read by ``select_output``)."""
    if isinstance(class_names, dict):
        per_output = names_by_output(model, class_names)
        if len(model.outputs) == 1:
            return next(iter(per_output.values()), None), {}
        return None, {BY_OUTPUT: per_output}
    return _checked_names(model, class_names), {}


def wrap_model(
    model: keras.Model,
    *,
    name: str | None = None,
    preprocessing: str | Preprocessing | None = None,
    class_names: list[str] | dict | None = None,
    source: str = "keras.Model",
) -> LoadedModel:
    """Describe an already-built model (no copy is made, nothing is changed).
    ``class_names``: a list, or for a model with several outputs ``{output: names}``."""
    check_built(model)
    prep = get_preprocessing(preprocessing or _guess_preprocessing(model))
    if class_names is None:
        class_names = _guess_class_names(model)
    class_names, metadata = _split_names(model, class_names)
    return LoadedModel(
        model=model,
        name=name or model.name,
        preprocessing=prep,
        class_names=class_names,
        softmax=softmax_position(model),
        source=source,
        metadata=metadata,
    )


def _load_shapes(variant: str | None, name: str) -> LoadedModel:
    from .embedded import DEFAULT_VARIANT, load_shapes_cnn, shapes_metadata

    variant = variant or DEFAULT_VARIANT
    meta = shapes_metadata(variant)
    loaded = wrap_model(
        load_shapes_cnn(variant),
        name=name,
        preprocessing=meta["preprocessing"],
        class_names=meta["class_names"],
        source=f"embedded shapes CNN, {variant} training (cnnviz_widgets/data)",
    )
    loaded.metadata = {k: meta[k] for k in ("recipe", "seeds") if k in meta}
    # what it was trained on: cw.distribution_check says when an image is unlike it
    loaded.metadata["training_data"] = "shapes"
    return loaded


def _load_application(name: str, weights, **kwargs) -> LoadedModel:
    constructor_name, prep, size_mb = APPLICATIONS[name]
    constructor = getattr(keras.applications, constructor_name)
    if weights not in (None, "imagenet"):
        path = Path(os.fspath(weights)).expanduser()
        if not path.is_file():
            raise ModelSourceError(
                f"no weights file at {str(path)!r} for {name!r}: check the path, or use "
                f"weights=None for the architecture with random weights"
            )
        weights = str(path)
    try:
        model = constructor(weights=weights, **kwargs)
    except TypeError as err:
        raise ModelSourceError(f"keras.applications.{constructor_name}: {err}") from None
    except Exception as err:
        if weights == "imagenet":
            raise ModelSourceError(
                f"could not get the ImageNet weights for {name!r} (about {size_mb} MB, "
                f"downloaded on first use into ~/.keras/models): {err}. Without a "
                f"network: load_model({name!r}, weights=None) builds the architecture "
                f"with random weights to explore its layers and filters, or "
                f"load_model({name!r}, weights='/path/to/weights.h5') uses a weights "
                "file you copied here"
            ) from err
        raise ModelSourceError(
            f"could not load the weights file {weights!r} into {name!r}: {err}. "
            "The file must hold the weights of the same architecture (same include_top)"
        ) from err
    include_top = kwargs.get("include_top", True)
    classes = (
        imagenet_class_names() if include_top and kwargs.get("classes", 1000) == 1000 else None
    )
    return wrap_model(
        model,
        name=name,
        preprocessing=prep,
        class_names=classes,
        source=f"keras.applications.{constructor_name}(weights={weights!r})",
    )


def _load_file(path: Path, **kwargs) -> LoadedModel:
    if not path.exists():
        raise ModelSourceError(
            f"no model file at {str(path)!r} (working directory: {os.getcwd()}): check the "
            "path, or pass a model name such as 'shapes' or 'vgg16'"
        )
    if path.is_dir():
        raise ModelSourceError(
            f"{str(path)!r} is a directory: point at a .keras or .h5 model file. A "
            "TensorFlow SavedModel directory cannot be loaded as a Keras 3 model; re-save "
            "it with model.save('model.keras')"
        )
    try:
        model = keras.models.load_model(path, compile=False, **kwargs)
    except Exception as err:
        raise ModelSourceError(
            f"could not read {str(path)!r} as a Keras model ({type(err).__name__}: "
            f"{str(err)[:300]}). The file may be corrupt or truncated, hold only weights, "
            "or need custom_objects=... for custom layers. Re-save the model with "
            "model.save('model.keras')"
        ) from err
    return wrap_model(model, name=path.stem, source=str(path))


def load_model(
    source,
    *,
    weights: str | os.PathLike | None = "imagenet",
    preprocessing: str | Preprocessing | None = None,
    class_names: list[str] | dict | None = None,
    **kwargs,
) -> LoadedModel:
    """Load a model and describe it for the engine.

    Args:
        source: ``"shapes"`` (the embedded, offline model: ``"shapes-robust"``, trained on
            adversarial examples, so its class images show their shapes) or
            ``"shapes-standard"`` (the same network trained on clean images only: its class
            images are textures); a ``keras.applications`` name
            such as ``"vgg16"``, ``"resnet50"``, ``"mobilenet_v2"`` (see ``MODEL_NAMES``);
            a path to a ``.keras`` / ``.h5`` file; a built ``keras.Model``; or a
            ``LoadedModel`` (returned as is).
        weights: for ``keras.applications`` names: ``"imagenet"`` (downloaded on first
            use), ``None`` (random weights, for exploring the architecture) or a path to a
            weights file.
        preprocessing: override the input preprocessing (``"unit"``, ``"raw"``, ``"tf"``,
            ``"caffe"``, ``"torch"``).  Default: known for named models, else ``"raw"``
            when the model starts with a Rescaling layer and ``"unit"`` otherwise.
        class_names: override the class names; for a model with several outputs, a dict
            ``{output: names}`` (an output by name or index) gives each its own.
        **kwargs: passed to the ``keras.applications`` constructor (``include_top``,
            ``input_shape``, ...) or to ``keras.models.load_model`` (``custom_objects``).

    Returns:
        A :class:`LoadedModel`.

    Raises:
        ModelSourceError: unknown name, missing or unreadable file, weights unavailable.
        ModelNotBuiltError: a model object that is not built yet.
    """
    if isinstance(source, LoadedModel):
        loaded = source
    elif isinstance(source, keras.Model):
        loaded = wrap_model(source)
    elif isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        key = text.strip().lower().replace("-", "_")
        if key == "shapes":
            loaded = _load_shapes(None, "shapes")
        elif key in ("shapes_robust", "shapes_standard"):
            loaded = _load_shapes(key.split("_")[1], key.replace("_", "-"))
        elif key in APPLICATIONS:
            loaded = _load_application(key, weights, **kwargs)
        elif isinstance(source, os.PathLike) or Path(text).suffix or os.sep in text:
            loaded = _load_file(Path(text).expanduser(), **kwargs)
        else:
            hint = closest(key, MODEL_NAMES)
            raise ModelSourceError(
                f"unknown model {text!r}"
                + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else "")
                + f". Known names: {', '.join(MODEL_NAMES)}. Or pass a path to a .keras or "
                ".h5 file, or a built keras.Model"
            )
    else:
        raise ModelSourceError(
            f"cannot load a model from a {type(source).__name__}: pass a model name "
            f"({', '.join(MODEL_NAMES[:4])}, ...), a path to a .keras/.h5 file, or a "
            "built keras.Model"
        )
    if preprocessing is not None or class_names is not None:
        names, extra = (
            (loaded.class_names, {})
            if class_names is None
            else _split_names(loaded.model, class_names)
        )
        loaded = LoadedModel(
            model=loaded.model,
            name=loaded.name,
            preprocessing=get_preprocessing(preprocessing or loaded.preprocessing),
            class_names=names,
            softmax=loaded.softmax,
            source=loaded.source,
            metadata={**loaded.metadata, **extra},
            output=loaded.output,
        )
    return loaded


def as_keras_model(model) -> keras.Model:
    """The keras.Model behind a LoadedModel (or the model itself), checked to be built."""
    if isinstance(model, LoadedModel):
        return model.model
    check_built(model)
    return model


def as_loaded(model) -> LoadedModel:
    """A ``LoadedModel`` from a LoadedModel, a built keras.Model, or a ``load_model`` source."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, keras.Model):
        return wrap_model(model)
    return load_model(model)


def resolve_class(ref, n: int, class_names: list[str] | None, what: str = "") -> int:
    """A class given by index or name, checked against ``n`` classes, as an index.

    Raises ``CnnvizError`` naming the closest class names, or the valid index range.
    """
    prefix = f"{what}: " if what else ""
    names = class_names or []
    if isinstance(ref, str):
        if ref in names:
            return names.index(ref)
        hint = closest(ref, names)
        raise CnnvizError(
            f"{prefix}unknown class name {ref!r}"
            + (f"; closest: {', '.join(hint)}" if hint else "")
            + (
                ". The model's class names are unknown: pass an index, or load it with "
                "class_names=[...]"
                if not names
                else ""
            )
        )
    if isinstance(ref, (bool, np.bool_)) or not isinstance(ref, (int, np.integer)):
        raise CnnvizError(
            f"{prefix}a class is an int index or a name, got {type(ref).__name__} {ref!r}"
        )
    if not 0 <= int(ref) < n:
        raise CnnvizError(
            f"{prefix}class index {int(ref)} is out of range: the model has {n} classes, so "
            f"use 0..{n - 1}" + (f" (or a name such as {names[0]!r})" if names else "")
        )
    return int(ref)
