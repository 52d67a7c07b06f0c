"""Read intermediate values out of a model without changing it: the public side of
:mod:`.internals` (which does the reading).

A *tap* names a tensor inside a model: the output (or the input) of one layer, at any depth
of nesting.  :func:`extractor` builds a new ``keras.Model`` that shares the user's layers and
weights and returns the tapped tensors (and, if asked, the model's outputs).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from ...errors import CnnvizError
from .internals import LogitSource, Tap, build_extractor, last_layer, logit_source
from .introspect import get_layer
from .loading import as_keras_model

__all__ = ["LogitSource", "Tap", "extractor", "last_layer_path", "logit_source", "resolve_tap"]


def resolve_tap(model, layer, kind: str = "output") -> Tap:
    """A :class:`Tap` for a layer given by index, name, path or object."""
    if kind not in ("output", "input"):
        raise CnnvizError(f"tap kind must be 'output' or 'input', got {kind!r}")
    _, path = get_layer(model, layer)
    return Tap(path, kind)


def extractor(model, taps: Sequence[Tap], with_outputs: bool = True) -> keras.Model:
    """A model that returns the tapped tensors, then (optionally) the model's outputs.

    Args:
        model: a built ``keras.Model`` or ``LoadedModel``.
        taps: the tensors to read: :class:`Tap` objects, or layers (name, path, index
            or layer object) whose outputs are read (see :func:`resolve_tap`); one layer
            alone may be given without a list.
        with_outputs: also return the model's own outputs after the taps.

    Returns:
        A ``keras.Model`` sharing the user's layers (cached per model and taps). Calling it
        returns a list: one tensor per tap, in order, then the outputs.
    """
    keras_model = as_keras_model(model)
    if isinstance(taps, (Tap, str, int)) or isinstance(taps, keras.layers.Layer):
        taps = [taps]
    if not isinstance(taps, Sequence):
        raise CnnvizError(
            f"taps is a list of layers or Tap objects, got a {type(taps).__name__}: "
            'e.g. extractor(model, ["conv3"]) or [Tap("conv3", "input")]'
        )
    resolved = [t if isinstance(t, Tap) else resolve_tap(keras_model, t) for t in taps]
    return build_extractor(keras_model, resolved, with_outputs)


def last_layer_path(model) -> str:
    """Path of the layer that produces the (single) output, looking into nested models."""
    return last_layer(as_keras_model(model))[1]
