"""A model that says what it was trained on (the embedded shapes models) gets a note when an
image is unlike its training images (a photo, noise); generated shapes images get none; a
model that says nothing gets no note at all (nothing is guessed)."""

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.model import distribution
from cnnviz_widgets.widgets import ImageExplainer

from .unlike_images import crops as _crops
from .unlike_images import pasted as _pasted
from .unlike_images import photo as _photo
from .unlike_images import pink as _pink

RNG_SEED = 11


def _flagged(shapes, images) -> float:
    checks = [cw.distribution_check(shapes, im) for im in images]
    assert all(c is not None for c in checks)
    return float(np.mean([not c.in_distribution for c in checks]))


def test_generated_shapes_images_are_like_the_training_images(shapes):
    batch = cw.generate_shapes(200, seed=2024)  # not the seeds the thresholds were set on
    checks = [cw.distribution_check(shapes, im) for im in batch.images]
    passed = np.mean([c.in_distribution for c in checks])
    assert passed >= 0.99, [c.reason for c in checks if not c.in_distribution][:3]
    assert all(c.note == "" for c in checks if c.in_distribution)
    # every class passes, the textures too (their patterns are one colour on the background)
    for k in range(9):
        assert np.mean([c.in_distribution for c, y in zip(checks, batch.labels) if y == k]) >= 0.95


def test_photos_noise_and_photo_like_images_are_flagged(shapes):
    rng = np.random.default_rng(RNG_SEED)
    grace, pack = _photo("grace_hopper.jpg"), _photo("Minduka_Present_Blue_Pack.png")
    photos = _crops(grace, 40, rng) + _crops(pack, 40, rng)
    assert _flagged(shapes, photos) >= 0.97
    assert _flagged(shapes, [cw.sample_image("grace_hopper")]) == 1.0  # the whole photo
    noise = [rng.uniform(0, 1, (64, 64, 3)) for _ in range(20)]
    noise += [np.clip(rng.normal(0.5, 0.2, (64, 64, 3)), 0, 1) for _ in range(20)]
    assert _flagged(shapes, noise) == 1.0
    assert _flagged(shapes, _pink(40, rng)) == 1.0
    # a product photo: a plain border, but not one shape of one colour inside
    assert _flagged(shapes, _pasted(photos, rng)) >= 0.95


def test_an_image_without_a_shape_is_flagged_and_says_so(shapes):
    """Plain colours and clean ramps pass the border and one-colour checks (they are
    backgrounds as in training), but no training image is without its shape."""
    rng = np.random.default_rng(5)
    plain = [np.ones((64, 64, 3), np.float32) * rng.uniform(0, 1, 3) for _ in range(10)]
    t = np.linspace(0, 1, 64, dtype=np.float32)[None, :, None]
    ramps = [(1 - t) * rng.uniform(0, 1, 3) + t * rng.uniform(0, 1, 3) for _ in range(10)]
    ramps = [np.broadcast_to(r, (64, 64, 3)).copy() for r in ramps]
    for image in plain + ramps:
        check = cw.distribution_check(shapes, image)
        assert not check.in_distribution and check.scores["no_object"] == 1.0
        assert check.scores["border"] <= check.thresholds["border"]  # a training background
        assert "no shape in it" in check.reason
    # every generated image holds enough object pixels: its no_object is 0
    batch = cw.generate_shapes(100, seed=77)
    assert max(distribution.shapes_measures(im)["no_object"] for im in batch.images) == 0.0


def test_the_check_says_why_with_its_measures(shapes):
    check = cw.distribution_check(shapes, cw.sample_image("grace_hopper"))
    assert check.in_distribution is False and check.trained_on == "generated shapes images"
    assert set(check.scores) == {"border", "one_object", "no_object"}
    assert check.thresholds == distribution.SHAPES_THRESHOLDS
    over = [k for k in check.scores if check.scores[k] > check.thresholds[k]]
    assert over and all(k in check.reason for k in over)
    assert check.note.startswith("This image is unlike the generated shapes images")
    assert "its answer means little" in check.note
    # any size is fitted to the model's input first, as predict_top does
    big = cw.sample_image("circle", size=128)
    assert cw.distribution_check(shapes, big).in_distribution


def test_predictions_carry_the_note_for_a_photo_and_not_for_a_shape(shapes):
    with pytest.warns(cw.ImageAdjustedWarning):
        photo = cw.predict_top(shapes, cw.sample_image("grace_hopper"))
    assert photo.in_distribution is False
    assert photo.notes[0] == photo.distribution_note
    assert "unlike the generated shapes images" in str(photo)
    shape = cw.predict_top(shapes, cw.sample_image("ring", seed=4))
    assert shape.in_distribution is True and shape.distribution_note == ""
    assert not any("unlike" in n for n in shape.notes)


def test_a_model_that_does_not_say_what_it_was_trained_on_gets_no_note(shapes, tmp_path):
    bare = cw.wrap_model(shapes.model, preprocessing="unit", class_names=shapes.class_names)
    photo = cw.sample_image("grace_hopper", size=64)
    assert cw.distribution_check(bare, photo) is None
    p = cw.predict_top(bare, photo)
    assert p.in_distribution is None and p.distribution_note == ""
    assert not any("unlike" in n for n in p.notes)
    # your own model trained on generated shapes: say so, and it is checked
    bare.metadata["training_data"] = "shapes"
    assert cw.distribution_check(bare, photo).in_distribution is False
    # a data set of your own
    seen = []

    def mine(image):
        seen.append(image.shape)
        return cw.DistributionCheck(False, "my images", "too blue")

    cw.register_training_data("mine-test", mine)
    try:
        bare.metadata["training_data"] = "mine-test"
        check = cw.distribution_check(bare, cw.sample_image("grace_hopper"))
        assert seen == [(64, 64, 3)] and check.note.endswith("(too blue).")
    finally:
        distribution._CHECKS.pop("mine-test")
    # the prediction keeps its fields through save and load
    saved = cw.predict_top(shapes, photo).save(tmp_path / "p")
    loaded = cw.load_result(saved)
    assert loaded.in_distribution is False and loaded.distribution_note


def test_the_explain_panel_shows_the_note_beside_the_prediction(shapes):
    panel = ImageExplainer(shapes)
    assert panel.top.unlike.layout.display == "none"  # a generated circle: nothing to say
    panel.set_image(cw.sample_image("grace_hopper", size=64))
    assert panel.top.unlike.layout.display is None
    text = panel.top.unlike.value
    assert "This image is unlike the generated shapes images" in text
    assert "its answer means little" in text

    # it sits right under the top-5 table, before what is explained
    def boxes(widget):
        for child in getattr(widget, "children", ()):
            yield child
            yield from boxes(child)

    side = next(b for b in boxes(panel) if panel.top.html in getattr(b, "children", ()))
    kids = list(side.children)
    assert kids.index(panel.top.unlike) == kids.index(panel.top.html) + 1
    panel.set_image(cw.sample_image("square", seed=3))
    assert panel.top.unlike.layout.display == "none" and panel.top.unlike.value == ""


def test_the_panel_says_nothing_for_a_model_without_training_data(shapes):
    bare = cw.wrap_model(shapes.model, preprocessing="unit", class_names=shapes.class_names)
    panel = ImageExplainer(bare, image=cw.sample_image("grace_hopper", size=64))
    assert panel.predictions is not None and panel.predictions.in_distribution is None
    assert panel.top.unlike.layout.display == "none"
