"""The one door to a Keras model's internals: the only module that touches private Keras API.

Everything the engine needs to know about a model's structure lives here: walking its
layers (nested models included), the last layer and its activation, the image input, the
class output, the layers with a spatial output, where the logits can be read, and reading
inner tensors without changing the model.  Functions take a built ``keras.Model`` (the
public entry points convert the user's model once); none of them changes it.

A private Keras attribute that is missing (a Keras release renamed it) raises a
``CnnvizError`` that names the Keras version, instead of an ``AttributeError`` deep inside.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import keras

from ...errors import CnnvizError

__all__ = [
    "NOT_CAM",
    "TESTED_KERAS",
    "LogitSource",
    "Tap",
    "build_extractor",
    "class_count",
    "final_activation",
    "image_input",
    "inbound_paths",
    "is_spatial",
    "iter_layers",
    "keras_changed",
    "last_layer",
    "layer_at",
    "logit_source",
    "output_shape",
    "parent_operations",
    "quiet_retracing",
    "reader",
    "reduced_precision_twin",
    "share_weights",
    "spatial_layer_paths",
]


TESTED_KERAS = ("3.12", "3.15")
"""The oldest and newest Keras minor releases the test suite has passed on (pyproject's
``keras>=`` floor is the first)."""


def keras_changed(what: str) -> CnnvizError:
    """The error for private Keras API that is missing or changed in this Keras release."""
    lo, hi = TESTED_KERAS
    return CnnvizError(
        f"Keras {keras.__version__} {what}, which cnnviz_widgets uses to look inside a model "
        f"(cnnviz_widgets/engine/internals.py). cnnviz_widgets is tested with Keras {lo} to "
        f"{hi}: install one of those (pip install 'keras>={lo},<{_next_minor(hi)}') and "
        "restart the kernel, or look for a newer cnnviz_widgets"
    )


def _next_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def _private(obj, name: str):
    """``obj.<name>``, a private Keras attribute, or an error naming the Keras version."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise keras_changed(f"has no {type(obj).__name__}.{name}") from None


def _graph_of(model):
    """The Functional graph of a Functional or Sequential model (built: a Sequential keeps
    its graph in a Functional of its own); ``None`` for a subclassed model (no graph)."""
    if isinstance(model, keras.Sequential):
        return _private(model, "_functional")
    if any(cls.__name__ == "Functional" for cls in type(model).__mro__):
        return model
    return None


# ------------------------------------------------------------------------------ structure
def iter_layers(model, prefix: str = "", depth: int = 0) -> Iterator[tuple]:
    """Yield ``(index, path, depth, layer, parent)`` for every layer, depth first."""
    for i, layer in enumerate(model.layers):
        path = prefix + layer.name
        yield i, path, depth, layer, model
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer, path + "/", depth + 1)


def layer_at(model: keras.Model, path: str):
    """The layer at an exact path ``"outer/inner"`` (names, one per level of nesting)."""
    layer = model
    for name in path.split("/"):
        layer = layer.get_layer(name)
    return layer


def last_layer(model: keras.Model, *, single_output: bool = False):
    """``(layer, path)`` of the layer that produces the output, looking into nested models.

    With ``single_output``, returns ``(None, path)`` when a nested model on the way has
    more than one output.
    """
    parts = []
    layer = model
    while isinstance(layer, keras.Model):
        if single_output and layer is not model and len(layer.outputs) != 1:
            return None, "/".join(parts)
        layer = layer.layers[-1]  # layers are listed in topological order
        parts.append(layer.name)
    return layer, "/".join(parts)


def final_activation(model: keras.Model) -> str | None:
    """The name of the last layer's activation (``"softmax"``, ``"sigmoid"``...), if any."""
    layer, _ = last_layer(model)
    try:
        act = layer.get_config().get("activation")
    except Exception:
        return None
    return act if isinstance(act, str) else None


