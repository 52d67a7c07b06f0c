"""The first image of a run: what it waits for, and what can be done before it is asked.

A run on a step that is not compiled yet shows its first step, taken eagerly, before the
trace (a preview frame), then starts again from the same image in the compiled step: its
result is the one a run without the preview gives.

`warm_up` does the work of a first run (budget, precision, extractor, the step's trace and
graph optimization) so the run that follows traces nothing; a run started while a warm-up
is compiling waits for it instead of compiling a second step; the machine-speed measure
of the budget is refreshed without making a run wait; and the objective's index pick
(a mask, not a batched gather, to trace less) and the Fourier image's written-out
gradient give the same values as what they replace.
"""

import threading

import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.model import budget, precision
from cnnviz_widgets.engine.optvis import run as run_module
from cnnviz_widgets.engine.optvis import step
from cnnviz_widgets.engine.optvis.objectives import _pick
from cnnviz_widgets.engine.optvis.param import Fourier, _scaled_irfft2d


@pytest.fixture(autouse=True)
def no_reduced_precision_hardware(monkeypatch):
    """The trace counts here are of float32 steps: "auto" runs as on a CPU without fast
    bfloat16 (simulated). On one with it, "auto" may first probe a bfloat16 step as well;
    tests/test_precision.py checks that the probe's steps are the ones the run then uses."""
    monkeypatch.setattr(precision, "hardware_precisions", lambda: ((), "simulated: none"))


