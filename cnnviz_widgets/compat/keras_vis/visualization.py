"""``vis.visualization.visualize_activation`` from keras-vis, on the compiled engine."""

from __future__ import annotations

import numpy as np

from ... import objectives as obj
from ...engine import PRESETS, as_keras_model, get_layer, optimize, wrap_model


def visualize_activation(
    model,
    layer_idx: int,
    filter_indices=None,
    wrt_tensor=None,
    seed_input=None,
    input_range=(0, 255),
    backprop_modifier=None,
    grad_modifier=None,
    act_max_weight: float = 1,
    lp_norm_weight: float = 10,
    tv_weight: float = 10,
    max_iter: int = 200,
    verbose: bool = False,
    seed: int = 0,
    **optimizer_params,
) -> np.ndarray:
    """The input that maximizes ``filter_indices`` of layer ``model.layers[layer_idx]``.

    As in keras-vis: for a Dense layer (such as ``predictions``) the indices are units
    (classes); for a conv layer they are filters; several indices are maximized together in
    one image.  Uses the ``"keras-vis"`` preset (pixels, Lp + total variation; keras-vis'
    default weights of 10 map to the preset's weights).

    Returns:
        ``(H, W, C)`` uint8 image.

    ``wrt_tensor``, ``seed_input``, ``backprop_modifier`` and ``grad_modifier`` are not
    supported and must be left at ``None``; ``input_range`` is accepted (the image is
    returned as uint8 0..255, as keras-vis did with its default range).
    """
    unsupported = {
        "wrt_tensor": wrt_tensor,
        "seed_input": seed_input,
        "backprop_modifier": backprop_modifier,
        "grad_modifier": grad_modifier,
    }
    given = [k for k, v in unsupported.items() if v is not None]
    if given:
        raise NotImplementedError(
            f"visualize_activation: {', '.join(given)} not supported in the compatibility "
            "module; use cnnviz_widgets.visualize with an objective instead"
        )
    keras_model = as_keras_model(model)
    layer, path = get_layer(keras_model, layer_idx)
    if filter_indices is None:
        filter_indices = [0]
    indices = list(np.atleast_1d(filter_indices))
    rank = len(layer.output.shape)
    make = obj.channel if rank == 4 else obj.neuron
    objective = sum(make(path, int(i)) for i in indices) * float(act_max_weight)
    preset = PRESETS["keras-vis"]
    run = optimize(
        wrap_model(keras_model),
        objective,
        preset=preset,
        steps=int(max_iter),
        tv=preset.tv * tv_weight / 10.0,
        lp=preset.lp * lp_norm_weight / 10.0,
        seed=seed,
        every=max(1, int(max_iter) // 10),
        preview=False,  # keras-vis printed the compiled run's iterations only
        **optimizer_params,
    )
    for frame in run:
        if verbose:
            print(f"Iteration: {frame.step}, objective: {float(frame.values[0]):.4f}")
    return run.result.images[0]
