"""The names of a model's outputs, and an ``output=`` (a name or an index) resolved
among them, with messages that list the outputs: what :mod:`.outputs` and the loading of
class names per output (:mod:`.loading`) share, below both."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from ...errors import CnnvizError, closest

__all__ = ["BY_OUTPUT", "OutputInfo", "names_by_output", "outputs_of", "resolve_output"]

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


def listing(infos: list[OutputInfo]) -> str:
    """The outputs in one line, for messages: ``0: 'cls' (None, 3); 1: 'reg' (None, 1)``."""
    return "; ".join(str(o) for o in infos)


def example_call(call: str | None, name: str) -> str:
    """``call`` (with ``{output}`` where the output goes) showing the output ``name``."""
    call = call or "cw.explain(model, image, output={output})"
    return call.format(output=repr(name))


def resolve_output(infos: list[OutputInfo], output, call: str | None) -> int:
    """The index of ``output`` among ``infos``; a message naming the outputs otherwise."""
    example = example_call(call, infos[0].name)
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
            + f". Its outputs: {listing(infos)}. Choose one by name or index, e.g. {example}"
        )
    if isinstance(output, (bool, np.bool_)) or not isinstance(output, (int, np.integer)):
        raise CnnvizError(
            f"output is the name or index of one of the model's outputs, got "
            f"{type(output).__name__} {output!r}. Its outputs: {listing(infos)}; e.g. {example}"
        )
    n = len(infos)
    if not -n <= int(output) < n:
        raise CnnvizError(
            f"output index {int(output)} is out of range: the model has {n} output"
            f"{'s' if n > 1 else ''} ({listing(infos)}), so use 0..{n - 1} or a name, "
            f"e.g. {example}"
        )
    return int(output) % n


def outputs_of(km: keras.Model) -> list[OutputInfo]:
    """The outputs of the Keras model ``km``, in ``km.outputs`` order, with the names
    ``output=`` takes (see :func:`~.outputs.model_outputs`)."""
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


def names_by_output(model: keras.Model, class_names: dict) -> dict[str, list[str]]:
    """``class_names`` given as ``{output: names}`` (an output by name or index), checked:
    every key an output, one name per unit of that output.  Keys become output names."""
    infos = outputs_of(model)
    out: dict[str, list[str]] = {}
    for key, names in class_names.items():
        info = infos[
            resolve_output(infos, key, "cw.load_model(model, class_names={{{output}: [...]}})")
        ]
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
