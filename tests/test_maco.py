"""MaCo: the phase-only parameterization, spectra from your own images, crop and noise
transforms, the transparency (alpha) map, and the ClassOptimizer's "maco" preset."""

import numpy as np
import pytest
import tensorflow as tf

import cnnviz_widgets as cw
from cnnviz_widgets import objectives as obj
from cnnviz_widgets.engine import optvis
from cnnviz_widgets.engine.optvis.param import _COLOR_SQRT

from .helpers import assert_same_state, model_state


def decorrelated_spectrum(images: np.ndarray, decorrelate: bool = True) -> np.ndarray:
    """|rfft2| ``(B, H, W//2+1, C)`` of what the Maco image was before the sigmoid and the
    colour mix: undoes both, from the float image."""
    x = np.asarray(images, np.float64)
    x = np.log(x / (1.0 - x))
    if decorrelate and x.shape[-1] == 3:
        x = x @ np.linalg.inv(_COLOR_SQRT.astype(np.float64)).T
    return np.abs(np.fft.rfft2(x, axes=(1, 2)))


def render(param, var, h, w, c):
    return param.image(tf.constant(var), h, w, c).numpy()


# --- the parameterization -----------------------------------------------------------


def test_only_the_phase_changes_during_a_run(shapes):
    """Frame after frame the image changes, but its spectrum magnitude (before the colour
    mix and the sigmoid) is the fixed one, to float precision."""
    run = cw.optimize(shapes, [0, 4], preset="maco", steps=24, every=6, seed=1)
    param = run._c.param  # the compiled step's own parameterization and variable
    assert isinstance(param, cw.Maco)
    h, w, c = 64, 64, 3
    fixed = param.magnitude(h, w, c).transpose(1, 2, 0)  # (H, W//2+1, C)
    first = None
    for frame in run:
        image = run._c.render().numpy()
        spectrum = decorrelated_spectrum(image)
        for k in range(len(image)):
            error = np.abs(spectrum[k] - fixed).max() / fixed.max()
            assert error < 1e-4, f"step {frame.step}, image {k}: magnitude moved by {error:.2e}"
        first = image if first is None else first
    assert np.abs(image - first).mean() > 0.02, "the phase hardly changed the image"
    assert (run.result.history[-1] > run.result.history[0]).all()


def test_pixels_move_when_the_phase_moves_and_fourier_is_not_phase_only():
    """The check above can fail: the Fourier parameterization changes the magnitude."""
    h, w, c = 32, 48, 3
    rng = np.random.default_rng(0)
    maco = cw.Maco()
    a, b = (render(maco, maco.init(rng, 1, h, w, c), h, w, c) for _ in range(2))
    assert np.abs(a - b).mean() > 0.05
    np.testing.assert_allclose(decorrelated_spectrum(a), decorrelated_spectrum(b), atol=1e-3)
    fourier = cw.Fourier()
    f1 = render(fourier, fourier.init(rng, 1, h, w, c) * 50, h, w, c)
    f2 = render(fourier, fourier.init(rng, 1, h, w, c) * 50, h, w, c)
    gap = np.abs(decorrelated_spectrum(f1) - decorrelated_spectrum(f2)).max()
    assert gap > 0.1, gap


@pytest.mark.parametrize("hwc", [(64, 64, 3), (31, 45, 1), (224, 224, 3)])
def test_images_are_in_range_and_have_the_asked_contrast(hwc):
    h, w, c = hwc
    for contrast in (1.0, 2.0):
        p = cw.Maco(contrast=contrast)
        var = p.init(np.random.default_rng(3), 2, h, w, c)
        assert var.shape == (2, c, h, w // 2 + 1) and var.dtype == np.float32
        image = render(p, var, h, w, c)
        assert image.shape == (2, h, w, c) and image.dtype == np.float32
        assert 0 < image.min() and image.max() < 1
        before = np.log(image / (1 - image))  # the RGB channels before the sigmoid
        assert abs(before.std() / contrast - 1) < 0.25, before.std()
        assert abs(before.mean()) < 0.1  # mid-gray on average


def test_maco_is_hashable_and_equal_for_equal_spectra():
    s = cw.spectrum_from(np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), np.uint8))
    a, b = cw.Maco(spectrum=s), cw.Maco(spectrum=s.copy())
    assert a == b and hash(a) == hash(b)
    assert a != cw.Maco(spectrum=s * 2) and a != cw.Maco()
    s[:] = 0  # the parameterization kept its own copy
    assert np.asarray(a.spectrum).max() > 0
    assert {a: 1}[b] == 1
    assert cw.engine.optvis.param.get_param("maco") == cw.Maco()


