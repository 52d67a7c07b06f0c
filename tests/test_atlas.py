"""The unit atlas (cw.atlas): per unit a visualization, dataset examples and a kernel, in a
durable store keyed by the model's weights and the settings, resumable, safe for several
writers at once."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine.dataset.atlas import AtlasPlan, class_weights
from cnnviz_widgets.engine.dataset.store import UnitStore, model_fingerprint

SETTINGS = dict(steps=6, batch=4, seed=3)


@pytest.fixture(scope="module")
def data():
    return cw.generate_shapes(60, seed=5)


@pytest.fixture(scope="module")
def first(shapes, data, tmp_path_factory):
    """An atlas of conv4's channels 0..5, stopped after its first chunk, then resumed."""
    store = tmp_path_factory.mktemp("store")
    stop = threading.Event()
    reports = []

    def progress(p):
        reports.append(p)
        if p.new:
            stop.set()  # after the first chunk is stored

    stopped = cw.atlas(
        shapes,
        "conv4",
        data,
        channels=range(6),
        store=store,
        progress=progress,
        stop=stop,
        **SETTINGS,
    )
    stopped.stored_then = (sorted(stopped.vis_store.done()), stopped.done(), stopped.complete)
    resumed_reports = []
    resumed = cw.atlas(
        shapes,
        "conv4",
        data,
        channels=range(6),
        store=store,
        progress=resumed_reports.append,
        **SETTINGS,
    )
    return store, stopped, reports, resumed, resumed_reports


def test_a_stopped_atlas_keeps_its_finished_units_and_resumes(first):
    store, stopped, reports, resumed, resumed_reports = first
    assert stopped.stopped and stopped.computed == [0, 1, 2, 3]
    assert stopped.stored_then == ([0, 1, 2, 3], set(), False)  # no examples yet
    assert reports[-1].final and reports[-1].phase == "done"
    # the resumed run computes only the rest (chunk 4..7: its units 6, 7 come along)
    assert resumed.reused == [] and resumed.computed == [4, 5]
    assert sorted(resumed.vis_store.done()) == list(range(8))
    assert resumed.complete and resumed.done() == set(range(6))
    phases = [p.phase for p in resumed_reports]
    assert phases[0] == "visualization" and "examples" in phases and phases[-1] == "done"
    assert resumed_reports[0].new == [4, 5] and resumed_reports[0].done == 6
    # a third call finds everything in the store and computes nothing
    again = cw.atlas(resumed.loaded, "conv4", None, channels=range(6), store=store, **SETTINGS)
    assert again.computed == [] and again.reused == list(range(6))


def test_each_unit_has_its_visualization_examples_kernel_and_classes(shapes, data, first):
    _, _, _, at, _ = first
    plan = at._plan
    # the stored images are those of one batched run of the chunk with the chunk's seed
    direct = cw.visualize(
        shapes, obj.channel("conv4", [4, 5, 6, 7]), seed=plan.chunk_seed(1), steps=6
    )
    for j, c in enumerate(range(4, 8)):
        np.testing.assert_array_equal(at.image(c), direct.images[j])
    u = at.unit(5)
    assert u.image.shape == (64, 64, 3) and u.image.dtype == np.uint8
    assert u.value == pytest.approx(float(direct.history[-1][1]), rel=1e-5, abs=1e-6)
    # the kernel: filter 5 of conv4 (3x3 over 64 channels, the mean view), as RGBA
    np.testing.assert_array_equal(
        u.kernel, cw.filter_montage(shapes, "conv4", filters=[5], padding=0).image
    )
    assert u.kernel_view == "3x3, mean of 64 inputs"  # the page's caption of the grey view
    # the examples: the same as top_examples on the data
    top = cw.top_examples(shapes, "conv4", data, k=9, channels=[5])
    np.testing.assert_array_equal(u.examples, top.images(5))
    np.testing.assert_array_equal(u.example_indices, top.indices[0])
    np.testing.assert_array_equal(u.example_labels, data.labels[top.indices[0]])
    assert u.example_boxes.shape == (9, 4) and u.example_maps.shape == (9, 8, 8)
    assert tuple(u.example_boxes[0]) == top.box(5, 0)
    # conv4 feeds the classifier through global average pooling: the Dense weights
    w = np.asarray(shapes.model.get_layer("predictions").kernel)
    np.testing.assert_array_equal(class_weights(shapes, "conv4"), w)
    best = np.argsort(-w[5])[:3]
    assert [c for c, _, _ in u.classes] == best.tolist()
    assert u.classes[0][1] == cw.SHAPES_CLASS_NAMES[best[0]]
    assert class_weights(shapes, "conv3") is None and at.classes(0) is not None
    # a unit not computed yet reads as empty, not as an error
    empty = cw.open_atlas(shapes, "conv4", channels=range(6), store=at.vis_store.root, **SETTINGS)
    assert empty.unit(40).image is None and empty.unit(40).examples is None
    with pytest.raises(cw.CnnvizError, match=r"channel 64 is out of range.*0\.\.63"):
        empty.unit(64)


