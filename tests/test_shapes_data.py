import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model.shapes import CLASS_NAMES, class_index, generate_shapes, sample


def test_seeded_and_deterministic():
    a, b = generate_shapes(30, seed=5), generate_shapes(30, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    c = generate_shapes(30, seed=6)
    assert not np.array_equal(a.images, c.images)


def test_batch_contents():
    batch = generate_shapes(90, seed=1)
    assert batch.images.shape == (90, 64, 64, 3) and batch.images.dtype == np.float32
    assert batch.images.min() >= 0 and batch.images.max() <= 1
    assert np.bincount(batch.labels, minlength=9).tolist() == [10] * 9
    area = batch.masks.mean(axis=(1, 2))
    assert (area > 0.02).all() and (area < 0.6).all()
    # the object differs from the background: mask pixels stand out
    for img, mask in zip(batch.images[:10], batch.masks[:10]):
        inside, outside = img[mask].mean(0), img[~mask].mean(0)
        assert np.abs(inside - outside).sum() > 0.05


def test_class_subset_and_names():
    batch = generate_shapes(10, seed=0, classes=["ring", 0])
    assert set(batch.labels.tolist()) == {0, 3}
    assert class_index("dots") == CLASS_NAMES.index("dots")
    with pytest.raises(ValueError, match="unknown shape class"):
        class_index("hexagon")
    img, mask = sample("cross", seed=3, size=96)
    assert img.shape == (96, 96, 3) and mask.shape == (96, 96)


def test_sample_images_offline():
    hopper = cw.sample_image("grace_hopper")
    assert hopper.ndim == 3 and hopper.shape[2] == 3 and 0 <= hopper.min() and hopper.max() <= 1
    small = cw.sample_image("grace_hopper", size=224)
    assert small.shape == (224, 224, 3)
    assert cw.sample_image("circle", size=(32, 48)).shape == (32, 48, 3)
    with pytest.raises(cw.CnnvizError, match="grace_hopper"):
        cw.sample_image("lena")
