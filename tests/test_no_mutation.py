"""No engine call changes the user's model."""

import json

import keras
import pytest

import cnnviz_widgets as cw

from .helpers import assert_same_state, model_state


@pytest.mark.slow
def test_engine_calls_leave_model_untouched(vgg16):
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(64, 64, 3), alpha=0.35
    )
    model = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    for m, layer in ((vgg16.model, "block1_conv1"), (model, "expanded_conv_depthwise")):
        before = model_state(m)
        cw.load_model(m)
        table = cw.layer_table(m)
        json.dumps([r.to_dict() for r in table])
        cw.get_layer(m, layer)
        cw.first_conv_per_block(m)
        for view in ("auto", "channel", "mean", "maxabs"):
            for norm in ("filter", "layer", "symmetric"):
                cw.filter_montage(m, layer, view=view, normalization=norm, sort="norm")
        cw.filter_values(m, layer)
        assert_same_state(before, model_state(m))
