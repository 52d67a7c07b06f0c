"""Session: the one shared state of the panels (no browser, no kernel)."""

import keras
import numpy as np
import pytest
import traitlets

import cnnviz_widgets as cw
from cnnviz_widgets.errors import CnnvizError, LayerNotFoundError
from cnnviz_widgets.session import SelectionError, Session


@pytest.fixture
def session(shapes):
    return Session(shapes)


def test_session_is_not_a_widget_and_loads_from_a_name():
    s = Session("shapes")
    assert isinstance(s, traitlets.HasTraits)
    assert not hasattr(s, "comm")
    assert s.loaded.name == "shapes"
    assert (s.layer, s.channel, s.class_index) == (None, None, None)


def test_of_returns_the_same_session_or_makes_one(shapes, session):
    assert Session.of(session) is session
    made = Session.of(shapes)
    assert isinstance(made, Session) and made.loaded is shapes
    assert Session.of(shapes.model).model is shapes.model
    with pytest.raises(CnnvizError, match="already has its model"):
        Session.of(session, weights=None)


def test_table_is_computed_once(session):
    assert session.table is session.table
    assert [r.path for r in session.table] == [r.path for r in cw.layer_table(session.loaded)]


def test_layer_accepts_index_name_and_layer_object(session, shapes):
    session.layer = 3
    assert session.layer == "conv2"
    session.layer = "conv4"
    assert session.layer == "conv4"
    session.layer = shapes.model.get_layer("pool1")
    assert session.layer == "pool1"
    assert session.layer_row.class_name == "MaxPooling2D"
    session.layer = np.int64(1)
    assert session.layer == "conv1"


def test_unknown_layer_is_a_clear_error_and_changes_nothing(session):
    session.layer = "conv1"
    with pytest.raises(LayerNotFoundError, match="closest: conv"):
        session.layer = "conv9"
    with pytest.raises(LayerNotFoundError, match="10 top-level layers"):
        session.layer = 99
    with pytest.raises(LayerNotFoundError, match="float"):
        session.layer = 2.5
    assert session.layer == "conv1"


def test_nested_layers_are_stored_as_paths():
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")], name="inner"
    )
    outer = keras.Sequential(
        [keras.Input((8, 8, 3)), inner, keras.layers.Flatten(name="flatten")], name="o"
    )
    s = Session(outer)
    s.layer = "c"
    assert s.layer == "inner/c"
    s.layer = "inner/c/"
    assert s.layer == "inner/c"
    assert s.conv_layers == ["inner/c"]
    assert s.n_channels() == 4


def test_channel_is_checked_against_the_layer(session):
    session.layer = "conv2"
    assert session.n_channels() == 32
    session.channel = 31
    with pytest.raises(SelectionError, match=r"0\.\.31"):
        session.channel = 32
    with pytest.raises(SelectionError):
        session.channel = -1
    with pytest.raises(traitlets.TraitError):
        session.channel = "3"
    assert session.channel == 31
    session.channel = np.int32(4)
    assert session.channel == 4 and type(session.channel) is int


def test_channel_of_a_dense_layer_is_an_output_unit(session):
    session.layer = "predictions"
    assert session.n_channels() == 9
    session.channel = 8
    with pytest.raises(SelectionError):
        session.channel = 9


def test_changing_the_layer_clears_the_channel(session):
    session.select("conv1", 5)
    assert (session.layer, session.channel) == ("conv1", 5)
    session.layer = "conv1"  # the same layer: the channel stays
    assert session.channel == 5
    session.layer = "conv3"
    assert session.channel is None
    session.select("conv2", 7)
    assert session.channel == 7


def test_class_index_by_index_or_name(session):
    session.class_index = "circle"
    assert session.class_index == session.loaded.class_names.index("circle")
    assert session.class_name() == "circle"
    session.class_index = 8
    assert session.n_classes == 9
    with pytest.raises(SelectionError, match=r"0\.\.8"):
        session.class_index = 9
    with pytest.raises(SelectionError, match="closest: circle"):
        session.class_index = "circel"
    assert session.class_index == 8


def test_class_name_lookup_needs_class_names():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    s = Session(model)
    assert s.n_classes == 3
    s.class_index = 2
    with pytest.raises(SelectionError, match="no class names"):
        s.class_index = "cat"


def test_observers_see_each_change_once(session):
    seen = []
    session.observe(lambda c: seen.append((c["name"], c["new"])), names=["layer", "channel"])
    session.select("conv2", 3)
    session.layer = "conv2"
    assert seen == [("layer", "conv2"), ("channel", 3)]
    session.layer = "conv1"
    assert seen[-2:] == [("channel", None), ("layer", "conv1")]


def test_initial_selection_and_repr(shapes):
    s = Session(shapes, layer="conv2", channel=3, class_index="ring")
    assert (s.layer, s.channel, s.class_name()) == ("conv2", 3, "ring")
    assert "conv2" in repr(s)


def test_vgg16_nested_free_paths(vgg16):
    s = Session(vgg16)
    s.layer = 15
    assert s.layer == "block5_conv1"
    assert s.n_channels() == 512
    assert s.conv_layers[0] == "block1_conv1" and len(s.conv_layers) == 13
