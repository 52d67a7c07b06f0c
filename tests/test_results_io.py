"""Results kept on disk: save/load round trips, the open format, short repr, array-aware ==."""

import dataclasses
import json
import zipfile

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.dataset.store import model_fingerprint
from cnnviz_widgets.engine.results_io import Keepable


@pytest.fixture(scope="module")
def image():
    return cw.sample_image("circle")


@pytest.fixture(scope="module")
def results(shapes, image):
    data = cw.generate_shapes(60, seed=3)
    return {
        "grad_cam": cw.grad_cam(shapes, image, plus_plus=True),
        "smoothgrad": cw.saliency(shapes, image, smooth=3, seed=2),
        "occlusion": cw.occlusion(shapes, image, patch=16, stride=8),
        "predictions": cw.predict_top(shapes, image, k=3),
        "feature_maps": cw.feature_maps(shapes, image, "conv2"),
        "top": cw.top_examples(shapes, "conv3", (data.images, data.labels), k=4),
        "optimized": cw.visualize(shapes, cw.objectives.channel("conv3", 1), steps=3),
    }


KINDS = ["grad_cam", "smoothgrad", "occlusion", "predictions", "feature_maps", "top", "optimized"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_round_trip_restores_an_equal_result_of_the_same_class(results, kind, tmp_path):
    r = results[kind]
    path = r.save(tmp_path / kind)
    assert path.suffix == ".npz" and path.exists()
    back = cw.load_result(path)
    assert type(back) is type(r)
    assert back == r
    for f in dataclasses.fields(r):  # field by field, arrays with their dtypes
        a, b = getattr(r, f.name), getattr(back, f.name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    assert type(r).load(path) == r


def test_the_file_is_plain_npz_and_json_with_model_settings_and_versions(results, shapes, tmp_path):
    r = results["grad_cam"]
    path = r.save(tmp_path / "cam.npz", model=shapes, settings={"data": "circle", "seed": 0})
    with zipfile.ZipFile(path) as z:  # numpy's zip of .npy files, nothing pickled
        names = set(z.namelist())
    assert {"__meta__.npy", "a:heatmap.npy", "a:raw.npy", "a:image.npy"} <= names
    data = np.load(path, allow_pickle=False)
    assert np.array_equal(data["a:heatmap"], r.heatmap)
    meta = json.loads(str(data["__meta__"]))
    assert meta["class"] == "GradCam"
    assert meta["fields"]["fields"]["layer"] == r.layer
    assert meta["fields"]["fields"]["class_index"] == r.class_index
    assert meta["settings"] == {"__dict__": {"data": "circle", "seed": 0}}
    assert meta["model"]["fingerprint"] == model_fingerprint(shapes.model)
    assert set(meta["versions"]) >= {"tensorflow", "keras", "numpy", "cnnviz_widgets"}
    info = cw.result_info(path)
    assert info["class"] == "GradCam" and "fields" not in info


def test_load_checks_the_model_when_given_one(results, shapes, tmp_path):
    import keras

    r = results["grad_cam"]
    path = r.save(tmp_path / "cam", model=shapes)
    assert cw.load_result(path, model=shapes) == r
    other = keras.models.clone_model(shapes.model)  # same architecture, other (random) weights
    with pytest.raises(cw.CnnvizError, match="computed on another model"):
        cw.load_result(path, model=other)
    bare = r.save(tmp_path / "bare")
    with pytest.raises(cw.CnnvizError, match="saved without its model"):
        cw.load_result(bare, model=shapes)


def test_load_refuses_the_wrong_class_and_foreign_files(results, tmp_path):
    path = results["grad_cam"].save(tmp_path / "cam")
    with pytest.raises(cw.CnnvizError, match="holds a GradCam, not a TopExamples"):
        cw.TopExamples.load(path)
    assert isinstance(cw.Attribution.load(path), cw.GradCam)  # a subclass is fine
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(cw.CnnvizError, match="not a result saved by cnnviz_widgets"):
        cw.load_result(tmp_path / "other.npz")
    with pytest.raises(cw.CnnvizError, match="no saved result"):
        cw.load_result(tmp_path / "missing.npz")
    with pytest.raises(cw.CnnvizError, match="does not exist"):
        results["grad_cam"].save(tmp_path / "no" / "such" / "dir.npz")


def test_repr_is_short_and_shows_shapes(results):
    top = results["top"]
    text = repr(top)
    assert len(text) < 1500, len(text)
    assert f"pool=array(shape={top.pool.shape}, uint8)" in text
    assert "layer='conv3'" in text
    for r in results.values():
        assert len(repr(r)) < 1500
        assert "[[" not in repr(r)  # no array printed


def test_equality_compares_arrays_and_notices_one_changed_value(results):
    r = results["grad_cam"]
    same = dataclasses.replace(r, heatmap=r.heatmap.copy())
    assert same == r and not (same != r)
    changed = r.heatmap.copy()
    changed[3, 5] += 0.25
    assert dataclasses.replace(r, heatmap=changed) != r
    assert dataclasses.replace(r, notes=[*r.notes, "x"]) != r
    assert r != results["smoothgrad"]
    top = results["top"]  # -inf scores and NaN-free ints compare equal to themselves
    assert dataclasses.replace(top, scores=top.scores.copy()) == top
    nan = dataclasses.replace(r, score=float("nan"))
    assert nan == dataclasses.replace(r, score=float("nan"))


def test_every_result_class_is_keepable():
    for cls in (
        cw.GradCam,
        cw.Saliency,
        cw.Occlusion,
        cw.Predictions,
        cw.TopExamples,
        cw.FeatureMaps,
    ):
        assert issubclass(cls, Keepable)
        assert cls.__repr__ is not object.__repr__
