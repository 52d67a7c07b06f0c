"""Read intermediate values out of a model without changing it.

A *tap* names a tensor inside a model: the output (or the input) of one layer, at any depth
of nesting.  :func:`extractor` builds a new ``keras.Model`` that shares the user's layers and
weights and returns the tapped tensors (and, if asked, the model's outputs).  Building it
only reads the model's graph: no layer is called, so the user's model gets no new nodes,
hooks, or changed activations.

For a layer inside a nested model (a pretrained base inside a Sequential, say), the inner
model's graph is tapped first and that inner extractor is then applied to the tensor that
feeds the nested model in the outer graph.  When the outer model's outputs are requested
too, the nested model runs twice (once for the taps, once on the original path); the taps
alone never do.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import keras

from ..errors import CnnvizError
from .introspect import get_layer
from .models import as_keras_model


@dataclass(frozen=True)
class Tap:
    """A tensor inside a model.

    Attributes:
        path: the layer's full path (``"vgg16/block5_conv1"``); see ``get_layer``.
        kind: ``"output"`` (the layer's output) or ``"input"`` (its input).
    """

    path: str
    kind: str = "output"


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def resolve_tap(model, layer, kind: str = "output") -> Tap:
    """A :class:`Tap` for a layer given by index, name, path or object."""
    if kind not in ("output", "input"):
        raise CnnvizError(f"tap kind must be 'output' or 'input', got {kind!r}")
    _, path = get_layer(model, layer)
    return Tap(path, kind)


def _graph_nodes(model: keras.Model) -> list:
    """The nodes of a Functional (or built Sequential) model's own graph.

    Keras keeps these in the private ``_nodes_by_depth``; a Sequential keeps its graph in an
    internal Functional.  Only read here, never changed.
    """
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None) or {}
    return [node for nodes in by_depth.values() for node in nodes]


def _input_in_graph(outer: keras.Model, inner: keras.Model):
    """The symbolic tensor(s) that feed ``inner`` inside ``outer``'s graph."""
    nodes = _graph_nodes(outer)
    for node in inner._inbound_nodes:
        if any(node is n for n in nodes):
            args = node.input_tensors
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
    """A keras.Model: model inputs -> [tap tensors in order] (+ model outputs)."""
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


def extractor(model, taps: Sequence[Tap], with_outputs: bool = True) -> keras.Model:
    """A model that returns the tapped tensors, then (optionally) the model's outputs.

    Args:
        model: a built ``keras.Model`` or ``LoadedModel``.
        taps: the tensors to read, as :class:`Tap` objects (see :func:`resolve_tap`).
        with_outputs: also return the model's own outputs after the taps.

    Returns:
        A ``keras.Model`` sharing the user's layers (cached per model and taps). Calling it
        returns a list: one tensor per tap, in order, then the outputs.
    """
    model = as_keras_model(model)
    key = (tuple(taps), bool(with_outputs))
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        parsed = [(tuple(t.path.split("/")), t.kind) for t in taps]
        if not parsed and not with_outputs:
            raise CnnvizError("an extractor needs at least one tap or the outputs")
        per_model[key] = _build(model, parsed, with_outputs)
    return per_model[key]


def last_layer_path(model) -> str:
    """Path of the layer that produces the (single) output, looking into nested models."""
    model = as_keras_model(model)
    parts = []
    layer = model
    while isinstance(layer, keras.Model):
        layer = layer.layers[-1]
        parts.append(layer.name)
    return "/".join(parts)


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
            f"the model has {len(model.outputs)} outputs; class objectives need one. Use a "
            "channel or neuron objective, or a model with a single output"
        )
    path = last_layer_path(model)
    if loaded.softmax is None:
        return LogitSource(Tap(path, "output"))  # the output already is the score
    if loaded.softmax == "layer":
        return LogitSource(Tap(path, "input"))  # the input of the Softmax layer
    layer, _ = get_layer(model, path)
    if isinstance(layer, keras.layers.Dense):
        return LogitSource(Tap(path, "input"), dense_path=path)
    raise CnnvizError(
        f"the last layer {path!r} ({type(layer).__name__}) applies the softmax itself, so its "
        "logits cannot be read without changing the model: use "
        "objectives.class_probability instead of class_logit"
    )