# --- spectrum_from ------------------------------------------------------------------


def stripes(n=4, size=64, period=8, vertical=True, dtype=np.uint8):
    x = np.arange(size)
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * x / period)
    image = np.broadcast_to(wave[None, :] if vertical else wave[:, None], (size, size))
    images = np.repeat(image[None, ..., None], 3, axis=-1) * np.array([1.0, 0.8, 0.5])
    images = np.repeat(images, n, axis=0)
    return (images * 255).astype(np.uint8) if dtype == np.uint8 else images.astype(dtype)


def peak(spectrum):
    energy = np.square(spectrum).sum(axis=0)
    return np.unravel_index(np.argmax(energy), energy.shape)


def test_stripes_have_their_energy_at_their_frequency():
    s = cw.spectrum_from(stripes(vertical=True))  # 8 cycles across 64 pixels
    assert s.shape == (3, 64, 33) and s.dtype == np.float32
    assert peak(s) == (0, 8)
    assert s[:, 0, 0].max() == 0  # no mean (DC)
    h = cw.spectrum_from(stripes(vertical=False))
    assert peak(h) in ((8, 0), (56, 0))
    # resized to 32 px: still 8 cycles per image
    assert peak(cw.spectrum_from(stripes(vertical=True), size=32)) == (0, 8)
    # a non-square target crops the centre first: 4 cycles over the 32 px wide crop
    assert cw.spectrum_from(stripes(vertical=True), size=(32, 16)).shape == (3, 32, 9)
    assert peak(cw.spectrum_from(stripes(vertical=True), size=(32, 16))) == (0, 4)
    # uint8 and float images of the same picture give the same spectrum
    np.testing.assert_allclose(
        s, cw.spectrum_from(stripes().astype(np.float32) / 255.0 * 7), rtol=1e-3, atol=1e-3
    )
    # one channel and RGBA inputs
    assert cw.spectrum_from(stripes()[..., :1]).shape == (1, 64, 33)
    rgba = np.concatenate([stripes(), np.full((4, 64, 64, 1), 255, np.uint8)], axis=-1)
    np.testing.assert_allclose(cw.spectrum_from(rgba), s, rtol=1e-5)


def test_a_maco_image_keeps_the_spectrum_it_was_given(shapes):
    """A stripes spectrum draws stripes: the optimized image has its energy there."""
    s = cw.spectrum_from(stripes(period=8))
    res = cw.visualize(shapes, "circle", preset="maco", param=cw.Maco(spectrum=s), steps=6, seed=0)
    image = res.images[0].astype(np.float64) / 255.0
    gray = image.mean(axis=-1)
    energy = np.abs(np.fft.rfft2(gray - gray.mean()))
    assert np.unravel_index(np.argmax(energy), energy.shape) == (0, 8)
    # a spectrum of another size is resampled, and a 3-channel one fits a gray model
    small = cw.Maco(spectrum=cw.spectrum_from(stripes(size=32, period=4)))
    assert small.magnitude(64, 64, 3).shape == (3, 64, 33)
    assert small.magnitude(64, 64, 1).shape == (1, 64, 33)


def test_bad_images_and_spectra_give_clear_messages():
    ok = stripes()
    cases = [
        (ok[0], r"\(N, height, width, channels\).*images\[None\]"),
        (ok[:0], "empty"),
        (np.full((2, 16, 16, 3), np.nan), "NaN or infinite"),
        (np.zeros((2, 16, 16, 2)), "1, 3 or 4 channels"),
        (np.array([["a"]]), "numbers"),
        (np.zeros((2, 16, 16, 3)), "flat"),
        (np.zeros((2, 3, 16, 3)), "too small"),
    ]
    for images, message in cases:
        with pytest.raises(cw.CnnvizError, match=message):
            cw.spectrum_from(images)
    with pytest.raises(cw.CnnvizError, match="size"):
        cw.spectrum_from(ok, size=2)
    s = cw.spectrum_from(ok)
    with pytest.raises(cw.CnnvizError, match="NaN"):
        cw.Maco(spectrum=np.where(s > 0, np.nan, s))
    with pytest.raises(cw.CnnvizError, match="negative"):
        cw.Maco(spectrum=-s)
    with pytest.raises(cw.CnnvizError, match="all zeros"):
        cw.Maco(spectrum=np.zeros_like(s))
    with pytest.raises(cw.CnnvizError, match="spectrum_from"):
        cw.Maco(spectrum=np.ones(5))
    with pytest.raises(cw.CnnvizError, match="contrast"):
        cw.Maco(contrast=0)
    with pytest.raises(cw.CnnvizError, match="4 channels but the model's input has 3"):
        cw.Maco(spectrum=np.ones((4, 8, 5))).shape(1, 8, 8, 3)
    with pytest.raises(cw.CnnvizError, match="'maco'"):
        cw.engine.optvis.param.get_param("macco")
    with pytest.raises(cw.CnnvizError, match="crop"):
        cw.Transforms(crop=(0.0, 1.0))
    with pytest.raises(cw.CnnvizError, match="crop"):
        cw.Transforms(crop=(0.5, 1.5))
    with pytest.raises(cw.CnnvizError, match="noise"):
        cw.Transforms(noise=-0.1)


