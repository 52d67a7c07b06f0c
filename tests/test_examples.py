"""Dataset examples (cw.top_examples): exact against a brute-force ranking, the same from
every kind of data source, bounded memory on a long stream, progress and stop."""

import threading
import tracemalloc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.engine.dataset.top_k import TopK


@pytest.fixture(scope="module")
def small():
    """150 shapes images as uint8 (the reference: every source reads them exactly)."""
    data = cw.generate_shapes(150, seed=11)
    return np.rint(data.images * 255).astype(np.uint8), data.labels


def activations(model, layer, images_uint8, kind="output"):
    """The layer's output (or input) on every image at once (the brute force)."""
    ext = cw.extractor(model, [cw.Tap(layer, kind)], with_outputs=False)
    x = model.preprocessing(images_uint8.astype(np.float32) / 255.0)
    out = ext(x, training=False)
    return np.asarray(out[0] if isinstance(out, list) else out)


def seen(model, layer):
    """The map positions where the unit sees the image (at least 3/4 of its field on it,
    or the best there is), as the engine's ranking counts them; ``None``: all."""
    from cnnviz_widgets.engine.dataset.search import INSIDE_SHARE, image_share

    share = image_share(model, layer)
    return None if share is None else share >= min(INSIDE_SHARE, share.max() - 1e-6)


def brute_force(acts, k, score="mean", where=None):
    """Per channel: the k best images by score, ties to the earlier image; a max score is
    taken over the positions ``where`` (default: all)."""
    flat = acts.reshape(len(acts), -1, acts.shape[-1])
    inside = flat if where is None else np.where(where.reshape(1, -1, 1), flat, -np.inf)
    scores = flat.mean(axis=1) if score == "mean" else inside.max(axis=1)  # (N, C)
    order = np.stack(
        [np.lexsort((np.arange(len(scores)), -scores[:, c]))[:k] for c in range(scores.shape[1])]
    )
    return scores, order