_INPUT_HINTS = {
    "explain": (
        "these methods need one image input. Build a keras.Model from the image input with "
        "the others fixed",
        "",
    ),
    "optimize": (
        "activation maximization needs a model with one image input. Build a keras.Model "
        "from the image input to the layer you want to study, with the other inputs fixed",
        ". Activation maximization works on image models (Conv2D inputs); for a model on "
        "vectors or sequences, pick another tool",
    ),
}


def image_input(model: keras.Model, purpose: str = "explain") -> tuple:
    """``(height, width, channels)`` of the model's one image input (sizes may be ``None``).

    ``purpose`` (``"explain"`` or ``"optimize"``) chooses the advice in the errors.
    Raises ``CnnvizError`` for several inputs, a non-image input or channels first.
    """
    several, not_image = _INPUT_HINTS[purpose]
    if len(model.inputs) != 1:
        raise CnnvizError(f"the model {model.name!r} has {len(model.inputs)} inputs; {several}")
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4:
        raise CnnvizError(
            f"the model's input has shape {shape}, which is not an image: expected (batch, "
            f"height, width, channels){not_image}"
        )
    h, w, c = shape[1:]
    if c is None or c > 4:
        raise CnnvizError(
            f"the model's input has shape {shape}: expected channels last, (batch, height, "
            "width, channels) with 1, 3 or 4 channels. A channels_first model is not supported"
        )
    return h, w, int(c)


def class_count(model: keras.Model) -> int:
    """The number of classes of a model with one ``(batch, classes)`` output."""
    if len(model.outputs) != 1:
        raise CnnvizError(
            f"the model has {len(model.outputs)} outputs; class explanations read one: "
            "choose it with output= (its name or index; cw.model_outputs(model) lists them)"
        )
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2 or shape[-1] is None:
        raise CnnvizError(
            f"the model's output has shape {shape}; class explanations need (batch, classes). "
            "For a model that outputs maps or sequences, explain a model cut at a class layer"
        )
    return int(shape[-1])


def inbound_paths(model: keras.Model, path: str) -> list[str]:
    """Paths of the layers whose outputs feed the layer at ``path``, in ``model``'s graph.

    Nested models are looked through: the first layer inside a nested model is fed by
    whatever feeds the nested model, and a nested model as a producer is its output layer.
    The model's own input is the path ``""``.  Raises ``CnnvizError`` for a layer called
    more than once in its model, or fed by an operation that is not a layer.
    """
    parts = path.split("/")
    parent = layer_at(model, "/".join(parts[:-1])) if len(parts) > 1 else model
    layer = parent.get_layer(parts[-1])
    prefix = "/".join(parts[:-1]) + "/" if len(parts) > 1 else ""
    graph = _graph_nodes(parent)
    mine = [n for n in _private(layer, "_inbound_nodes") if any(n is g for g in graph)]
    if len(mine) != 1:
        raise CnnvizError(
            f"layer {path!r} is called {len(mine)} times in {parent.name!r}: the way from the "
            "input to it is not one path; pick a layer that is called once"
        )
    found: list[str] = []
    for node in mine[0].parent_nodes:
        op = node.operation
        if isinstance(op, keras.layers.InputLayer):
            found += inbound_paths(model, prefix[:-1]) if prefix else [""]
        elif isinstance(op, keras.Model):
            _, inner = last_layer(op)
            found.append(f"{prefix}{op.name}/{inner}")
        elif isinstance(op, keras.layers.Layer):
            found.append(prefix + op.name)
        else:
            raise CnnvizError(
                f"layer {path!r} is fed by the operation {op.name!r} ({type(op).__name__}), "
                "which is not a layer: the way back to the input cannot be followed there"
            )
    return list(dict.fromkeys(found))


def parent_operations(layer) -> list:
    """The operations (layers, input layers, nested models) whose outputs feed ``layer``,
    over every call of it in any graph.  Tolerant where :func:`inbound_paths` is strict:
    ``[]`` for a layer never called in a graph, or when this Keras keeps no
    ``_inbound_nodes`` (the layer table then shows no inbound layers, not an error)."""
    return [
        parent.operation
        for node in getattr(layer, "_inbound_nodes", [])
        for parent in getattr(node, "parent_nodes", [])
    ]


