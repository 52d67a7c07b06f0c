"""A run too big for memory is refused before it starts, with the estimate and the way out;
a long one warns; the estimates count what the layers hold and compute."""

import math
import threading
import warnings

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.model import budget
from cnnviz_widgets.engine.optvis import step

MB = 1024**2


@pytest.fixture
def little_memory(monkeypatch):
    """The machine has 40 MB available (as if the notebook had filled the rest)."""
    monkeypatch.setattr(budget, "available_memory", lambda: 40 * MB)


@pytest.fixture
def image():
    return cw.generate_shapes(1, seed=5).images[0]


def test_vgg16_costs_are_those_counted_by_hand(vgg16):
    # (output side, channels) of VGG16's 13 convolutions (3x3, same padding), 224 px
    convs = [(224, 64), (224, 64), (112, 128), (112, 128)]
    convs += [(56, 256)] * 3 + [(28, 512)] * 3 + [(14, 512)] * 3
    pools = [(112, 64), (56, 128), (28, 256), (14, 512), (7, 512)]
    dense = [(25088, 4096), (4096, 4096), (4096, 1000)]
    elements = sum(s * s * c for s, c in convs + pools) + 25088 + 4096 + 4096 + 1000
    cin = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512]
    macs = sum(9 * i * s * s * c for i, (s, c) in zip(cin, convs))
    macs += sum(i * o for i, o in dense)
    costs = budget._costs(vgg16.model, (224, 224))
    assert costs.activations == 4 * elements  # float32 outputs of every layer
    assert costs.widest == 4 * 224 * 224 * 64
    conv_dense_flops = 2 * macs
    assert conv_dense_flops <= costs.flops <= conv_dense_flops * 1.01  # + relu, pooling
    assert round(conv_dense_flops / 1e9, 1) == 30.9  # VGG16's well-known 15.5 GMACs
    weights = sum(int(np.prod(w.shape)) for w in vgg16.model.weights)
    assert costs.weights == 4 * weights == 4 * 138_357_544


def test_an_optimization_too_big_for_memory_is_refused_before_anything_is_made(
    shapes, little_memory
):
    traced = optvis.step_tracing_count(shapes)
    with pytest.raises(cw.RunTooLargeError) as err:
        cw.optimize(shapes, 0, batch=400, steps=8)
    message = str(err.value)
    assert "400 image(s) of 64x64" in message and "40.0 MB is available" in message
    need = float(message.split("about ")[1].split(" MB")[0])
    assert need > 0.8 * 40  # what it says it needs does not fit
    assert "lower the batch" in message
    fit = int(message.split("(about ")[1].split(" images")[0])
    assert 1 <= fit < 400
    assert isinstance(err.value, cw.CnnvizError) and isinstance(err.value, MemoryError)
    # nothing was compiled or allocated for it
    assert optvis.step_tracing_count(shapes) == traced
    assert not any(key[3] == 400 for key in step._COMPILED.get(shapes.model, {}))
    # the batch it suggests is accepted (not run here)
    run = cw.optimize(shapes, 0, batch=fit, steps=8)
    assert run._c.batch == fit


def test_an_early_layer_costs_less_than_the_whole_model(shapes):
    full = obj.class_logit(0)
    early = obj.channel("conv1", 0)
    args = dict(hwc=(64, 64, 3), batch=8, steps=10)
    a = budget.check_optimize(shapes.model, full, **args)
    b = budget.check_optimize(shapes.model, early, **args)
    assert b.bytes < a.bytes and b.seconds < 0.6 * a.seconds
    # memory grows with the images at once, time with all the images of the run
    c = budget.check_optimize(shapes.model, full, hwc=(64, 64, 3), batch=16, steps=10)
    assert c.bytes - a.bytes == 8 * a.per_image
    assert math.isclose(c.seconds, 2 * a.seconds, rel_tol=0.5)  # a new speed measure may vary


def _fits(err) -> int:
    return int(str(err.value).split("(about ")[1].split(" images")[0])