def test_warm_up_compiles_the_step_the_run_then_uses():
    model = cw.load_model("shapes")  # its own model: its own tracing count
    seconds = cw.warm_up(model, 3, steps=4)
    assert seconds > 0
    assert optvis.step_tracing_count(model) == 1
    # another class, seed, lr and number of steps: the same compiled step, no new trace
    res = cw.visualize(model, 5, steps=3, seed=2, lr=0.03)
    assert optvis.step_tracing_count(model) == 1
    assert res.steps == 3 and res.history.shape == (3, 1)
    # the warm-up's step left nothing behind: the run is the run it would have been
    fresh = cw.visualize(cw.load_model("shapes"), 5, steps=3, seed=2, lr=0.03)
    np.testing.assert_allclose(res.history, fresh.history, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(res.images, fresh.images)
    # warming an already compiled configuration does nothing more
    cw.warm_up(model, 0)
    assert optvis.step_tracing_count(model) == 1


def test_a_run_started_during_a_background_warm_up_waits_for_its_step(monkeypatch):
    model = cw.load_model("shapes")
    started, release = threading.Event(), threading.Event()
    original = step.CompiledStep.reset

    def slow_reset(self, init, lr, steps=1):  # holds the warm-up between step and tracing
        if self.warming and not started.is_set():
            started.set()
            assert release.wait(60)
        return original(self, init, lr, steps)

    monkeypatch.setattr(step.CompiledStep, "reset", slow_reset)
    thread = cw.warm_up(model, 1, background=True)
    assert isinstance(thread, threading.Thread)
    assert started.wait(60)
    run = cw.optimize(model, 2, steps=2)  # the step is being warmed: it is the one handed out
    done = threading.Event()

    def drive():
        for _ in run:
            pass
        done.set()

    runner = threading.Thread(target=drive)
    runner.start()
    assert not done.wait(0.5)  # waiting for the warm-up, not compiling its own step
    release.set()
    thread.join(60)
    runner.join(60)
    assert done.is_set() and run.result.steps == 2
    assert optvis.step_tracing_count(model) == 1


def test_a_refused_run_is_refused_by_its_warm_up_and_quietly_in_the_background():
    model = cw.load_model("shapes")
    with pytest.raises(cw.CnnvizError, match="learning rate"):
        cw.warm_up(model, 0, lr=-1.0)
    thread = cw.warm_up(model, 0, lr=-1.0, background=True)
    thread.join(60)
    assert optvis.step_tracing_count(model) == 0


def test_a_stale_machine_speed_is_refreshed_without_waiting(monkeypatch):
    budget.machine_flops()  # measured once in the process
    with budget._SPEED_LOCK:  # and no refresh (started by an earlier test) still going
        pass
    measuring, release = threading.Event(), threading.Event()

    def slow_measure():
        measuring.set()
        assert release.wait(60)
        budget._SPEED.update(flops=123.0, at=budget.time.monotonic())

    monkeypatch.setattr(budget, "_measure_speed", slow_measure)
    monkeypatch.setitem(budget._SPEED, "flops", 7.0)
    monkeypatch.setitem(budget._SPEED, "at", budget.time.monotonic() - 2 * budget._SPEED_FOR)
    assert budget.machine_flops() == 7.0  # the last measure, at once
    assert measuring.wait(60)  # while a new one runs in the background
    assert budget.machine_flops() == 7.0  # one refresh at a time
    release.set()
    for _ in range(600):
        if budget._SPEED["flops"] == 123.0:
            break
        threading.Event().wait(0.05)
    assert budget.machine_flops() == 123.0


@pytest.mark.parametrize("shape", [(3, 7), (2, 5, 4)])
def test_the_index_pick_matches_a_batched_gather_with_its_gradient(shape):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal(shape).astype(np.float32))
    index = tf.constant(rng.integers(0, shape[1], shape[0]).astype(np.int32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = _pick(x, index)
        ref = tf.gather(x, index, axis=1, batch_dims=1)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    np.testing.assert_array_equal(tape.gradient(ours, x).numpy(), tape.gradient(ref, x).numpy())
    # a NaN in another entry stays there
    other = np.ones(shape, bool)
    other[np.arange(shape[0]), index.numpy()] = False
    bad = tf.where(other, np.float32(np.nan), x)
    np.testing.assert_array_equal(_pick(bad, index).numpy(), ref.numpy())


@pytest.mark.parametrize("hw", [(64, 64), (31, 45), (224, 224)])
def test_the_fourier_image_and_its_written_out_gradient_match_tensorflows_to_the_bit(hw):
    h, w = hw
    p = Fourier()
    var = tf.constant(p.init(np.random.default_rng(3), 2, h, w, 3) * 50)
    scale = tf.constant(p._scale(h, w))
    upstream = tf.constant(np.random.default_rng(4).standard_normal((2, 3, h, w)), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(var)
        ours = _scaled_irfft2d(var, p._scale(h, w), h, w)
        spectrum = tf.complex(var[0] * scale, var[1] * scale)
        ref = tf.signal.irfft2d(spectrum, fft_length=[h, w])
        loss_ours, loss_ref = tf.reduce_sum(ours * upstream), tf.reduce_sum(ref * upstream)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    np.testing.assert_array_equal(
        tape.gradient(loss_ours, var).numpy(), tape.gradient(loss_ref, var).numpy()
    )


def test_a_run_asked_for_while_the_warm_up_builds_its_step_shares_that_step(monkeypatch):
    model = cw.load_model("shapes")
    building, release = threading.Event(), threading.Event()
    original = step.CompiledStep.__init__

    def slow_init(self, *args, **kwargs):  # the warm-up's step takes a while to build
        if threading.current_thread().name == "cnnviz-warm-up":
            building.set()
            assert release.wait(60)
        original(self, *args, **kwargs)

    monkeypatch.setattr(step.CompiledStep, "__init__", slow_init)
    thread = cw.warm_up(model, 1, background=True)
    assert building.wait(60)
    timer = threading.Timer(0.5, release.set)  # the run asks while the step is being built
    timer.start()
    res = cw.visualize(model, 2, steps=2)
    thread.join(60)
    timer.join()
    assert res.steps == 2
    assert optvis.step_tracing_count(model) == 1


def _frames_of(run, stop_on_preview=False):
    frames, traces = [], []
    for frame in run:
        frames.append(frame)
        traces.append(run._c.tracing_count())
        if stop_on_preview and frame.preview:
            run.stop()
    return frames, traces


@pytest.mark.parametrize("preset", ["lucid", "robust"])
def test_an_uncompiled_run_shows_its_first_step_before_the_trace(preset):
    model = cw.load_model("shapes")  # its own model: nothing compiled for it yet
    run = cw.optimize(model, [3, 5], steps=4, every=1, preset=preset)
    frames, traces = _frames_of(run)
    first = frames[0]
    assert first.preview and first.step == 1 and not first.final
    assert traces[0] == 0  # shown before the step was traced
    assert [f.step for f in frames[1:]] == [1, 2, 3, 4] and traces[1:] == [1] * 4  # 4: final
    assert not any(f.preview for f in frames[1:])
    # the preview is the compiled run's first step, up to the rounding of fused kernels
    step1 = frames[1]
    assert np.abs(first.images.astype(int) - step1.images.astype(int)).max() <= 2
    np.testing.assert_allclose(first.values, step1.values, rtol=1e-4, atol=1e-4)
    # and the run is the one a run without a preview makes: same history, same images
    plain = cw.visualize(cw.load_model("shapes"), [3, 5], steps=4, preset=preset)
    np.testing.assert_array_equal(run.result.images, plain.images)
    np.testing.assert_array_equal(run.result.history, plain.history)
    assert run.result.steps == 4 and len(run.result.history) == 4


def test_a_compiled_step_a_large_pass_or_preview_false_gives_no_preview(monkeypatch):
    model = cw.load_model("shapes")
    cw.visualize(model, 2, steps=2)  # visualize shows no frames: no preview, one trace
    assert optvis.step_tracing_count(model) == 1
    frames, _ = _frames_of(cw.optimize(model, 4, steps=2, every=1))
    assert len(frames) == 2 and not any(f.preview for f in frames)
    frames, traces = _frames_of(cw.optimize(cw.load_model("shapes"), 4, steps=2, preview=False))
    assert not any(f.preview for f in frames) and traces[0] == 1
    # a pass above PREVIEW_MAX_FLOPS (here: any) costs about its trace: no eager step
    monkeypatch.setattr(run_module, "PREVIEW_MAX_FLOPS", 0.0)
    frames, traces = _frames_of(cw.optimize(cw.load_model("shapes"), 4, steps=2, every=1))
    assert not any(f.preview for f in frames) and traces[0] == 1


def test_a_run_stopped_on_its_preview_keeps_the_preview_as_its_step():
    run = cw.optimize(cw.load_model("shapes"), [0, 7], steps=50, every=1)
    frames, traces = _frames_of(run, stop_on_preview=True)
    assert frames[0].preview and frames[-1].final and traces[-1] == 0  # never compiled
    res = run.result
    assert res.stopped and res.steps == 1 and res.history.shape == (1, 2)
    np.testing.assert_array_equal(res.images, frames[0].images)
    np.testing.assert_allclose(res.history[0], frames[0].values)


def test_a_first_step_that_fails_eagerly_leaves_the_run_to_the_compiled_step(monkeypatch):
    def fails(self, *args):
        raise RuntimeError("only in eager mode")

    model = cw.load_model("shapes")
    run = cw.optimize(model, 1, steps=3, every=1)
    # the compiled step wraps the method as it was when the step was built
    monkeypatch.setattr(step.CompiledStep, "_step", fails)
    frames, traces = _frames_of(run)
    assert not any(f.preview for f in frames) and traces[0] == 1
    assert run.result.steps == 3 and run.result.error is None