@pytest.mark.parametrize("score", ["mean", "max"])
def test_top_examples_equal_a_brute_force_ranking(shapes, small, score):
    images, labels = small
    # float32 asked for here and below where a float32 brute force is the reference ("auto"
    # may rank in bfloat16 on a CPU with fast bfloat16: see test_precision.py for that)
    top = cw.top_examples(
        shapes, "conv3", (images, labels), k=5, score=score, batch_size=32, precision="float32"
    )
    acts = activations(shapes, "conv3", images)
    where = seen(shapes, "conv3")
    assert where is not None and not where.all()  # the border positions are left out
    scores, order = brute_force(acts, 5, score, where)
    np.testing.assert_array_equal(top.indices, order)
    np.testing.assert_allclose(
        top.scores, np.take_along_axis(scores.T, order, axis=1), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(top.labels, labels[order])
    assert top.seen == 150 and not top.stopped and top.units.tolist() == list(range(64))
    # each kept map is the unit's map on that image; the position is its maximum
    for c in (0, 17, 63):
        for j in range(5):
            m = acts[order[c, j], :, :, c]
            np.testing.assert_allclose(top.maps[c, j], m, rtol=1e-5, atol=1e-5)
            peak = m[where].max()  # the maximum where the unit sees the image
            assert m[tuple(top.positions[c, j])] == pytest.approx(peak, abs=1e-5)
        np.testing.assert_array_equal(top.images(c), images[order[c]])
    # several channels share images: the pool holds each once
    assert len(top.pool) == len(np.unique(order)) <= 64 * 5


def test_a_channel_slice_and_a_dense_layer(shapes, small):
    images, _ = small
    top = cw.top_examples(shapes, "conv4", images, k=3, channels=slice(10, 14), precision="float32")
    acts = activations(shapes, "conv4", images)
    _, order = brute_force(acts, 3)
    assert top.units.tolist() == [10, 11, 12, 13]
    np.testing.assert_array_equal(top.indices, order[10:14])
    assert top.row(12) == 2
    with pytest.raises(cw.CnnvizError, match=r"unit 3 was not ranked.*10\.\.13"):
        top.images(3)
    gap = cw.top_examples(shapes, "gap", images, k=4, precision="float32")
    assert gap.positions is None and gap.maps is None and gap.box(0) is None
    _, order = brute_force(activations(shapes, "gap", images)[:, None, None, :], 4)
    np.testing.assert_array_equal(gap.indices, order)


def test_class_examples_rank_by_the_log_odds_of_the_class(shapes, small):
    images, labels = small
    top = cw.top_examples(shapes, None, (images, labels), k=4, precision="float32")
    assert top.kind == "class" and top.unit_names == list(cw.SHAPES_CLASS_NAMES)
    assert top.name(2) == "triangle"
    assert top.layer == cw.get_layer(shapes, -1)[1]
    # the logits, read from the last Dense layer's input and weights, in float64
    feats = activations(shapes, "predictions", images, kind="input").astype(np.float64)
    dense = shapes.model.get_layer("predictions")
    z = feats @ np.asarray(dense.kernel, np.float64) + np.asarray(dense.bias, np.float64)
    odds = np.empty_like(z)
    for c in range(9):
        others = np.delete(z, c, axis=1)
        m = others.max(axis=1)
        odds[:, c] = z[:, c] - m - np.log(np.exp(others - m[:, None]).sum(axis=1))
    # the confident images do not tie (their probability is 1.0 in float32)
    assert len(np.unique(top.scores)) == top.scores.size
    for c in range(9):
        np.testing.assert_allclose(top.scores[c], odds[top.indices[c], c], rtol=1e-4, atol=1e-3)
        rest = np.delete(odds[:, c], top.indices[c])
        assert top.scores[c].min() >= rest.max() - 1e-3
    assert (top.labels == np.arange(9)[:, None]).mean() > 0.9
    # the same when asked by the output layer's name
    same = cw.top_examples(shapes, "predictions", images, k=4, precision="float32")
    np.testing.assert_array_equal(same.indices, top.indices)


def write_pngs(folder, images, labels=None):
    paths = []
    for i, img in enumerate(images):
        sub = folder / (cw.SHAPES_CLASS_NAMES[labels[i]] if labels is not None else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{i:04d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


def test_every_data_source_gives_the_same_ranking(shapes, small, tmp_path):
    images, labels = small
    images, labels = images[:60], labels[:60]
    ref = cw.top_examples(shapes, "conv2", images, k=3, batch_size=16)
    floats = images.astype(np.float32) / 255.0

    def gen():  # batches of odd sizes, as (x, y) pairs
        for i in range(0, 60, 7):
            yield floats[i : i + 7], labels[i : i + 7]

    paths = write_pngs(tmp_path / "flat", images)
    sources = {
        "float array": floats,
        "0..255 floats": images.astype(np.float32),
        "ShapesBatch": cw.ShapesBatch(floats, labels, np.zeros((60, 64, 64), bool)),
        "paths": paths,
        "folder": tmp_path / "flat",
        "dataset": tf.data.Dataset.from_tensor_slices((floats, labels)).batch(9),
        "unbatched dataset": tf.data.Dataset.from_tensor_slices(images),
        "generator": gen(),
        "list of single images": list(floats),
    }
    for name, data in sources.items():
        top = cw.top_examples(shapes, "conv2", data, k=3, batch_size=16)
        np.testing.assert_array_equal(top.indices, ref.indices, err_msg=name)
        np.testing.assert_allclose(top.scores, ref.scores, rtol=1e-5, err_msg=name)
        assert top.seen == 60, name
    assert cw.top_examples(shapes, "conv2", paths, k=3).sources[0] in paths
    # a folder with one sub-folder per class: the sub-folders are the labels
    order = np.argsort([f"{cw.SHAPES_CLASS_NAMES[y]}/img{i:04d}" for i, y in enumerate(labels)])
    write_pngs(tmp_path / "classes", images, labels)
    top = cw.top_examples(shapes, None, tmp_path / "classes", k=2)
    names = sorted({cw.SHAPES_CLASS_NAMES[y] for y in labels})
    assert top.label_names == names
    picked = order[top.indices]  # stream position (sorted files) -> original image
    assert [names[v] for v in top.labels.ravel()] == [
        cw.SHAPES_CLASS_NAMES[labels[i]] for i in picked.ravel()
    ]


def test_a_shapes_stream_is_read_in_parts(shapes):
    stream = cw.ShapesStream(90, seed=4, chunk=40)
    whole = np.concatenate([b.images for b in stream])
    assert whole.shape == (90, 64, 64, 3)
    part = np.concatenate([b.images for b in stream.read(35, 85)])
    np.testing.assert_array_equal(part, whole[35:85])
    a = cw.top_examples(shapes, "conv4", stream, k=4, batch_size=32)
    b = cw.top_examples(shapes, "conv4", whole, k=4, batch_size=32)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert (a.labels >= 0).all()


def test_a_long_stream_runs_in_bounded_memory():
    """A generator of ~200 MB of images: the search holds a few batches and units x k
    images, never the stream."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((96, 96, 3))
    x = keras.layers.Conv2D(6, 5, strides=4, activation="relu", name="c")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    n_batches, size = 60, 32
    live = set()
    made = [0]

    def stream():
        rng = np.random.default_rng(0)
        for i in range(n_batches):
            batch = rng.random((size, 96, 96, 3), dtype=np.float32)
            made[0] += 1
            live.add(i)
            weakref.finalize(batch, live.discard, i)
            yield batch
            del batch

    most_live = [0]

    def progress(p):
        most_live[0] = max(most_live[0], len(live))

    total_bytes = n_batches * size * 96 * 96 * 3 * 4
    tracemalloc.start()
    try:
        search = cw.rank_examples(model, "c", stream(), k=3, batch_size=size)
        for p in search:
            progress(p)
            held = search.state.held_images()
            assert held <= 6 * 3
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    top = search.result
    assert made[0] == n_batches and top.seen == n_batches * size
    assert most_live[0] <= 2, "the source's batches were kept"
    assert peak < total_bytes / 10, (
        f"peak {peak / 1e6:.1f} MB for a {total_bytes / 1e6:.0f} MB stream"
    )
    assert len(top.pool) <= 6 * 3 and top.maps.shape == (6, 3, 23, 23)


def test_progress_and_stop(shapes, small):
    images, _ = small
    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append((p.seen, p.total, p.final))
        if p.seen >= 64:
            stop.set()

    top = cw.top_examples(
        shapes,
        "conv4",
        images,
        k=3,
        batch_size=32,
        progress=progress,
        stop=stop,
        precision="float32",
    )
    assert seen[:2] == [(32, 150, False), (64, 150, False)] and seen[-1][2]
    assert top.stopped and top.seen == 64
    # what was seen is ranked exactly
    _, order = brute_force(activations(shapes, "conv4", images[:64]), 3)
    np.testing.assert_array_equal(top.indices, order)
    # the iterator form: stop() from the loop, a snapshot on the way
    search = cw.rank_examples(shapes, "conv4", images, k=3, batch_size=50)
    for p in search:
        if not p.final:
            snap = search.snapshot()
            assert snap.seen == p.seen == 50
            search.stop()
    assert search.result.stopped and search.result.seen == 50
    with pytest.raises(cw.CnnvizError, match="iterated once"):
        next(iter(search))


def test_merging_parts_of_a_stream_equals_the_whole(shapes, small):
    images, labels = small
    whole = cw.top_examples(
        shapes, "conv3", (images, labels), k=4, batch_size=40, precision="float32"
    )
    state = TopK(64, 4, spatial=True, map_shape=(16, 16))
    for lo, hi in ((100, 150), (0, 37), (37, 100)):
        search = cw.rank_examples(shapes, "conv3", images, k=4, batch_size=40)
        search = cw.engine.dataset.examples.ExampleSearch(
            search.loaded,
            search.layer,
            search.kind,
            search.source,
            k=4,
            score="mean",
            units=search.units,
            batch_size=40,
            keep_maps=True,
            start=lo,
            stop=hi,
        )
        for _ in search:
            pass
        state.merge(search.result)
    merged = state.result(
        layer="conv3", kind="channel", units=np.arange(64), unit_names=None, score="mean"
    )
    np.testing.assert_array_equal(merged.indices, whole.indices)
    np.testing.assert_array_equal(merged.scores, whole.scores)
    # (the parts' batches differ from the whole's: the last bit of a map can differ)
    np.testing.assert_allclose(merged.maps, whole.maps, rtol=1e-5, atol=1e-5)
    for c in (0, 33):
        np.testing.assert_array_equal(merged.images(c), whole.images(c))
    assert merged.seen == 150


def test_bad_input_gets_a_clear_message(shapes, small, tmp_path):
    images, _ = small
    with pytest.raises(cw.CnnvizError, match="k is the number of images"):
        cw.top_examples(shapes, "conv4", images, k=0)
    with pytest.raises(cw.CnnvizError, match="unknown score 'median'"):
        cw.top_examples(shapes, "conv4", images, score="median")
    with pytest.raises(cw.CnnvizError, match=r"channels \[99\] out of range.*0\.\.63"):
        cw.top_examples(shapes, "conv4", images, channels=[99])
    with pytest.raises(cw.LayerNotFoundError):
        cw.top_examples(shapes, "conv9", images)
    with pytest.raises(cw.CnnvizError, match="holds no image files"):
        cw.top_examples(shapes, "conv4", tmp_path)
    with pytest.raises(cw.CnnvizError, match="cannot read images from a int"):
        cw.top_examples(shapes, "conv4", 5)
    with pytest.raises(cw.CnnvizError, match=r"shape \(N, H, W, C\)"):
        cw.top_examples(shapes, "conv4", np.zeros((4,)))
    with pytest.raises(cw.CnnvizError, match="NaN"):
        cw.top_examples(shapes, "conv4", np.full((2, 64, 64, 3), np.nan, np.float32))
    with pytest.raises(cw.CnnvizError, match="not files"):
        cw.top_examples(shapes, "conv4", [str(tmp_path / "missing.png")])
    with pytest.raises(cw.CnnvizError, match="unknown backend"):
        cw.top_examples(shapes, "conv4", images, backend="spark")
    # another size is resized, and the note says so
    top = cw.top_examples(shapes, "conv4", images[:4, :48, :48], k=2)
    assert any("resized from 48x48 to 64x64" in n for n in top.notes)


@pytest.mark.slow
def test_quality_on_two_thousand_generated_images(shapes):
    """The issue's quality bar: on 2,000 generated images every conv4 unit's top examples
    score at least as high as every other image, and each class's top 9 are >= 8 of 9 of
    that class."""
    data = cw.generate_shapes(2000, seed=123)
    top = cw.top_examples(shapes, "conv4", data, k=9, batch_size=128)
    ext = cw.extractor(shapes, [cw.Tap("conv4")], with_outputs=False)
    x = shapes.preprocessing(data.images)
    acts = np.concatenate(
        [np.asarray(ext(x[i : i + 250], training=False)) for i in range(0, 2000, 250)]
    )
    scores = acts.mean(axis=(1, 2))  # (2000, 64)
    for c in range(64):
        rest = np.delete(scores[:, c], top.indices[c])
        assert top.scores[c].min() >= rest.max() - 1e-4, c
        np.testing.assert_allclose(top.scores[c], scores[top.indices[c], c], rtol=1e-4, atol=1e-4)
    classes = cw.top_examples(shapes, None, data, k=9, batch_size=128)
    hits = (classes.labels == np.arange(9)[:, None]).sum(axis=1)
    assert (hits >= 8).all(), dict(zip(cw.SHAPES_CLASS_NAMES, hits.tolist()))


def test_peaks_are_where_the_unit_sees_the_image():
    """conv1 (7x7, zero 'same' padding) answers the image's border against the padding: its
    maps peak there on most images. The outlined peak is looked for where at least 3/4 of
    the unit's field is on the image."""
    from cnnviz_widgets.engine.dataset.search import INSIDE_SHARE, image_share

    m = cw.load_model("shapes")
    share = image_share(m, "conv1")
    assert share.shape == (64, 64)
    assert np.isclose(share[0, 0], (4 / 7) ** 2) and share[32, 32] == 1.0
    assert np.isclose(share[0, 32], 4 / 7) and np.isclose(share[2, 32], 6 / 7)
    top = cw.top_examples(m, "conv1", cw.generate_shapes(300, seed=0), k=9, channels=[2])
    raw = [np.unravel_index(np.argmax(a), a.shape) for a in top.maps[0]]
    on_border = [p for p in raw if share[p] < INSIDE_SHARE]
    assert len(on_border) >= 3  # the maps' own maxima: on the padding's edge
    for rank, (y, x) in enumerate(top.positions[0]):
        assert share[y, x] >= INSIDE_SHARE, (rank, y, x)
        kept = np.where(share >= INSIDE_SHARE, top.maps[0][rank], -np.inf)
        assert top.maps[0][rank][y, x] == kept.max()  # the peak among those positions
    # a layer whose every position sees the image whole: nothing is left out
