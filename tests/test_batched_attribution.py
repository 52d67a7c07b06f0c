"""Many images at once (cw.explain_batch): the same maps as the one-image methods, from
every kind of data source, in batched compiled passes that do not retrace."""

import threading

import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model.scoring import tracing_count


@pytest.fixture(scope="module")
def data():
    return cw.generate_shapes(20, seed=7)


def close(a, b, rel=1e-4):
    scale = max(float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a, b, atol=rel * scale, rtol=0)


@pytest.mark.parametrize("plus_plus", [False, True])
def test_grad_cam_of_a_batch_equals_one_image_at_a_time(shapes, data, plus_plus):
    method = "grad_cam++" if plus_plus else "grad_cam"
    many = cw.explain_batch(shapes, data.images, method, batch_size=8)
    assert len(many) == 20 and many.heatmaps.shape == (20, 64, 64)
    assert many.layer == "conv4" and many.method == method
    for i in (0, 7, 8, 19):  # both sides of a batch edge
        one = cw.grad_cam(shapes, data.images[i], plus_plus=plus_plus)
        assert many.class_indices[i] == one.class_index
        close(many.heatmaps[i], one.heatmap)
        close(many.raw[i], one.raw)
        close(many.weights[i], one.weights)
        assert many.scores[i] == pytest.approx(one.score, rel=1e-4)
        assert many.probabilities[i] == pytest.approx(one.probability, abs=1e-5)
        item = many[i]
        assert isinstance(item, cw.GradCam) and item.class_name == one.class_name
        np.testing.assert_array_equal(item.heatmap, many.heatmaps[i])


def test_saliency_and_smoothgrad_of_a_batch_equal_one_image_at_a_time(shapes, data):
    plain = cw.explain_batch(shapes, data.images[:5], "saliency", batch_size=3)
    smooth = cw.explain_batch(shapes, data.images[:5], "smoothgrad", smooth=3, seed=4)
    for i in range(5):
        one = cw.saliency(shapes, data.images[i], precision="float32")
        close(plain.raw[i], one.raw)
        close(plain.heatmaps[i], one.heatmap, rel=1e-3)
        noisy = cw.saliency(shapes, data.images[i], smooth=3, seed=4 + i, precision="float32")
        close(smooth.raw[i], noisy.raw)
        assert isinstance(smooth[i], cw.Saliency) and smooth[i].samples == 3
    assert smooth.noise == 0.15 and plain.noise == 0.0


def test_targets_labels_names_and_one_class_per_image(shapes, data):
    labelled = cw.explain_batch(shapes, (data.images, data.labels), target="label")
    np.testing.assert_array_equal(labelled.class_indices, data.labels)
    np.testing.assert_array_equal(labelled.labels, data.labels)
    ring = cw.explain_batch(shapes, data.images[:4], target="ring")
    assert list(ring.class_names) == ["ring"] * 4
    per = [1, 2, 3, 4]
    chosen = cw.explain_batch(shapes, data.images[:4], target=per, batch_size=3)
    np.testing.assert_array_equal(chosen.class_indices, per)
    one = cw.grad_cam(shapes, data.images[2], target=3)
    close(chosen.heatmaps[2], one.heatmap)
    with pytest.raises(cw.CnnvizError, match="needs labelled data"):
        cw.explain_batch(shapes, data.images[:4], target="label")
    with pytest.raises(cw.CnnvizError, match="target lists 2 classes"):
        cw.explain_batch(shapes, data.images[:4], target=[1, 2])


def test_a_folder_of_files_keeps_each_path(shapes, data, tmp_path):
    uint8 = np.rint(data.images[:6] * 255).astype(np.uint8)
    for i, im in enumerate(uint8):
        Image.fromarray(im).save(tmp_path / f"im{i}.png")
    many = cw.explain_batch(shapes, tmp_path, batch_size=4)
    assert [p.rsplit("/", 1)[-1] for p in many.sources] == [f"im{i}.png" for i in range(6)]
    np.testing.assert_array_equal(many.images, uint8)


def test_batches_of_any_size_reuse_one_compiled_pass(shapes, data):
    cw.explain_batch(shapes, data.images[:3], batch_size=3)
    before = tracing_count(shapes)
    cw.explain_batch(shapes, data.images[:7], batch_size=5)  # passes of 5 and 2
    cw.explain_batch(shapes, data.images, batch_size=16)
    assert tracing_count(shapes) == before


def test_progress_stop_save_and_figure(shapes, data, tmp_path):
    seen = []
    stop = threading.Event()

    def progress(done, total):
        seen.append((done, total))
        stop.set()

    part = cw.explain_batch(shapes, data.images, batch_size=6, progress=progress, stop=stop)
    assert seen == [(6, 20)] and part.stopped and len(part) == 6
    back = cw.load_result(part.save(tmp_path / "part"))
    assert back == part and isinstance(back, cw.Attributions)
    fig = part.to_figure(images=[0, 5])
    assert len([ax for ax in fig.axes if ax.images]) == 2
    with pytest.raises(cw.CnnvizError, match="out of range"):
        part[6]


def test_bad_calls_get_clear_messages(shapes, data):
    with pytest.raises(cw.CnnvizError, match="unknown batched method 'occlusion'"):
        cw.explain_batch(shapes, data.images, "occlusion")
    with pytest.raises(cw.CnnvizError, match="batch_size is a number of images"):
        cw.explain_batch(shapes, data.images, batch_size=0)
    with pytest.raises(cw.CnnvizError, match="smooth >= 1"):
        cw.explain_batch(shapes, data.images, "smoothgrad", smooth=0)
    with pytest.raises(cw.CnnvizError, match="spatial output"):
        cw.explain_batch(shapes, data.images, layer="gap")


def test_grad_cam_and_saliency_given_a_batch_return_batched_results(shapes, data):
    many = cw.grad_cam(shapes, data.images[:5], plus_plus=True)
    assert isinstance(many, cw.Attributions) and many.method == "grad_cam++"
    close(many.heatmaps[3], cw.grad_cam(shapes, data.images[3], plus_plus=True).heatmap)
    smooth = cw.saliency(shapes, data.images[:3], smooth=2, seed=1)
    assert smooth.method == "smoothgrad" and len(smooth) == 3
    one = cw.grad_cam(shapes, data.images[:1])  # a batch of one is one image
    assert isinstance(one, cw.GradCam)
    with pytest.raises(cw.CnnvizError, match=r"cw\.explain_batch"):
        cw.occlusion(shapes, data.images[:3])
