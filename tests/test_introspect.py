import json

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw


def test_tutorial_block5_conv1_config(vgg16):
    """The values the keras-vis CNN-visualization tutorial prints for get_config()."""
    table = cw.layer_table(vgg16)
    row = table.row("block5_conv1")
    assert row.index == 15
    assert row.path == "block5_conv1"
    assert row.class_name == "Conv2D"
    cfg = row.config
    assert cfg["name"] == "block5_conv1"
    assert cfg["trainable"] is True
    assert cfg["filters"] == 512
    assert tuple(cfg["kernel_size"]) == (3, 3)
    assert tuple(cfg["strides"]) == (1, 1)
    assert cfg["padding"] == "same"
    assert cfg["data_format"] == "channels_last"
    assert tuple(cfg["dilation_rate"]) == (1, 1)
    assert cfg["activation"] == "relu"
    assert cfg["use_bias"] is True
    assert cfg["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert cfg["bias_initializer"]["class_name"] == "Zeros"
    for key in (
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "bias_constraint",
    ):
        assert key in cfg and cfg[key] is None
    assert row.output_shape == (None, 14, 14, 512)
    assert row.trainable_params == 3 * 3 * 512 * 512 + 512
    assert row.non_trainable_params == 0
    assert row.inbound == ("block4_pool",)
    json.dumps(row.to_dict())  # JSON-friendly


def test_tutorial_layer_ids(vgg16):
    table = cw.layer_table(vgg16)
    assert [table.row(i).name for i in (1, 4, 7, 11, 15)] == [
        "block1_conv1",
        "block2_conv1",
        "block3_conv1",
        "block4_conv1",
        "block5_conv1",
    ]
    assert cw.first_conv_per_block(vgg16) == [table.row(i).path for i in (1, 4, 7, 11, 15)]


def test_totals_match_keras(vgg16, shapes):
    for loaded in (vgg16, shapes):
        table = cw.layer_table(loaded)
        assert table.total_params == loaded.model.count_params()
        assert len(table) == len(loaded.model.layers)
        text = str(table)
        assert "total params" in text and loaded.model.layers[-1].name in text


@pytest.fixture(scope="module")
def nested(vgg16):
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    base.trainable = False
    model = keras.Sequential(
        [
            keras.Input((64, 64, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(10, activation="softmax", name="head"),
        ],
        name="transfer",
    )
    return model


def test_nested_model_lists_inner_layers_with_paths(nested):
    table = cw.layer_table(nested)
    paths = [r.path for r in table]
    assert paths[0] == "vgg16"
    assert paths[1].startswith("vgg16/input_layer")
    assert paths[2] == "vgg16/block1_conv1"
    assert paths[-2:] == ["gap", "head"]
    assert len(paths) == 1 + len(nested.layers[0].layers) + 2
    inner = table.row("vgg16/block5_conv1")
    assert inner.depth == 1
    assert inner.trainable_params == 0  # the frozen base
    assert inner.non_trainable_params == 3 * 3 * 512 * 512 + 512
    assert inner.output_shape == (None, 4, 4, 512)
    assert inner.inbound == ("block4_pool",)
    outer = table.row("vgg16")
    assert outer.is_model and outer.depth == 0
    assert outer.non_trainable_params == nested.layers[0].count_params()
    assert "block5_conv1" in outer.config["layers"]
    assert table.row("head").trainable_params == 512 * 10 + 10
    assert table.row("head").inbound == ("gap",)
    assert table.total_params == nested.count_params()
    assert table.trainable_params == 512 * 10 + 10
    # the engine finds inner layers by name or path
    layer, path = cw.get_layer(nested, "block5_conv1")
    assert path == "vgg16/block5_conv1" and layer is nested.layers[0].get_layer("block5_conv1")


def test_keras_file_round_trip_gives_same_table(tmp_path, shapes, nested):
    for model in (shapes.model, nested):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = cw.load_model(path)
        assert loaded.source == str(path)
        before = [_saved_fields(r) for r in cw.layer_table(model)]
        after = [_saved_fields(r) for r in cw.layer_table(loaded)]
        assert after == before


def _saved_fields(row):
    # Keras does not save an InputLayer's `trainable` flag (it has no weights, so the flag
    # means nothing); every other field must survive the round trip.
    d = row.to_dict()
    if row.class_name == "InputLayer":
        d.pop("trainable")
    return d


def test_h5_file_loads(tmp_path, shapes):
    path = tmp_path / "shapes.h5"
    shapes.model.save(path)
    loaded = cw.load_model(str(path))
    assert [r.name for r in cw.layer_table(loaded)] == [r.name for r in cw.layer_table(shapes)]


def test_multi_input_model():
    a = keras.Input((32, 32, 3), name="rgb")
    b = keras.Input((32, 32, 1), name="depth")
    xa = keras.layers.Conv2D(4, 3, name="conv_rgb")(a)
    xb = keras.layers.Conv2D(4, 3, name="conv_depth")(b)
    x = keras.layers.Concatenate(name="merge")([xa, xb])
    out = keras.layers.Dense(2, name="out")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model([a, b], out)
    loaded = cw.load_model(model)
    assert loaded.input_shape == [(32, 32, 3), (32, 32, 1)]
    table = cw.layer_table(model)
    assert table.row("merge").inbound == ("conv_rgb", "conv_depth")
    assert table.row("conv_depth").inbound == ("depth",)
    assert loaded.softmax is None


def test_unknown_layer_names_closest(vgg16):
    with pytest.raises(cw.LayerNotFoundError) as err:
        cw.get_layer(vgg16, "block5_conv")
    assert "block5_conv1" in str(err.value) and "layer_table" in str(err.value)
    with pytest.raises(cw.LayerNotFoundError) as err:
        cw.layer_table(vgg16).row("blok1_conv1")
    assert "block1_conv1" in str(err.value)
    with pytest.raises(cw.LayerNotFoundError) as err:
        cw.get_layer(vgg16, 99)
    assert "0..22" in str(err.value)
    assert cw.get_layer(vgg16, -1)[1] == "predictions"
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)


def test_jsonable_handles_numpy_and_nan():
    from cnnviz_widgets.engine.model.introspect import jsonable

    out = jsonable({"a": np.float32(1.5), "b": np.arange(3), "c": (1, 2), "d": float("nan")})
    assert out == {"a": 1.5, "b": [0, 1, 2], "c": (1, 2), "d": "nan"}
    json.dumps(out)


def test_a_loaded_model_is_not_checked_again_inside_the_engine(shapes, monkeypatch):
    from cnnviz_widgets.engine.model import loading as models

    calls = []
    check = models.check_built
    monkeypatch.setattr(models, "check_built", lambda m: calls.append(m) or check(m))
    image = cw.sample_image("ring")
    cw.grad_cam(shapes, image, layer="conv2")
    cw.feature_maps(shapes, image, "conv2")
    cw.filter_montage(shapes, "conv1")
    cw.optimize(shapes, cw.objectives.channel("conv3", 1), steps=1)
    assert calls == []  # converted and checked once, by load_model
    cw.get_layer(shapes.model, "conv2")  # a bare keras.Model at a public door: checked
    assert len(calls) == 1
