"""The Explain panel's method settings (from the registry) and its Compare view, driven
without a browser."""

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.session import Session
from cnnviz_widgets.widgets import ImageExplainer
from cnnviz_widgets.widgets import compare_view as compare_module

from .helpers import assert_same_state, model_state


@pytest.fixture
def panel(shapes):
    return ImageExplainer(Session(shapes))


def test_every_registered_method_is_a_choice_with_its_tip_and_settings(panel):
    assert [v for _, v in panel.method.options] == cw.method_names()
    panel.method.value = "integrated_gradients"
    steps = panel.settings.controls["steps"]
    assert steps.layout.display is None and panel.cam_box.layout.display == "none"
    assert "Sundararajan et al. 2017" in panel.settings.tip.value
    steps.value = 16
    assert panel.attribution.method == "integrated_gradients"
    assert panel.attribution.params == {"steps": 16, "baseline": "black"}
    panel.method.value = "rise"
    assert steps.layout.display == "none"
    panel.settings.controls["masks"].value = 200
    assert panel.attribution.params["masks"] == 200 and panel.attribution.method == "rise"
    panel.method.value = "score_cam"
    panel.cam_layer.value = "conv3"
    assert panel.attribution.layer == "conv3" and panel.cam_box.layout.display is None


def test_compare_draws_each_method_with_its_aucs_and_caches(panel, monkeypatch):
    compare = panel.compare
    compare.methods.value = ("saliency", "grad_cam", "rise")
    panel.settings.controls["masks"].value = 100  # the panel's settings are used
    compare.compare()
    assert compare.wait(120) and panel.messages.kind in (None, "note")
    assert list(compare.results) == ["saliency", "grad_cam", "rise"]
    assert len(compare.tiles.children) == 3
    r, d, i = compare.results["rise"]
    assert r.params["masks"] == 100 and 0 <= d.auc <= 1 and 0 <= i.auc <= 1
    expected = cw.deletion(panel.session.loaded, None, compare.results["grad_cam"][0])
    assert compare.results["grad_cam"][1].auc == pytest.approx(expected.auc, abs=1e-6)
    label = compare.tiles.children[1].children[1].value
    assert "Grad-CAM" in label and f"deletion {compare.results['grad_cam'][1].auc:.3f}" in label
    calls = []
    real = compare_module.attribution_job
    monkeypatch.setattr(
        compare_module, "attribution_job", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    compare.compare()  # every map cached: no engine call
    assert compare.wait(60) and calls == [] and len(compare.tiles.children) == 3
    compare.baseline.value = "zero"  # other settings: computed again
    compare.compare()
    assert compare.wait(120) and len(calls) == 3


def test_sanity_check_draws_the_maps_and_the_curve_on_a_copy(shapes):
    panel = ImageExplainer(Session(shapes))
    before = model_state(shapes.model)
    panel.compare.methods.value = ("saliency", "grad_cam")
    panel.compare.sanity_check()
    assert panel.compare.wait(180) and panel.messages.kind in (None, "note")
    res = panel.compare.randomization
    assert res.steps[0] == "original" and len(res.steps) == 6
    _, body = panel.compare.sanity.children
    rows, curve = body.children
    assert len(rows.children) == 3 and len(rows.children[1].children) == 1 + 6
    assert curve.value.count("<polyline") == 2 and "Grad-CAM" in curve.value
    assert_same_state(before, model_state(shapes.model))


def test_stop_ends_a_sanity_check(panel):
    panel.compare.methods.value = tuple(n for n in cw.method_names() if n != "occlusion")
    panel.compare.sanity_check()
    panel.compare.run_bar.stop_button.click()
    assert panel.compare.wait(120)
    assert panel.compare.run_bar.status.value == "stopped"
    assert panel.compare.randomization is None


def test_compare_without_methods_says_so(panel):
    panel.compare.methods.value = ()
    panel.compare.compare_button.click()
    assert panel.messages.kind == "error" and "at least one method" in panel.messages.text
    assert np.asarray(panel.image).ndim == 3