# --- crop and noise transforms --------------------------------------------------------


def test_random_crops_stay_inside_the_image_and_noise_repeats_per_seed():
    ramp = np.broadcast_to(np.linspace(0, 1, 64, dtype=np.float32)[None, :, None], (64, 64, 1))
    images = tf.constant(np.repeat(ramp[None], 8, axis=0))
    t = cw.Transforms(crop=(0.3, 0.3))
    out = t(images, tf.constant([0, 5])).numpy()
    spans = out[:, 32, -1, 0] - out[:, 32, 0, 0]
    np.testing.assert_allclose(spans, 0.3, atol=0.02)  # 30 % of the ramp, zoomed in
    assert out.min() >= 0 and out.max() <= 1  # inside: no reflected border
    assert len(np.unique(out[:, 32, 0, 0].round(3))) > 4  # at random places
    noisy = cw.Transforms(noise=0.1)
    zeros = tf.zeros((2, 64, 64, 3))
    a = noisy(zeros, tf.constant([3, 7])).numpy()
    assert abs(a.std() - 0.1) < 0.005 and abs(a.mean()) < 0.005
    np.testing.assert_array_equal(a, noisy(zeros, tf.constant([3, 7])).numpy())
    assert not np.allclose(a, noisy(zeros, tf.constant([3, 8])).numpy())
    # crops and noise do not change the random streams of the older transforms
    old = cw.Transforms(jitter=4, rotate=5)
    mixed = cw.Transforms(jitter=4, rotate=5, noise=1e-9)
    np.testing.assert_allclose(
        old(images, tf.constant([1, 2])).numpy(),
        mixed(images, tf.constant([1, 2])).numpy(),
        atol=1e-6,
    )


# --- the preset and its transparency map --------------------------------------------


@pytest.mark.slow
def test_maco_preset_reaches_its_classes_with_an_alpha_map(shapes):
    before = model_state(shapes.model)
    n = len(shapes.class_names)
    res = cw.visualize(shapes, list(range(n)), preset="maco", steps=96, seed=0)
    assert res.images.shape == (n, 64, 64, 3) and res.images.dtype == np.uint8
    probs = shapes.model.predict(res.images / 255.0, verbose=0)[np.arange(n), np.arange(n)]
    assert np.median(probs) >= 0.9, probs.round(3)
    assert res.alpha.shape == (n, 64, 64) and res.alpha.dtype == np.float32
    assert res.alpha.min() >= 0 and res.alpha.max() == 1
    assert (res.history[-1] > res.history[0]).all()
    assert_same_state(before, model_state(shapes.model))
    again = cw.visualize(shapes, list(range(n)), preset="maco", steps=96, seed=0)
    np.testing.assert_array_equal(again.images, res.images)
    np.testing.assert_array_equal(again.alpha, res.alpha)


