"""The versions the package allows are the versions it is tested with, and a Keras release
that changed the private API internals.py reads gives a message naming the version and the
way out, not an AttributeError deep inside."""

from __future__ import annotations

import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model import internals

PYPROJECT = pathlib.Path(__file__).parents[1] / "pyproject.toml"
TESTED_TENSORFLOW = "2.21"


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _floor(package: str) -> str:
    found = re.search(rf'"{package}>=([0-9.]+)"', PYPROJECT.read_text())
    assert found, f"pyproject.toml has no {package}>= floor"
    return found.group(1)


def test_the_floors_are_the_oldest_tested_versions():
    lo, hi = internals.TESTED_KERAS
    assert _minor(_floor("keras")) == _minor(lo)
    assert _minor(_floor("tensorflow")) == _minor(TESTED_TENSORFLOW)
    # the suite runs on a version it says it is tested with: a newer Keras must be added
    # to TESTED_KERAS (after this suite passed on it), an older one is refused by pip
    assert _minor(lo) <= _minor(keras.__version__) <= _minor(hi), keras.__version__
    assert _minor(tf.__version__) >= _minor(TESTED_TENSORFLOW), tf.__version__


def _wrapped():
    """A fresh model whose layers sit inside a nested model (read through its graph)."""
    inner = cw.load_model("shapes").model
    return keras.Sequential([keras.Input((64, 64, 3)), inner], name="wrapper"), inner


def _defining_class(model, name: str) -> type:
    """The class in the model's hierarchy that defines ``name``."""
    return next(c for c in type(model).__mro__ if name in vars(c))


def _says_version_and_way_out(err: pytest.ExceptionInfo) -> None:
    text = str(err.value)
    assert f"Keras {keras.__version__}" in text
    lo, hi = internals.TESTED_KERAS
    assert f"tested with Keras {lo} to {hi}" in text
    assert "pip install 'keras>=" in text


@pytest.fixture
def image():
    return cw.generate_shapes(1, seed=3).images[0]


def test_a_missing_private_graph_method_names_the_keras_version(monkeypatch, image):
    wrapper, inner = _wrapped()
    monkeypatch.delattr(_defining_class(inner, "_run_through_graph"), "_run_through_graph")
    with pytest.raises(cw.CnnvizError, match=r"has no .*\._run_through_graph") as err:
        cw.feature_maps(wrapper, image, "shapes_cnn/conv2")
    _says_version_and_way_out(err)


def test_a_missing_private_node_attribute_names_the_keras_version(monkeypatch):
    # the optimizer finds where the nested model is called through its inbound nodes
    wrapper, inner = _wrapped()
    monkeypatch.delattr(inner, "_inbound_nodes")
    with pytest.raises(cw.CnnvizError, match=r"has no Functional\._inbound_nodes") as err:
        cw.visualize(wrapper, cw.objectives.channel("shapes_cnn/conv2", 0), steps=1)
    _says_version_and_way_out(err)


def test_a_changed_private_signature_names_the_keras_version(monkeypatch, image):
    wrapper, inner = _wrapped()
    owner = _defining_class(inner, "_run_through_graph")
    original = owner._run_through_graph

    def renamed(self, inputs, *args, **kwargs):
        # as if a Keras release renamed the argument (and its own callers): only our call,
        # whose function is named operation_fn (Keras passes lambdas), meets the new name
        if getattr(kwargs.get("operation_fn"), "__name__", "") == "operation_fn":
            raise TypeError("got an unexpected keyword argument 'operation_fn'")
        return original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(owner, "_run_through_graph", renamed)
    with pytest.raises(cw.CnnvizError, match=r"changed Functional\._run_through_graph") as err:
        cw.feature_maps(wrapper, image, "shapes_cnn/conv2")
    _says_version_and_way_out(err)
    monkeypatch.undo()
    # the same call works with the real Keras: nothing broken was cached
    got = cw.feature_maps(wrapper, image, "shapes_cnn/conv2")
    np.testing.assert_allclose(got.maps, cw.feature_maps(inner, image, "conv2").maps, atol=1e-5)
