"""Models with several outputs (a list or a dict): channel objectives and layer rankings
work on them as on any model; everything that reads class scores takes ``output=`` (a
name or an index), gives what the single-output model ``keras.Model(m.input,
m.outputs[k])`` gives, and without it names the outputs to choose from."""

import tempfile

import keras
import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine.model import precision
from cnnviz_widgets.session import SelectionError, Session

from .helpers import assert_same_state, model_state


def two_heads(kind: str = "list", seed: int = 0) -> keras.Model:
    """Input 32x32x3 -> c1 -> c2 -> GAP -> Dense(3, softmax) "cls" and Dense(1) "reg";
    a dict model keys them "labels" and "value" (not the layers' names)."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(i)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c2")(x)
    g = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    a = keras.layers.Dense(3, activation="softmax", name="cls")(g)
    b = keras.layers.Dense(1, name="reg")(g)
    if kind == "dict":
        return keras.Model(i, {"labels": a, "value": b}, name="two_heads_dict")
    return keras.Model(i, [a, b], name="two_heads")


# the name of the class head and of the regression head, per kind of model
NAMES = {"list": ("cls", "reg"), "dict": ("labels", "value")}


@pytest.fixture(scope="module", params=["list", "dict"])
def case(request):
    m = two_heads(request.param)
    cls, reg = NAMES[request.param]
    return m, cls, reg


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).uniform(0.0, 1.0, (32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    return np.random.default_rng(1).uniform(0.0, 1.0, (24, 32, 32, 3)).astype(np.float32)


def single(m: keras.Model, k: int) -> keras.Model:
    return keras.Model(m.inputs[0], m.outputs[k])


def assert_names_outputs(err, *names):
    text = str(err.value)
    for name in names:
        assert repr(name) in text, text
    assert "output=" in text, text


# ------------------------------------------------------------------- naming, selecting
def test_outputs_are_listed_by_key_or_layer_name(case):
    m, cls, reg = case
    infos = cw.model_outputs(m)
    assert [o.name for o in infos] == [cls, reg]
    assert [o.layer for o in infos] == ["cls", "reg"]
    assert [o.shape for o in infos] == [(None, 3), (None, 1)]
    assert [o.index for o in infos] == [0, 1]


def test_a_view_shares_the_layers_is_cached_and_leaves_the_model_alone(case):
    m, cls, reg = case
    before = model_state(m)
    weights = [id(w) for w in m.weights]
    outputs = list(m.outputs)
    view = cw.output_view(m, cls)
    assert cw.output_view(m, 0) is view  # by name or index: one view, built once
    assert cw.output_view(m, "cls") is view  # the layer's name is an alias
    assert len(view.outputs) == 1 and view.outputs[0] is m.outputs[0]
    assert {id(w) for w in view.weights} <= set(weights)  # the same variables
    loaded = cw.select_output(m, reg)
    assert loaded.model is cw.output_view(m, 1) and loaded.output == reg
    assert [id(w) for w in m.weights] == weights
    assert list(m.outputs) == outputs
    assert_same_state(before, model_state(m))


def test_repeated_calls_on_an_output_do_not_trace_again(image):
    from cnnviz_widgets.engine import optvis
    from cnnviz_widgets.engine.model import scoring

    m = two_heads("list", seed=7)
    cw.grad_cam(m, image, output="cls")
    cw.visualize(m, 0, steps=2, output="cls", precision="float32")
    view = cw.output_view(m, "cls")
    traced = scoring.tracing_count(view), optvis.step_tracing_count(view)
    assert traced[0] > 0 and traced[1] > 0  # counted on the view: the model that ran
    other = np.ascontiguousarray(image[::-1])
    cw.grad_cam(m, other, 2, output=0)  # by index: the same view, the same functions
    cw.visualize(m, 1, steps=2, output="cls", precision="float32", seed=4)
    assert (scoring.tracing_count(view), optvis.step_tracing_count(view)) == traced


def test_missing_unknown_and_out_of_range_outputs_are_named(case, image):
    m, cls, reg = case
    with pytest.raises(cw.CnnvizError) as err:
        cw.grad_cam(m, image)
    assert_names_outputs(err, cls, reg)
    assert f"cw.grad_cam(model, image, output={cls!r})" in str(err.value)
    assert "(None, 3)" in str(err.value) and "(None, 1)" in str(err.value)
    with pytest.raises(cw.CnnvizError) as err:
        cw.explain(m, image, "saliency", output=cls + "x")
    assert_names_outputs(err, cls, reg)
    assert "did you mean" in str(err.value)
    with pytest.raises(cw.CnnvizError) as err:
        cw.grad_cam(m, image, output=2)
    assert "out of range" in str(err.value) and "0..1" in str(err.value)
    with pytest.raises(cw.CnnvizError, match="name or index"):
        cw.grad_cam(m, image, output=True)
    with pytest.raises(cw.CnnvizError) as err:
        cw.visualize(m, 0, steps=2)
    assert_names_outputs(err, cls, reg)
    with pytest.raises(cw.CnnvizError) as err:
        cw.predict_top(m, image)
    assert_names_outputs(err, cls, reg)


def test_a_one_output_model_needs_no_output_and_checks_one_given(image):
    keras.utils.set_random_seed(3)
    seq = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    plain = cw.grad_cam(seq, image)
    assert plain.output is None
    for ref in (0, -1, "out"):
        np.testing.assert_array_equal(cw.grad_cam(seq, image, output=ref).heatmap, plain.heatmap)
    with pytest.raises(cw.CnnvizError, match="out of range"):
        cw.grad_cam(seq, image, output=1)
    with pytest.raises(cw.CnnvizError, match="no output 'cls'"):
        cw.grad_cam(seq, image, output="cls")
    assert cw.visualize(seq, 1, steps=2, precision="float32").history.shape == (2, 1)


def test_class_names_per_output(case, image):
    m, cls, reg = case
    loaded = cw.load_model(m, class_names={cls: ["cat", "dog", "fox"], 1: ["age"]})
    assert loaded.class_names is None  # several outputs: each has its own
    assert cw.select_output(loaded, cls).class_names == ["cat", "dog", "fox"]
    assert cw.select_output(loaded, reg).class_names == ["age"]
    cam = cw.grad_cam(loaded, image, "dog", output=cls)
    assert cam.class_index == 1 and cam.class_name == "dog"
    assert Session(loaded).class_name(2) == "fox"
    with pytest.raises(cw.CnnvizError, match="has 2 names but the output"):
        cw.load_model(m, class_names={cls: ["cat", "dog"]})
    with pytest.raises(cw.CnnvizError, match="no output 'nope'"):
        cw.load_model(m, class_names={"nope": ["a"]})
    # a plain list applies to the output with as many units
    three = cw.load_model(m, class_names=["a", "b", "c"])
    assert cw.select_output(three, 0).class_names == ["a", "b", "c"]
    assert cw.select_output(three, 1).class_names is None


# ------------------------------------------------------------------------ attribution
def test_grad_cam_by_name_and_index_is_the_single_output_models(case, image):
    m, cls, reg = case
    ref = cw.grad_cam(single(m, 0), image, 1)
    by_name = cw.grad_cam(m, image, 1, output=cls)
    by_index = cw.grad_cam(m, image, 1, output=0)
    for got in (by_name, by_index):
        np.testing.assert_allclose(got.heatmap, ref.heatmap, atol=1e-6)
        np.testing.assert_allclose(got.raw, ref.raw, rtol=1e-5, atol=1e-7)
        assert got.score == pytest.approx(ref.score) and got.class_index == 1
        assert got.output == cls
    # the regression head: a value, no probability
    value = cw.grad_cam(m, image, output=reg)
    assert value.output == reg and np.isnan(value.probability)
    assert value.score == pytest.approx(float(single(m, 1)(image[None])[0, 0]), rel=1e-5)


@pytest.mark.parametrize("method", cw.method_names())
def test_every_registered_method_explains_the_chosen_output(method, image):
    m = two_heads("list")
    params = {"rise": {"masks": 64}, "score_cam": {}, "smoothgrad": {"samples": 4}}
    got = cw.explain(m, image, method, 2, output="cls", **params.get(method, {}))
    ref = cw.explain(single(m, 0), image, method, 2, **params.get(method, {}))
    assert got.output == "cls" and got.class_index == 2
    np.testing.assert_allclose(got.heatmap, ref.heatmap, atol=1e-5)
    assert got.score == pytest.approx(ref.score, rel=1e-5)


def test_jobs_batches_occlusion_and_predictions_take_the_output(case, image, data):
    m, cls, _reg = case
    ref_model = single(m, 0)
    job = cw.attribution_job(m, image, "saliency", 0, output=cls).run()
    np.testing.assert_allclose(job.heatmap, cw.saliency(ref_model, image, 0).heatmap, atol=1e-6)
    occ = cw.occlusion(m, image, output=0, patch=8, stride=8, precision="float32")
    ref = cw.occlusion(ref_model, image, patch=8, stride=8, precision="float32")
    np.testing.assert_allclose(occ.raw, ref.raw, rtol=1e-5, atol=1e-6)
    batch = cw.explain_batch(m, data[:4], "grad_cam", output=cls, batch_size=4)
    ref_batch = cw.explain_batch(ref_model, data[:4], "grad_cam", batch_size=4)
    np.testing.assert_allclose(batch.heatmaps, ref_batch.heatmaps, atol=1e-6)
    assert batch.output == cls and batch[1].output == cls and ref_batch.output is None
    # a batch given to grad_cam goes to explain_batch with its output
    again = cw.grad_cam(m, data[:4], output=cls)
    np.testing.assert_allclose(again.heatmaps, ref_batch.heatmaps, atol=1e-6)
    top = cw.predict_top(m, image, 3, output=cls)
    np.testing.assert_allclose(top.probabilities, cw.predict_top(ref_model, image, 3).probabilities)


def test_saved_results_keep_their_output(case, image, tmp_path):
    m, cls, _ = case
    cam = cw.grad_cam(m, image, output=cls)
    back = cw.load_result(cam.save(tmp_path / "cam"))
    assert back.output == cls
    np.testing.assert_array_equal(back.heatmap, cam.heatmap)
    res = cw.visualize(m, 1, steps=2, output=cls, precision="float32")
    assert cw.load_result(res.save(tmp_path / "res")).output == cls


def test_metrics_read_the_attributions_output(case, image):
    m, cls, reg = case
    ref_model = single(m, 0)
    cam = cw.grad_cam(m, image, output=cls)
    ref_cam = cw.grad_cam(ref_model, image)
    for fn in (cw.deletion, cw.insertion):
        got = fn(m, saliency=cam, steps=8)  # the Attribution says which output
        ref = fn(ref_model, saliency=ref_cam, steps=8)
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-7)
    mu = cw.mu_fidelity(m, saliency=cam, samples=16)
    assert mu == pytest.approx(cw.mu_fidelity(ref_model, saliency=ref_cam, samples=16))
    with pytest.raises(cw.CnnvizError) as err:  # a bare map: which output is not known
        cw.deletion(m, image, cam.heatmap, steps=8)
    assert_names_outputs(err, cls, reg)
    rnd = cw.randomization_test(m, image, ["grad_cam"], output=cls, layers=["cls"])
    ref_rnd = cw.randomization_test(ref_model, image, ["grad_cam"], layers=["cls"])
    np.testing.assert_allclose(rnd.maps["grad_cam"][0], ref_rnd.maps["grad_cam"][0], atol=1e-6)


def test_adversarial_examples_attack_the_chosen_output(case, data):
    m, cls, reg = case
    labels = np.arange(8) % 3
    got = cw.adversarial_examples(m, data[:8], labels, steps=2, output=cls)
    ref = cw.adversarial_examples(single(m, 0), data[:8], labels, steps=2)
    np.testing.assert_allclose(got, ref, atol=1e-6)
    acc = cw.robust_accuracy(m, data[:8], labels, steps=2, output=0)
    assert acc == cw.robust_accuracy(single(m, 0), data[:8], labels, steps=2)
    with pytest.raises(cw.CnnvizError) as err:
        cw.robust_accuracy(m, data[:8], labels, steps=2)
    assert_names_outputs(err, cls, reg)


# ---------------------------------------------------------------------------- optvis
def test_class_optimization_reaches_the_single_output_models_score(case):
    m, cls, reg = case
    before = model_state(m)
    kw = dict(steps=12, seed=3, precision="float32")
    ref = cw.visualize(single(m, 0), 2, **kw)
    for got in (
        cw.visualize(m, 2, output=cls, **kw),
        cw.visualize(m, 2, output=0, **kw),
        cw.visualize(m, obj.class_score(2, output=cls), **kw),
    ):
        np.testing.assert_allclose(got.history, ref.history, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.images, ref.images)
        assert got.output == cls and ref.output is None
    with pytest.raises(cw.CnnvizError, match="several outputs"):
        cw.optimize(m, obj.class_logit(0, output=cls) + obj.class_logit(0, output=reg))
    with pytest.raises(cw.CnnvizError, match="several outputs"):
        cw.optimize(m, obj.class_logit(0, output=cls), output=reg)
    cw.visualize(m, 0, steps=2, output=reg, precision="bfloat16")  # a twin of the view
    assert_same_state(before, model_state(m))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_channel_objective_needs_no_output(case, dtype):
    m, _cls, _reg = case
    res = cw.visualize(m, obj.channel("c2", 1), steps=4, precision=dtype)
    assert res.precision == dtype and np.isfinite(res.history).all()
    ref = cw.visualize(single(m, 0), obj.channel("c2", 1), steps=4, precision=dtype)
    np.testing.assert_allclose(res.history, ref.history, rtol=1e-3, atol=1e-5)
    with pytest.raises(cw.CnnvizError, match="no output"):  # given, it is checked
        cw.visualize(m, obj.channel("c2", 1), steps=2, output="nope")


def test_auto_precision_measures_and_probes_a_model_with_several_outputs(monkeypatch):
    """On a CPU with bfloat16 (simulated: the suite keeps float32), "auto" measures the
    model's passes (all its outputs) and probes the optimization: real passes, any
    choice, a finite result."""
    monkeypatch.setattr(precision, "hardware_precisions", lambda: (("bfloat16",), "test CPU"))
    m = two_heads("dict", seed=5)  # fresh: nothing measured for it yet
    loaded = cw.load_model(m)
    speedup, deviation = precision.measure(loaded, "bfloat16", "optimize", batch=2, rounds=1)
    assert speedup > 0 and np.isfinite(deviation)
    for objective, output in ((obj.channel("c2", 0), None), (1, "labels")):
        res = cw.visualize(m, objective, steps=4, precision="auto", output=output)
        assert res.precision in ("float32", "bfloat16"), res.precision_reason
        assert "auto" in res.precision_reason and np.isfinite(res.history).all()


# ------------------------------------------------------------------- dataset, atlas
def test_rankings_of_units_and_of_an_outputs_classes(case, data):
    m, cls, reg = case
    ref_model = single(m, 0)
    units = cw.top_examples(m, "c2", data, k=3, precision="float32")
    ref_units = cw.top_examples(ref_model, "c2", data, k=3, precision="float32")
    assert units.kind == "channel"
    np.testing.assert_array_equal(units.indices, ref_units.indices)
    ref = cw.top_examples(ref_model, None, data, k=3, precision="float32")
    for got in (
        cw.top_examples(m, None, data, k=3, output=cls, precision="float32"),
        cw.top_examples(m, "cls", data, k=3, precision="float32"),  # the output's layer
        cw.top_examples_job(m, None, data, k=3, output=0, precision="float32").run(),
    ):
        assert got.kind == "class"
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(cw.CnnvizError) as err:
        cw.top_examples(m, None, data, k=3)
    assert_names_outputs(err, cls, reg)


def test_atlas_units_work_and_take_an_outputs_classes(case, data):
    m, cls, _reg = case
    with tempfile.TemporaryDirectory() as store:
        plain = cw.atlas(m, "c2", data, channels=[0, 1], steps=4, k=2, store=store)
        assert sorted(plain.done()) == [0, 1]
        assert plain.unit(0).image is not None and plain.unit(0).classes is None
        named = cw.atlas(m, "c2", data, channels=[0], steps=4, k=2, store=store, output=cls)
        classes = named.unit(0).classes
        kernel = np.asarray(m.get_layer("cls").kernel)[0]
        assert [c[0] for c in classes] == list(np.argsort(-kernel, kind="stable"))


# --------------------------------------------------------------------------- panels
def test_the_session_keeps_one_output_and_its_classes(case):
    m, cls, reg = case
    s = Session(m)
    assert s.output == cls and s.n_classes == 3
    s.class_index = 2
    s.output = 1  # an index is stored as the name; the class is cleared
    assert s.output == reg and s.class_index is None and s.n_classes == 1
    with pytest.raises(SelectionError, match="no output"):
        s.output = "nope"
    with pytest.raises(SelectionError, match="several outputs"):
        s.output = None
    assert Session("shapes").output is None


def test_the_explainer_shows_an_output_dropdown_and_explains_the_pick(case):
    from cnnviz_widgets.widgets import ClassOptimizer, ImageExplainer

    m, cls, reg = case
    panel = ImageExplainer(m)
    drop = panel.output_select
    assert drop.layout.display != "none"
    assert [v for _, v in drop.options] == [cls, reg] and drop.value == cls
    assert panel.attribution is not None and panel.attribution.output == cls
    assert len(panel.picker.labels) == 3
    drop.value = reg  # what the front end sends
    assert panel.session.output == reg
    assert len(panel.picker.labels) == 1
    assert panel.attribution.output == reg and panel.predictions.indices.tolist() == [0]
    opt = ClassOptimizer(panel.session)  # shares the session: follows its output
    assert opt.target.output_select.value == reg and len(opt.target.picker.labels) == 1
    opt.target.output_select.value = cls
    assert panel.session.output == cls and len(opt.target.picker.labels) == 3
    assert len(panel.picker.labels) == 3 and panel.attribution.output == cls
    opt.target.pick_classes([2])
    opt.config.steps = 6
    record = opt.run(wait=True, timeout=180)
    assert record.result is not None and not record.result.error
    ref = cw.visualize(single(m, 0), 2, steps=6, seed=opt.config.seed, precision="float32")
    np.testing.assert_allclose(record.result.history, ref.history, rtol=1e-4, atol=1e-5)
    opt.close()
    panel.close()


def test_a_one_output_model_has_no_output_dropdown(shapes):
    from cnnviz_widgets.widgets import ImageExplainer

    panel = ImageExplainer(shapes)
    assert panel.output_select.layout.display == "none"
    assert panel.session.output is None and panel.attribution.output is None
    panel.close()


def test_the_atlas_panel_gives_its_units_the_sessions_outputs_classes(data, tmp_path):
    from cnnviz_widgets.widgets import UnitAtlas

    m = two_heads("list")
    session = Session(m, layer="c2")
    panel = UnitAtlas(session, data, store=tmp_path, steps=4, batch=2, channels=[0, 1])
    assert panel.wait(300) and panel.messages.kind is None, panel.messages.text
    panel.run(wait=True, timeout=300)
    assert panel.messages.kind is None, panel.messages.text
    classes = panel.atlas.unit(0).classes  # the first output's: three classes
    kernel = np.asarray(m.get_layer("cls").kernel)[0]
    assert [c[0] for c in classes] == list(np.argsort(-kernel, kind="stable"))
    session.output = "reg"  # the regression head: one "class"; the same store
    assert panel.wait(300) and panel.messages.kind is None, panel.messages.text
    assert [c[0] for c in panel.atlas.unit(0).classes] == [0]
    panel.close()
