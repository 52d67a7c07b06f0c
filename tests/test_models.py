import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model.loading import wrap_model
from cnnviz_widgets.engine.model.shapes import CLASS_NAMES, generate_shapes


def test_embedded_model_describes_itself(shapes):
    assert shapes.name == "shapes"
    assert shapes.class_names == list(CLASS_NAMES) and len(CLASS_NAMES) >= 8
    assert shapes.preprocessing.name == "unit"
    assert shapes.softmax == "activation" and shapes.output_is_softmax
    assert shapes.input_shape == (64, 64, 3)
    assert "shapes" in repr(shapes)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shapes", "shapes-robust", "shapes-standard"])
def test_embedded_model_accuracy_on_fresh_images(name):
    """A test set the training never drew (training used seeds 0..10_000 and 20261128)."""
    loaded = cw.load_model(name)
    test = generate_shapes(1800, seed=424242)
    probs = loaded.model.predict(loaded.preprocessing(test.images), batch_size=200, verbose=0)
    accuracy = float(np.mean(probs.argmax(1) == test.labels))
    per_class = [float(np.mean(probs.argmax(1)[test.labels == c] == c)) for c in range(9)]
    assert accuracy >= 0.98, (accuracy, per_class)
    assert min(per_class) >= 0.9, per_class


@pytest.mark.parametrize("variant", ["robust", "standard"])
def test_embedded_weights_file_is_small(variant):
    from importlib import resources

    from cnnviz_widgets.engine.model.embedded import weights_file

    size = resources.files("cnnviz_widgets.data").joinpath(weights_file(variant)).stat().st_size
    assert size <= 2 * 1024 * 1024


def test_each_load_is_a_fresh_model(shapes):
    again = cw.load_model("shapes")
    assert again.model is not shapes.model


def test_application_without_weights(vgg16):
    assert vgg16.preprocessing.name == "caffe"
    assert vgg16.class_names is not None and len(vgg16.class_names) == 1000
    assert vgg16.class_names[385] == "Indian_elephant"
    assert vgg16.softmax == "activation"
    assert vgg16.input_shape == (224, 224, 3)


def test_imagenet_class_names_ship_with_package():
    names = cw.imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet_tissue"
    from cnnviz_widgets.engine.model.loading import imagenet_wnids

    assert imagenet_wnids()[385] == "n02504013"


def test_application_offline_error_says_what_works(monkeypatch):
    # Simulate the download failure keras raises without a network, whatever the cache holds.
    import keras.src.utils.file_utils as file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/x.h5: None -- no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(cw.ModelSourceError) as err:
        cw.load_model("mobilenet_v2")
    msg = str(err.value)
    assert "ImageNet weights" in msg and "weights=None" in msg and "weights file" in msg


def test_application_weights_file_missing():
    with pytest.raises(cw.ModelSourceError, match="no weights file"):
        cw.load_model("vgg16", weights="/nowhere/vgg16.h5")


def test_unknown_model_name_lists_known_ones():
    with pytest.raises(cw.ModelSourceError) as err:
        cw.load_model("vgg61")
    msg = str(err.value)
    assert "vgg16" in msg and "shapes" in msg and "resnet50" in msg and "did you mean" in msg


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(cw.ModelSourceError, match="no model file"):
        cw.load_model(tmp_path / "missing.keras")
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(cw.ModelSourceError, match="corrupt") as err:
        cw.load_model(str(bad))
    assert "Traceback" not in str(err.value)
    with pytest.raises(cw.ModelSourceError, match="directory"):
        cw.load_model(tmp_path)


def test_model_not_built():
    model = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.Dense(2)])
    for call in (cw.load_model, cw.layer_table, lambda m: cw.filter_montage(m, 0)):
        with pytest.raises(cw.ModelNotBuiltError, match=r"keras\.Input"):
            call(model)


def test_not_a_model():
    with pytest.raises(cw.ModelSourceError, match="cannot load a model from a int"):
        cw.load_model(3)