def test_smoothgrad_and_occlusion_with_huge_batches_are_refused(
    shapes, image, little_memory, monkeypatch
):
    with pytest.raises(cw.RunTooLargeError, match=r"SmoothGrad \(2000 samples.*lower batch_size"):
        cw.saliency(shapes, image, smooth=2000, batch_size=2000)
    occlusion = r"occlusion \(256 patch positions.*batch_size"
    with pytest.raises(cw.RunTooLargeError, match=occlusion) as err:
        cw.occlusion(shapes, image, batch_size=256)
    # the batch size it suggests runs, and gives the map of any other batch size
    fit = _fits(err)
    assert 1 <= fit < 256
    got = cw.occlusion(shapes, image, batch_size=fit)
    monkeypatch.setattr(budget, "memory_limit", lambda: None)
    np.testing.assert_allclose(got.raw, cw.occlusion(shapes, image, batch_size=256).raw, atol=1e-4)


def test_a_long_run_warns_with_its_estimate(shapes, image, monkeypatch):
    monkeypatch.setattr(budget, "machine_flops", lambda: 1e6)  # a very slow machine
    with pytest.warns(cw.LongRunWarning, match=r"will take about [0-9.]+ h .*lower the batch"):
        cw.optimize(shapes, range(9), steps=256)
    with pytest.warns(cw.LongRunWarning, match=r"occlusion .* will take about"):
        cw.occlusion(shapes, image)
    with pytest.warns(cw.LongRunWarning, match=r"SmoothGrad .* will take about"):
        cw.saliency(shapes, image, smooth=50)


def test_a_panel_takes_the_long_run_warning_itself_in_its_own_thread(shapes, image, monkeypatch):
    monkeypatch.setattr(budget, "machine_flops", lambda: 1e6)  # a very slow machine
    told: list[str] = []
    elsewhere: list[list[str]] = []

    def another_thread():  # the handler is this thread's (a context variable), not global
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cw.saliency(shapes, image, smooth=10)
        elsewhere.append([str(w.message) for w in caught if w.category is cw.LongRunWarning])

    with warnings.catch_warnings():
        warnings.simplefilter("error", cw.LongRunWarning)  # none reaches the warnings module
        with budget.long_runs_to(told.append):
            result = cw.occlusion(shapes, image)  # the run still starts and ends
            thread = threading.Thread(target=another_thread)
            thread.start()
            thread.join(120)
            with pytest.raises(cw.RunTooLargeError):  # a refusal is raised as always
                monkeypatch.setattr(budget, "available_memory", lambda: 1 * MB)
                cw.occlusion(shapes, image)
    assert np.isfinite(result.raw).all() and np.ptp(result.raw) > 0  # a real map
    assert len(told) == 1 and told[0].startswith("occlusion (") and "will take about" in told[0]
    assert len(elsewhere) == 1 and len(elsewhere[0]) == 1 and "SmoothGrad" in elsewhere[0][0]
    monkeypatch.setattr(budget, "memory_limit", lambda: None)
    with pytest.warns(cw.LongRunWarning):  # after the block: a warning again
        cw.occlusion(shapes, image)


def test_ordinary_runs_neither_warn_nor_are_refused(shapes, image):
    with warnings.catch_warnings():
        warnings.simplefilter("error", cw.LongRunWarning)
        est = budget.check_optimize(
            shapes.model, obj.class_logit(list(range(9))), (64, 64, 3), 9, 256
        )
        cw.occlusion(shapes, image)
        cw.saliency(shapes, image, smooth=25)
    assert est.fits() and est.seconds < budget.WARN_SECONDS
    assert 0 < est.bytes < 1024 * MB


def test_available_memory_reads_the_system(monkeypatch):
    with open("/proc/meminfo") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    got = budget.available_memory()
    assert got is not None and abs(got - kb * 1024) < 0.2 * kb * 1024
    # unknown memory: no refusal, the estimate still says how much it needs
    monkeypatch.setattr(budget, "memory_limit", lambda: None)
    est = budget.check_optimize(
        cw.load_model("shapes").model, obj.class_logit(0), (64, 64, 3), 10**5, 1
    )
    assert est.fits() and est.largest_batch() is None and "unknown" in str(est)