# ------------------------------------------------------------------------ spatial layers
NOT_CAM = (
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
"""Layers with a spatial output that Grad-CAM skips: they only move or mask values."""


def output_shape(layer) -> tuple | None:
    """The layer's (single) output shape, or ``None`` when it has none or several."""
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(out, (list, tuple)):
        return tuple(out[0].shape) if len(out) == 1 else None
    return tuple(out.shape)


def is_spatial(shape) -> bool:
    """``shape`` is ``(batch, h, w, channels)`` with more than one position."""
    if shape is None or len(shape) != 4:
        return False
    h, w = shape[1], shape[2]
    return h is None or w is None or h * w > 1


def spatial_layer_paths(model: keras.Model) -> list[str]:
    """Paths of the layers Grad-CAM can use, in model order, inside nested models too."""
    return [
        path
        for _, path, _, layer, _ in iter_layers(model)
        if not isinstance(layer, (keras.Model, *NOT_CAM)) and is_spatial(output_shape(layer))
    ]


# ------------------------------------------------------------------------- inner tensors
@dataclass(frozen=True)
class Tap:
    """A tensor inside a model.

    Attributes:
        path: the layer's full path (``"vgg16/block5_conv1"``); see ``get_layer``.
        kind: ``"output"`` (the layer's output) or ``"input"`` (its input).
    """

    path: str
    kind: str = "output"


def _graph_nodes(model: keras.Model) -> list:
    """The nodes of a Functional (or built Sequential) model's own graph (read only)."""
    graph = _graph_of(model)
    by_depth = _private(graph, "_nodes_by_depth") if graph is not None else {}
    return [node for nodes in by_depth.values() for node in nodes]


def _input_in_graph(outer: keras.Model, inner: keras.Model):
    """The symbolic tensor(s) that feed ``inner`` inside ``outer``'s graph."""
    nodes = _graph_nodes(outer)
    for node in _private(inner, "_inbound_nodes"):
        if any(node is n for n in nodes):
            args = _private(node, "input_tensors")
            return args[0] if len(args) == 1 else list(args)
    raise CnnvizError(
        f"cannot find where the nested model {inner.name!r} is called inside "
        f"{outer.name!r}; tap a layer of the outer model instead"
    )


def _tensor(layer, kind: str):
    value = layer.output if kind == "output" else layer.input
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise CnnvizError(
                f"layer {layer.name!r} has {len(value)} {kind}s; tap a layer with one {kind}"
            )
        value = value[0]
    return value


def _build(model: keras.Model, taps: Sequence[tuple[tuple[str, ...], str]], with_outputs: bool):
    """A keras.Model: model inputs -> [tap tensors in order] (+ model outputs).

    For a layer inside a nested model, the inner model's graph is tapped first and that
    inner extractor is applied to the tensor that feeds the nested model in the outer graph
    (so with the outputs too, the nested model runs twice; the taps alone never do).
    """
    symbolic: list = [None] * len(taps)
    nested: dict[str, list[int]] = {}
    for i, (parts, kind) in enumerate(taps):
        if len(parts) == 1:
            symbolic[i] = _tensor(model.get_layer(parts[0]), kind)
        else:
            nested.setdefault(parts[0], []).append(i)
    for name, idx in nested.items():
        inner = model.get_layer(name)
        sub = _build(inner, [(taps[i][0][1:], taps[i][1]) for i in idx], with_outputs=False)
        values = sub(_input_in_graph(model, inner))
        values = values if isinstance(values, (list, tuple)) else [values]
        for i, v in zip(idx, values):
            symbolic[i] = v
    outputs = [*symbolic, *model.outputs] if with_outputs else symbolic
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_taps")


_EXTRACTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def build_extractor(model: keras.Model, taps: Sequence[Tap], with_outputs: bool = True):
    """A ``keras.Model`` sharing ``model``'s layers that returns the tapped tensors, then
    (optionally) the outputs; cached per model and taps.  Only reads the model's graph: no
    layer is called, so the model gets no new nodes."""
    key = (tuple(taps), bool(with_outputs))
    per_model = _EXTRACTORS.setdefault(model, {})
    if key not in per_model:
        parsed = [(tuple(t.path.split("/")), t.kind) for t in taps]
        if not parsed and not with_outputs:
            raise CnnvizError("an extractor needs at least one tap or the outputs")
        per_model[key] = _build(model, parsed, with_outputs)
    return per_model[key]


def _called_once(layer) -> bool:
    """The layer has one call in any graph, so ``layer.output`` is unambiguous."""
    return len(_private(layer, "_inbound_nodes")) <= 1


def reader(model: keras.Model, taps: list[Tap], with_outputs: bool):
    """``fn(x) -> (tap values, outputs or None)``, all from one computation.

    Top-level taps: one extractor.  Taps inside nested models (or on layers that are
    shared with another model, whose ``.output`` may belong to the other graph): the
    model's own graph is run with each such nested model replaced by a reader of its own
    graph (recursively) and the tapped layers' calls recorded, so the inner tensors and
    everything downstream share one computation (and the gradient between them exists).
    Layers are called on tensors only (never on symbolic inputs): no new nodes.
    """
    parts = [t.path.split("/") for t in taps]
    if all(len(p) == 1 and _called_once(model.get_layer(p[0])) for p in parts):
        ext = build_extractor(model, taps, with_outputs=with_outputs)
        n = len(taps)

        def run_flat(x):
            outs = ext(x, training=False)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            return outs[:n], (outs[n:] if with_outputs else None)

        return run_flat

    graph = _graph_of(model)
    if graph is None:
        raise CnnvizError(
            f"cannot read inside {model.name!r} ({type(model).__name__}): only Functional and "
            "Sequential models can be looked into; pick a layer of the outer model"
        )
    _private(graph, "_run_through_graph")  # missing: say so now, not inside a trace
    graph_ref = weakref.ref(graph)  # the caches must not keep the model alive
    top: dict[str, list[int]] = {}
    nested: dict[str, list[int]] = {}
    for i, p in enumerate(parts):
        (top if len(p) == 1 else nested).setdefault(p[0], []).append(i)
    layers = {name: model.get_layer(name) for name in (*top, *nested)}
    inner = {
        name: reader(layers[name], [Tap("/".join(parts[i][1:]), taps[i].kind) for i in idx], True)
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

        run = _private(graph_ref(), "_run_through_graph")
        try:
            outs = run(x, operation_fn=operation_fn)
        except TypeError as err:  # its signature changed
            if "operation_fn" not in str(err):
                raise
            raise keras_changed(f"changed Functional._run_through_graph ({err})") from None
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        return values, (outs if with_outputs else None)

    return run_graph


# -------------------------------------------------------------------------------- logits
@dataclass(frozen=True)
class LogitSource:
    """Where the pre-softmax class scores of a model can be read without changing it.

    Attributes:
        tap: the tensor to tap.
        dense_path: when set, the tap is the input of this final Dense layer (whose
            activation is the softmax) and the logits are ``tap @ kernel + bias``.
    """

    tap: Tap
    dense_path: str | None = None

    def logits(self, tapped, dense=None):
        """Logits from the tapped tensor (``dense``: the layer at ``dense_path``)."""
        if self.dense_path is None:
            return tapped
        y = keras.ops.matmul(tapped, dense.kernel)
        return y + dense.bias if dense.use_bias else y


def logit_source(loaded) -> LogitSource:
    """Find the logits of a ``LoadedModel``: the output itself when it has no softmax, the
    input of a final Softmax/Activation layer, or a final softmax Dense layer recomputed
    linearly from its own weights.  Raises ``CnnvizError`` when none applies."""
    model = loaded.model
    if len(model.outputs) != 1:
        raise CnnvizError(
            f"the model has {len(model.outputs)} outputs; class objectives read one: "
            "choose it with output= (its name or index; cw.model_outputs(model) lists them)"
        )
    layer, path = last_layer(model)
    if loaded.softmax is None:
        return LogitSource(Tap(path, "output"))  # the output already is the score
    if loaded.softmax == "layer":
        return LogitSource(Tap(path, "input"))  # the input of the Softmax layer
    if isinstance(layer, keras.layers.Dense):
        return LogitSource(Tap(path, "input"), dense_path=path)
    raise CnnvizError(
        f"the last layer {path!r} ({type(layer).__name__}) applies the softmax itself, so its "
        "logits cannot be read without changing the model: use "
        "objectives.class_probability instead of class_logit"
    )


# ---------------------------------------------------------------------------- tensorflow
def quiet_retracing(fn):
    """Mark a ``tf.function`` as traced once per closure: TensorFlow counts the traces of
    all closures of one Python function together (one per model and layer here) and would
    warn about "retracing" after a few models or layers."""
    if hasattr(fn, "_omit_frequent_tracing_warning"):
        fn._omit_frequent_tracing_warning = True
    return fn


# ------------------------------------------------------------------- reduced precision
def _clone_layer(policy: str):
    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        config["dtype"] = policy
        return layer.__class__.from_config(config)

    return clone


def reduced_precision_twin(model: keras.Model, policy: str) -> keras.Model:
    """A copy of ``model``'s graph whose layers compute under the Keras dtype ``policy``
    (``"mixed_bfloat16"`` or ``"mixed_float16"``) and that *shares* ``model``'s weights.

    The twin's layers are new objects (``keras.models.clone_model`` from their configs,
    nested Functional/Sequential models included); each of their variables is then made
    to hold the very ``tf.Variable`` of the matching variable of ``model`` (mixed policies
    keep variables in float32, so the dtypes match).  Nothing of ``model`` is changed and
    no weight is copied: a later edit or training of ``model`` is seen by the twin, and the
    weights take no extra memory.

    Raises ``CnnvizError`` when the model cannot be cloned (a subclassed model, a custom
    layer without ``get_config``) or when the twin's variables do not pair up with the
    model's (shapes or dtypes differ).
    """
    try:
        twin = keras.models.clone_model(model, clone_function=_clone_layer(policy), recursive=True)
    except Exception as err:
        raise CnnvizError(
            f"cannot build a {policy} copy of {model.name!r} ({type(err).__name__}: "
            f"{str(err)[:200]}): only Functional and Sequential models whose layers can be "
            "rebuilt from their configs can; use precision='float32'"
        ) from None
    return share_weights(twin, model, f"{policy} copy", "use precision='float32'")


def share_weights(twin: keras.Model, model: keras.Model, what: str, way_out: str):
    """Make each variable of ``twin`` (a clone of ``model``'s graph) hold the very
    ``tf.Variable`` of ``model``'s, and return ``twin``; ``what`` names the twin and
    ``way_out`` ends the message when the weights do not pair up."""
    ours, theirs = list(twin.weights), list(model.weights)
    if len(ours) != len(theirs):
        raise CnnvizError(
            f"the {what} of {model.name!r} has {len(ours)} weights, the model "
            f"{len(theirs)}: {way_out}"
        )
    pairs = []
    for a, b in zip(ours, theirs):
        if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            raise CnnvizError(
                f"the {what} of {model.name!r} does not pair weight {a.path} "
                f"({a.shape}, {a.dtype}) with {b.path} ({b.shape}, {b.dtype}): {way_out}"
            )
        pairs.append((a, _private(b, "_value")))
    for a, value in pairs:
        _private(a, "_value")  # the same attribute on the twin's side
        a._value = value  # share the model's tf.Variable (read-only use)
    return twin
