"""Honest unit reports: dead and near-dead units flagged, a unit's files in one call, and
cw.extractor taking layer names."""

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.dataset.top_k import TopK
from cnnviz_widgets.engine.dataset.unit_health import health_of


@pytest.fixture(scope="module")
def many():
    """2,000 generated images as uint8."""
    data = cw.generate_shapes(2000, seed=0)
    return np.rint(data.images * 255).astype(np.uint8), data.labels


def layer_max(model, layer, images_uint8, batch=250):
    """Per image and channel: the maximum of the layer's map (brute force, by batches)."""
    ext = cw.extractor(model, [layer], with_outputs=False)
    out = []
    for i in range(0, len(images_uint8), batch):
        x = model.preprocessing(images_uint8[i : i + batch].astype(np.float32) / 255.0)
        a = ext(x, training=False)
        a = np.asarray(a[0] if isinstance(a, list) else a)
        out.append(a.reshape(len(a), -1, a.shape[-1]).max(axis=1))
    return np.concatenate(out)


def test_conv4_units_that_never_fire_on_2000_images_are_flagged(shapes, many):
    images, labels = many
    top = cw.top_examples(shapes, "conv4", (images, labels), k=4)
    peak = layer_max(shapes, "conv4", images)  # (2000, 64)
    fired = (peak > 0).sum(axis=0)
    assert top.seen == 2000
    np.testing.assert_array_equal(top.fired, fired)
    dead = np.flatnonzero(fired == 0)
    assert len(dead) > 0, "the check needs a dead unit: conv4 of the embedded model has some"
    np.testing.assert_array_equal(top.dead_units(), dead)
    for u in dead:
        assert top.health(u) == "dead" and top.fired_on(u) == 0
    alive = int(np.flatnonzero(fired >= 20)[0])
    assert top.health(alive) == "alive"
    note = [n for n in top.notes if "never fired" in n]
    assert len(note) == 1
    assert f"{len(dead)} of 64 channels never fired on the 2000 images" in note[0]
    for u in dead:
        assert str(u) in note[0]


def test_near_dead_and_counts_on_a_slice_and_after_a_merge(shapes, many):
    images, _ = many
    part = images[:300]
    top = cw.top_examples(shapes, "conv4", part, k=2, channels=slice(8, 20))
    fired = (layer_max(shapes, "conv4", part)[:, 8:20] > 0).sum(axis=0)
    np.testing.assert_array_equal(top.fired, fired)
    near = top.units[(fired > 0) & (fired < 0.01 * 300)]
    np.testing.assert_array_equal(top.near_dead_units(), near)
    # two halves merged count like the whole
    a = cw.top_examples(shapes, "conv4", part[:150], k=2, channels=slice(8, 20))
    b = cw.top_examples(shapes, "conv4", part[150:], k=2, channels=slice(8, 20))
    b.indices[b.indices >= 0] += 150
    state = TopK(12, 2, True, a.maps.shape[2:])
    state.merge(a)
    state.merge(b)
    np.testing.assert_array_equal(state.result(**_info(a)).fired, fired)


def _info(top):
    return dict(layer=top.layer, kind=top.kind, units=top.units, unit_names=None, score=top.score)


def test_health_words():
    assert health_of(0, 100) == "dead"
    assert health_of(1, 200) == "near-dead"
    assert health_of(2, 200) == "alive"
    assert health_of(None, 100) == "unknown"
    assert health_of(0, 0) == "unknown"


def test_class_rankings_do_not_claim_to_count_firing(shapes, many):
    images, _ = many
    top = cw.top_examples(shapes, None, images[:40], k=2)
    assert top.kind == "class" and top.fired is None
    assert top.health(0) == "unknown" and len(top.dead_units()) == 0


def test_a_units_file_paths_in_one_call(shapes, many, tmp_path):
    from PIL import Image

    images, labels = many
    for i in range(24):
        folder = tmp_path / f"c{labels[i]}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"img{i:02d}.png")
    top = cw.top_examples(shapes, "conv3", tmp_path, k=3)
    for u in (0, 5):
        expected = [top.sources[s] for s in top.slots[top.row(u)] if s >= 0]
        assert top.paths(u) == expected
        assert all(p.endswith(".png") for p in top.paths(u))
        assert len(top.paths(u)) == 3
    back = cw.load_result(top.save(tmp_path / "top"))  # paths and counts are kept
    assert back == top and back.paths(5) == top.paths(5)
    np.testing.assert_array_equal(back.fired, top.fired)
    mem = cw.top_examples(shapes, "conv3", images[:10], k=3)
    assert mem.paths(0) == [None, None, None]


@pytest.mark.parametrize(
    "taps", [["conv3"], "conv3", [2], ["conv3", cw.Tap("conv2", "input")]], ids=str
)
def test_extractor_takes_layer_names(shapes, taps):
    x = np.zeros((1, 64, 64, 3), np.float32)
    ext = cw.extractor(shapes, taps, with_outputs=False)
    out = ext(x)
    out = out if isinstance(out, list) else [out]
    ref = cw.extractor(shapes, [cw.Tap("conv3")], with_outputs=False)(x)
    ref = ref[0] if isinstance(ref, list) else ref
    if taps != [2]:
        np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(ref))
    with pytest.raises(cw.CnnvizError, match="no layer named 'nope'"):
        cw.extractor(shapes, ["nope"])