def test_a_changed_model_or_setting_never_reads_stale_units(shapes, first):
    store = first[0]
    same = cw.open_atlas(shapes, "conv4", channels=range(6), store=store, **SETTINGS)
    assert same.done() == set(range(6))  # without data: the visualizations
    # the same architecture with one weight changed: another key, nothing found
    changed = cw.load_model("shapes")
    kernel = changed.model.get_layer("conv4").kernel
    kernel.assign(kernel.numpy() * 1.001)
    assert model_fingerprint(changed.model) != model_fingerprint(shapes.model)
    fresh = cw.open_atlas(changed, "conv4", channels=range(6), store=store, **SETTINGS)
    assert fresh.done() == set() and fresh.unit(0).image is None
    # another setting: another key
    other = cw.open_atlas(shapes, "conv4", store=store, **{**SETTINGS, "steps": 7})
    assert other.vis_store.path != same.vis_store.path and other.done() == set()
    assert other.vis_store.path.parent == same.vis_store.path.parent  # same model + layer
    # another data set: the visualizations stay, the examples are not those of this data
    data2 = cw.generate_shapes(20, seed=99)
    with_other_data = cw.open_atlas(
        shapes, "conv4", data2, channels=range(6), store=store, **SETTINGS
    )
    assert with_other_data.vis_store.done() >= set(range(6))
    assert with_other_data.done() == set() and with_other_data.unit(0).examples is None
    assert same.vis_store.index()["settings"]["steps"] == 6


def test_several_writers_at_once_never_leave_a_torn_file(tmp_path):
    """Eight threads write the same 30 units (1 MB each) while readers read them: a reader
    sees a whole file from one writer or no file, and no temporary file is left."""
    store = UnitStore(tmp_path, "m", "0" * 32, "conv", "vis", {"steps": 1})
    store.prepare()
    errors = []
    done = threading.Event()

    def write(w):
        try:
            for u in range(30):
                store.save(u, {"image": np.full(1 << 20, w, np.uint8)}, {"writer": w})
        except Exception as err:  # pragma: no cover - the test reports it
            errors.append(err)

    def read():
        try:
            while not done.is_set():
                for u in range(30):
                    got = store.load(u)
                    if got is None:
                        continue
                    img = got["image"]
                    assert img.size == 1 << 20 and (img == img[0]).all()
                    assert got["meta"]["writer"] == int(img[0])
        except Exception as err:
            errors.append(err)

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    for t in readers:
        t.join()
    assert not errors, errors[:3]
    assert store.done() == set(range(30))
    assert sorted(os.listdir(store.path)) == ["index.json"] + [
        f"unit-{u:05d}.npz" for u in range(30)
    ]


def test_examples_of_an_unkeyed_stream_stay_in_memory(shapes, data, tmp_path):
    def gen():
        yield data.images[:30]
        yield data.images[30:]

    at = cw.atlas(shapes, "conv4", gen(), channels=[1], store=tmp_path, **SETTINGS)
    assert at.examples_store is None and any("key=" in n for n in at.notes)
    assert at.unit(1).examples.shape == (9, 64, 64, 3) and at.complete
    keyed = cw.atlas(
        shapes, "conv4", gen(), channels=[1], store=tmp_path, key="first-60", **SETTINGS
    )
    assert keyed.examples_store is not None and keyed.examples_store.done() == {1}


def test_bad_input_gets_a_clear_message(shapes, tmp_path, monkeypatch):
    with pytest.raises(cw.CnnvizError, match="unknown preset 'fancy'"):
        cw.atlas(shapes, "conv4", store=tmp_path, preset="fancy")
    with pytest.raises(cw.CnnvizError, match="unknown backend 'dask'"):
        cw.atlas(shapes, "conv4", store=tmp_path, backend="dask")
    with pytest.raises(cw.CnnvizError, match="batch is the channels per compiled step"):
        cw.atlas(shapes, "conv4", store=tmp_path, batch=0)
    with pytest.raises(cw.CnnvizError, match=r"channels \[70\] out of range"):
        cw.atlas(shapes, "conv4", store=tmp_path, channels=[70])
    with pytest.raises(cw.LayerNotFoundError):
        cw.atlas(shapes, "conv7", store=tmp_path)
    # without Ray installed, backend="ray" says how to get it
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(cw.CnnvizError, match=r"pip install 'cnnviz-widgets\[ray\]'"):
        cw.atlas(shapes, "conv4", store=tmp_path, backend="ray")
    with pytest.raises(cw.CnnvizError, match=r"pip install 'cnnviz-widgets\[ray\]'"):
        cw.top_examples(shapes, "conv4", np.zeros((2, 64, 64, 3)), backend="ray")


def test_the_plan_fixes_chunks_and_seeds(shapes, tmp_path):
    plan = AtlasPlan(
        shapes,
        "conv4",
        None,
        channels=[5, 30, 31, 63],
        store=tmp_path,
        preset="lucid",
        steps=4,
        batch=16,
        seed=0,
        k=9,
        score="mean",
        examples_batch=64,
        key=None,
    )
    assert plan.missing_chunks() == [0, 1, 3]
    assert plan.chunk_channels(3) == list(range(48, 64))
    seeds = {plan.chunk_seed(c) for c in range(4)}
    assert len(seeds) == 4 and all(0 <= s < 2**31 - 1 for s in seeds)


def test_the_local_path_never_imports_ray(tmp_path):
    """Ray is an optional extra: the package and a local atlas do not import it."""
    code = (
        "import sys, cnnviz_widgets as cw\n"
        "m = cw.load_model('shapes')\n"
        f"cw.atlas(m, 'conv4', cw.generate_shapes(8), channels=[0], steps=1, batch=1, "
        f"store={str(tmp_path)!r})\n"
        "print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
