"""Models with several outputs: which output a class explanation reads.

Channel and neuron objectives, feature maps and layer rankings read layers, not outputs, so
they work on any model.  What reads class scores (class objectives, every attribution
method, class rankings, predictions) reads *one* output: ``output=`` names it (the output's
name, which is the key of a dict output or else the output layer's name, or its index), and
:func:`select_output` gives the engine a single-output view of the model for it: a
``keras.Model`` from the model's inputs to that output, built from the model's own graph (the
same layer objects, so the same weights; no layer is called, so the user's model gets no new
node), cached per model and output so that repeated calls reuse the view and its compiled
functions.  Every entry point that reads class scores goes through :func:`select_output`.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, replace

import keras
import numpy as np

from ...errors import CnnvizError, closest
from .loading import LoadedModel, as_loaded, softmax_position

__all__ = ["OutputInfo", "model_outputs", "output_view", "select_output"]

BY_OUTPUT = "output_class_names"
"""The ``LoadedModel.metadata`` key of the class names given per output (a dict)."""


@dataclass(frozen=True)
class OutputInfo:
    """One output of a model.

    Attributes:
        index: its position in ``model.outputs`` (what ``output=<int>`` means).
        name: what ``output=<str>`` takes: the key of a dict output, else the name of the
            layer that produces it.
        layer: the name of the layer that produces it (also accepted by ``output=``).
        shape: its shape, batch axis first (``(None, 3)``).
    """

    index: int
    name: str
    layer: str
    shape: tuple

    def __str__(self) -> str:
        alias = f", layer {self.layer!r}" if self.layer != self.name else ""
        return f"{self.index}: {self.name!r} {self.shape}{alias}"


def _keras(model) -> keras.Model:
    return model.model if isinstance(model, LoadedModel) else as_loaded(model).model


def model_outputs(model) -> list[OutputInfo]:
    """The outputs of ``model`` (a ``LoadedModel``, a built ``keras.Model`` or anything
    ``load_model`` takes), in ``model.outputs`` order, with the names ``output=`` takes."""
    km = _keras(model)
    tensors = list(km.outputs)
    layer_names = list(getattr(km, "output_names", None) or [])
    if len(layer_names) != len(tensors):  # a Sequential model: its last layer
        layer_names = [km.layers[-1].name] if len(tensors) == 1 and km.layers else []
        layer_names += [f"output_{i}" for i in range(len(layer_names), len(tensors))]
    keys: dict[int, str] = {}
    struct = getattr(km, "output", None)
    if isinstance(struct, dict):
        keys = {id(t): str(k) for k, t in struct.items()}
    return [
        OutputInfo(i, keys.get(id(t), layer_names[i]), layer_names[i], tuple(t.shape))
        for i, t in enumerate(tensors)
    ]


def _listing(infos: list[OutputInfo]) -> str:
    return "; ".join(str(o) for o in infos)


def _example(call: str | None, name: str) -> str:
    call = call or "cw.explain(model, image, output={output})"
    return call.format(output=repr(name))


def _resolve(infos: list[OutputInfo], output, call: str | None) -> int:
    """The index of ``output`` among ``infos``; a message naming the outputs otherwise."""
    example = _example(call, infos[0].name)
    if isinstance(output, str):
        for o in infos:
            if output == o.name:
                return o.index
        for o in infos:
            if output == o.layer:
                return o.index
        hint = closest(output, [o.name for o in infos] + [o.layer for o in infos])
        raise CnnvizError(
            f"the model has no output {output!r}"
            + (f" (did you mean {', '.join(map(repr, hint))}?)" if hint else "")
            + f". Its outputs: {_listing(infos)}. Choose one by name or index, e.g. {example}"
        )
    if isinstance(output, (bool, np.bool_)) or not isinstance(output, (int, np.integer)):
        raise CnnvizError(
            f"output is the name or index of one of the model's outputs, got "
            f"{type(output).__name__} {output!r}. Its outputs: {_listing(infos)}; e.g. {example}"
        )
    n = len(infos)
    if not -n <= int(output) < n:
        raise CnnvizError(
            f"output index {int(output)} is out of range: the model has {n} output"
            f"{'s' if n > 1 else ''} ({_listing(infos)}), so use 0..{n - 1} or a name, "
            f"e.g. {example}"
        )
    return int(output) % n


def names_by_output(model: keras.Model, class_names: dict) -> dict[str, list[str]]:
    """``class_names`` given as ``{output: names}`` (an output by name or index), checked:
    every key an output, one name per unit of that output.  Keys become output names."""
    infos = model_outputs(model)
    out: dict[str, list[str]] = {}
    for key, names in class_names.items():
        info = infos[_resolve(infos, key, "cw.load_model(model, class_names={{{output}: [...]}})")]
        if isinstance(names, (str, bytes)) or names is None:
            raise CnnvizError(
                f"class_names[{key!r}] is {names!r}: give a list with one name per class"
            )
        names = [str(c) for c in names]
        width = info.shape[-1] if len(info.shape) == 2 else None
        if width is not None and len(names) != width:
            raise CnnvizError(
                f"class_names[{key!r}] has {len(names)} names but the output {info.name!r} "
                f"has {width} units (shape {info.shape}): give one name per unit"
            )
        out[info.name] = names
    return out


_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def output_view(model, output) -> keras.Model:
    """A ``keras.Model`` from ``model``'s inputs to its one output ``output`` (a name or
    an index, see :func:`model_outputs`), sharing ``model``'s layers and weights.

    Built from the model's graph (no layer is called: the model is not changed), once per
    model and output: repeated calls return the same view, so what is compiled for it
    (attribution functions, optimization steps, reduced-precision twins) is reused.  For
    a model with one output, the model itself.
    """
    km = _keras(model)
    infos = model_outputs(km)
    index = _resolve(infos, output, None)
    if len(infos) == 1:
        return km
    with _LOCK:
        per_model = _VIEWS.setdefault(km, {})
        view = per_model.get(index)
        if view is None:
            inputs = km.inputs[0] if len(km.inputs) == 1 else km.inputs
            view = keras.Model(inputs, km.outputs[index], name=f"{km.name}_{infos[index].name}")
            per_model[index] = view
    return view


def select_output(
    model, output=None, *, call: str | None = None, what: str = "class explanations"
) -> LoadedModel:
    """``model`` as a ``LoadedModel`` with the one output ``output``: what every class
    explanation (class objectives, attribution methods, class rankings) works on.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        output: the output to read: its name (the key of a dict output, or the output
            layer's name) or its index in ``model.outputs``.  Needed when the model has
            several outputs; optional (and checked) when it has one.
        call: the call to show in messages, with ``{output}`` where the output goes
            (``"cw.grad_cam(model, image, output={output})"``).
        what: what needs one output, for messages.

    Returns:
        The ``LoadedModel`` itself for a one-output model; else the same description
        around :func:`output_view` (same preprocessing and metadata), whose class names
        are those given for that output (``load_model(m, class_names={"cls": [...]})``),
        else the model's when their number matches the output's width (else unknown), and
        whose ``softmax`` is the selected output's.  The user's model is not changed.

    Raises:
        CnnvizError: several outputs and no ``output``, or an unknown name or an index
            out of range; the message lists the outputs (index, name, shape) and shows
            the call with ``output=``.
    """
    loaded = as_loaded(model)
    infos = model_outputs(loaded)
    if output is None:
        if len(infos) == 1:
            return loaded
        raise CnnvizError(
            f"the model {loaded.model.name!r} has {len(infos)} outputs ({_listing(infos)}); "
            f"{what} read one: choose it with output= (a name or an index), e.g. "
            f"{_example(call, infos[0].name)}"
        )
    if len(infos) == 1:
        chosen = getattr(loaded, "output", None)
        if not (isinstance(output, str) and output == chosen):
            _resolve(infos, output, call)  # checked: the one output, by name or index
        return loaded
    index = _resolve(infos, output, call)
    view = output_view(loaded.model, index)
    width = infos[index].shape[-1] if len(infos[index].shape) == 2 else None
    names = (loaded.metadata.get(BY_OUTPUT) or {}).get(infos[index].name)
    if names is None and loaded.class_names and len(loaded.class_names) == width:
        names = loaded.class_names
    return replace(
        loaded,
        model=view,
        name=f"{loaded.name}[{infos[index].name}]",
        class_names=names,
        softmax=softmax_position(view),
        source=f"{loaded.source}, output {infos[index].name!r}",
        output=infos[index].name,
    )
