"""``vis.utils.utils`` from keras-vis: find_layer_idx and apply_modifications."""

from __future__ import annotations

import keras

from ...engine import as_keras_model, get_layer


def find_layer_idx(model: keras.Model, layer_name: str) -> int:
    """The index in ``model.layers`` of the layer called ``layer_name``.

    Raises ``LayerNotFoundError`` (a ``ValueError``) listing the closest names.
    """
    model = as_keras_model(model)
    layer, _ = get_layer(model, layer_name)
    for i, candidate in enumerate(model.layers):
        if candidate is layer:
            return i
    raise AssertionError("get_layer returned a nested layer for a top-level name")


def _activation_name(fn) -> str | None:
    try:
        return keras.activations.serialize(fn)
    except Exception:
        return None


def apply_modifications(model: keras.Model, custom_objects: dict | None = None) -> keras.Model:
    """A new model in which changes made to layer objects take effect.

    keras-vis users write ``model.layers[i].activation = activations.linear`` and then call
    this.  Keras builds a layer's computation from its config, so the change only counts in
    a model rebuilt from the layers' *current* activations: this builds that model (same
    architecture, a copy of the weights) and returns it.  Unlike keras-vis it does not save
    and reload anything, and it leaves ``model`` as it is.

    Args:
        model: a built ``keras.Model``.
        custom_objects: accepted for keras-vis compatibility (not needed: nothing is
            deserialized from disk).
    """
    model = as_keras_model(model)

    def rebuild(layer):
        config = layer.get_config()
        current = getattr(layer, "activation", None)
        if current is not None and "activation" in config:
            name = _activation_name(current)
            if name is not None:
                config["activation"] = name
        return type(layer).from_config(config)

    clone = keras.models.clone_model(model, clone_function=rebuild)
    clone.set_weights(model.get_weights())
    return clone