def left_half(a):
    return tf.reduce_mean(a[:, :, : a.shape[2] // 2], axis=(1, 2, 3))


@pytest.mark.parametrize("transforms", [None, cw.Transforms()])
def test_alpha_is_high_where_the_objective_looks(shapes, transforms):
    """An objective on the left half of conv1 only: the evidence is on the left."""
    res = cw.visualize(
        shapes,
        obj.custom(left_half, layer="conv1", name="left"),
        preset="maco",
        transforms=transforms,
        steps=16,
        seed=2,
    )
    alpha = res.alpha[0]
    left, right = alpha[:, :32].sum(), alpha[:, 32:].sum()
    share = left / (left + right)
    assert alpha[:, :8].mean() > 3 * alpha[:, -8:].mean()
    if transforms is None:
        # random crops of >= half the image move the left half of a crop around the image
        assert share > 0.7, share
    else:
        # no transforms: conv1's 7x7 kernels on columns 0-31 reach pixels 0-34, no further
        assert share > 0.9, share
        assert alpha[:, 35:].max() == 0 and alpha[:, 34].max() > 0


def test_alpha_ignores_the_image_regularizers(shapes):
    """Total variation reads the image, not the model: it adds nothing to the evidence."""
    plain = cw.visualize(shapes, "square", preset="maco", steps=4, seed=0)
    smooth = cw.visualize(shapes, "square", preset="maco", steps=1, tv=50.0, seed=0)
    first = cw.visualize(shapes, "square", preset="maco", steps=1, seed=0)
    np.testing.assert_allclose(smooth.alpha, first.alpha, atol=1e-6)
    assert plain.alpha is not None
    assert cw.visualize(shapes, "square", preset="maco", steps=0).alpha is None


def test_changing_the_class_does_not_retrace_and_equal_spectra_share_a_step(shapes):
    cw.visualize(shapes, 0, preset="maco", steps=1)
    s = cw.spectrum_from(stripes())
    cw.visualize(shapes, 0, preset="maco", param=cw.Maco(spectrum=s), steps=1)
    count = optvis.step_tracing_count(shapes)
    for i in range(9):
        cw.visualize(shapes, i, preset="maco", steps=2, seed=i, lr=0.05 + i / 100)
    cw.visualize(shapes, 3, preset="maco", param=cw.Maco(spectrum=s.copy()), steps=1)
    assert optvis.step_tracing_count(shapes) == count


# --- the panel ----------------------------------------------------------------------


def test_panel_runs_maco_and_draws_the_transparency_map(shapes):
    from cnnviz_widgets.session import Session
    from cnnviz_widgets.widgets import ClassOptimizer
    from cnnviz_widgets.widgets.class_optimizer import over_checkerboard

    panel = ClassOptimizer(Session(shapes))
    try:
        assert "maco" in [v for _, v in panel.settings_column.preset.options]
        panel.settings_column.transparency.value = (
            True  # nothing shown yet: no error, nothing drawn
        )
        assert panel.messages.kind is None
        panel.settings_column.transparency.value = False
        panel.settings_column.preset.value = "maco"
        assert panel.settings_column.lr.value == cw.PRESETS["maco"].lr
        assert "phase" in panel.settings_column.preset_info.value
        panel.settings_column.steps.value = 6
        panel.class_targets = [1, 7]
        record = panel.run(wait=True, timeout=300)
        assert not panel.running and record.error is None, panel.messages.text
        result = panel.result
        assert result.alpha.shape == (2, 64, 64)
        layout = panel.preview_layout

        def tile(k):
            x, y, w, h = layout.box(k)
            return panel.preview.pixels.image[y : y + h, x : x + w, :3]

        np.testing.assert_array_equal(tile(1), result.images[1])
        panel.settings_column.transparency.value = True
        composite = over_checkerboard(result.images, result.alpha)
        np.testing.assert_array_equal(tile(0), composite[0])
        np.testing.assert_array_equal(tile(1), composite[1])
        weak = result.alpha[1] < 0.5
        assert weak.any() and not np.array_equal(tile(1)[weak], result.images[1][weak])
        assert panel.messages.kind is None
        png = panel.to_png(index=1)
        assert png.startswith(b"\x89PNG")
        panel.settings_column.transparency.value = False
        np.testing.assert_array_equal(tile(1), result.images[1])
        # a bad setting is reported in the panel, the kernel goes on
        panel.settings_column.lr.value = -1.0
        panel.run_bar.run_button.click()
        assert panel.messages.kind == "error" and "learning rate" in panel.messages.text
    finally:
        panel.close()


def test_over_checkerboard_blends_by_alpha():
    from cnnviz_widgets.widgets.preview import CHECKER, over_checkerboard

    images = np.full((1, 16, 16, 3), 255, np.uint8)
    alpha = np.zeros((1, 16, 16), np.float32)
    alpha[0, :, :8] = 1.0
    out = over_checkerboard(images, alpha)
    assert (out[0, :, :8] == 255).all()  # opaque: the image
    assert {tuple(p) for p in out[0, :, 8:].reshape(-1, 3)} == set(CHECKER)  # transparent
    gray = over_checkerboard(images[..., :1], alpha * 0.5)
    assert gray.shape == (1, 16, 16, 3) and (gray[0, :, :8] > 200).all()
    with pytest.raises(cw.CnnvizError, match="does not fit"):
        over_checkerboard(images, alpha[:, :8])
