"""Several optimization settings in a row: each configuration is traced once, a new class or
channel not at all, and TensorFlow logs no "retracing" warning."""

import logging

import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.model import precision


@pytest.fixture(autouse=True)
def no_reduced_precision_hardware(monkeypatch):
    """The trace counts here are of float32 steps: "auto" runs as on a CPU without fast
    bfloat16 (simulated). On one with it, "auto" may first probe a bfloat16 step as well;
    tests/test_precision.py checks that the probe's steps are the ones the run then uses."""
    monkeypatch.setattr(precision, "hardware_precisions", lambda: ((), "simulated: none"))


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def tf_log():
    """What TensorFlow's Python logger warns about during the test."""
    logger = logging.getLogger("tensorflow")
    recorder = Recorder()
    logger.addHandler(recorder)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)


def test_new_settings_trace_once_and_warn_of_no_retracing(tf_log):
    model = cw.load_model("shapes")  # its own model: its own tracing count
    settings = [
        (0, {}),  # "auto": the robust model's own recipe, "robust"
        (0, {"preset": "lucid"}),
        (0, {"preset": "tf-keras-vis"}),
        (0, {"preset": "keras-vis"}),
        (0, {"preset": "maco"}),
        (0, {"batch": 2}),
        (0, {"param": "pixels"}),
        (obj.channel("conv3", 0), {}),
        (obj.neuron("conv3", 1), {}),
        (range(3), {}),
    ]
    for k, (objective, kwargs) in enumerate(settings):
        cw.visualize(model, objective, steps=1, **kwargs)
        assert optvis.step_tracing_count(model) == k + 1, (objective, kwargs)
    # the same configurations with other classes, channels, seeds, steps, lr: no trace
    cw.visualize(model, 5, steps=2, seed=3, lr=0.01)
    cw.visualize(model, obj.channel("conv3", 7), steps=1)
    cw.visualize(model, [6, 7, 8], steps=1, preset="robust")  # what "auto" chose
    cw.visualize(model, 4, steps=1, preset="lucid", seed=8)
    assert optvis.step_tracing_count(model) == len(settings)
    retracing = [m for m in tf_log if "retracing" in m]
    assert not retracing, retracing