def test_softmax_positions():
    inputs = keras.Input((8,))
    dense = keras.layers.Dense(3)(inputs)
    as_layer = keras.Model(inputs, keras.layers.Softmax()(dense))
    as_activation = keras.Model(inputs, keras.layers.Activation("softmax")(dense))
    logits = keras.Model(inputs, dense)
    assert cw.softmax_position(as_layer) == "layer"
    assert cw.softmax_position(as_activation) == "layer"
    assert cw.softmax_position(logits) is None
    nested = keras.Sequential([keras.Input((8,)), as_activation])
    assert cw.softmax_position(nested) == "layer"


def test_preprocessing_round_trips():
    x = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3)).astype(np.float32)
    for p in cw.PREPROCESSINGS.values():
        np.testing.assert_allclose(p.invert(p(x)), x, atol=1e-5)
    caffe = cw.PREPROCESSINGS["caffe"](x)
    np.testing.assert_allclose(caffe[..., 0], x[..., 2] * 255 - 103.939, rtol=1e-5)
    import tensorflow as tf

    np.testing.assert_allclose(cw.PREPROCESSINGS["caffe"](tf.constant(x)).numpy(), caffe, rtol=1e-6)


def test_overrides_and_guess():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(x))
    assert cw.load_model(model).preprocessing.name == "raw"
    loaded = cw.load_model(model, preprocessing="tf", class_names=["a", "b"])
    assert loaded.preprocessing.name == "tf" and loaded.class_names == ["a", "b"]
    with pytest.raises(cw.CnnvizError, match="unknown preprocessing"):
        cw.load_model(model, preprocessing="nope")


def test_class_names_of_the_wrong_length_are_refused(shapes):
    names = list(CLASS_NAMES)
    for wrong in (names[:-1], [*names, "extra"], []):
        message = rf"class_names has {len(wrong)} names but the model .* has 9 classes"
        with pytest.raises(cw.CnnvizError, match=message):
            cw.load_model("shapes", class_names=wrong)
        with pytest.raises(cw.CnnvizError, match=message):
            wrap_model(shapes.model, class_names=wrong)
    with pytest.raises(cw.CnnvizError, match="one string"):
        cw.load_model("shapes", class_names="circle square")
    renamed = [n.upper() for n in names]
    loaded = cw.load_model("shapes", class_names=renamed)
    top = cw.predict_top(loaded, generate_shapes(1, seed=0).images[0])
    assert loaded.class_names == renamed and top.class_name in renamed


def test_a_raw_keras_application_gets_imagenet_names():
    """keras.applications.VGG16(weights=None), built by the user and passed as a model,
    gets ImageNet's class names as load_model("vgg16") does; a model that only shares
    the name, or has another head, keeps numbered classes."""
    raw = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3))
    loaded = cw.load_model(raw)
    assert loaded.class_names == cw.imagenet_class_names() and loaded.class_names[0] == "tench"
    inputs = keras.Input((8,))
    lookalike = keras.Model(inputs, keras.layers.Dense(1000, name="scores")(inputs), name="vgg16")
    assert cw.load_model(lookalike).class_names is None
    ten = keras.applications.VGG16(weights=None, input_shape=(32, 32, 3), classes=10)
    assert cw.load_model(ten).class_names is None


def test_an_image_preprocessed_to_minus_one_one_gets_a_message():
    """An image already preprocessed to [-1, 1] (as MobileNet's preprocess_input gives)
    is refused with the range and the way back, in every path an image takes."""
    from cnnviz_widgets.engine.model.imageio import as_image, as_image_batch

    image = cw.sample_image("cross", seed=1)
    signed = image * 2 - 1
    with pytest.raises(cw.CnnvizError, match=r"\[-1, 1\].*\(x \+ 1\) / 2"):
        as_image(signed)
    with pytest.raises(cw.CnnvizError, match=r"\[-1, 1\]"):
        as_image_batch(signed[None])
    with pytest.raises(cw.CnnvizError, match=r"\[-1, 1\]"):
        cw.predict_top(cw.load_model("shapes"), signed)
    # a display image a little below 0 in a few pixels (a resize's overshoot) is fine
    nudged = image.copy()
    nudged[:2] = -0.04  # 3 % of the values
    assert as_image(nudged, warn=False)[0].min() == 0.0
    back, _ = as_image((signed + 1) / 2)
    np.testing.assert_allclose(back, image, atol=1e-6)
