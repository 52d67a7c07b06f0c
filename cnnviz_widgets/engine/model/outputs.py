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
from dataclasses import replace

import keras

from ...errors import CnnvizError
from .loading import LoadedModel, as_loaded, softmax_position
from .output_names import BY_OUTPUT, OutputInfo, example_call, listing, outputs_of, resolve_output

__all__ = ["OutputInfo", "model_outputs", "output_view", "select_output"]


def _keras(model) -> keras.Model:
    return model.model if isinstance(model, LoadedModel) else as_loaded(model).model


def model_outputs(model) -> list[OutputInfo]:
    """The outputs of ``model`` (a ``LoadedModel``, a built ``keras.Model`` or anything
    ``load_model`` takes), in ``model.outputs`` order, with the names ``output=`` takes."""
    return outputs_of(_keras(model))


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
    index = resolve_output(infos, output, None)
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
            f"the model {loaded.model.name!r} has {len(infos)} outputs ({listing(infos)}); "
            f"{what} read one: choose it with output= (a name or an index), e.g. "
            f"{example_call(call, infos[0].name)}"
        )
    if len(infos) == 1:
        chosen = getattr(loaded, "output", None)
        if not (isinstance(output, str) and output == chosen):
            resolve_output(infos, output, call)  # checked: the one output, by name or index
        return loaded
    index = resolve_output(infos, output, call)
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
