"""Figures for papers: every result kind draws itself as a matplotlib Figure (titles, colour
bars, labelled grids) without pyplot, and saves as PNG/SVG/PDF at a chosen size and dpi."""

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

import cnnviz_widgets as cw


@pytest.fixture(scope="module")
def image():
    return cw.sample_image("cross", seed=4)


@pytest.fixture(scope="module")
def data():
    return cw.generate_shapes(300, seed=0)


@pytest.fixture(scope="module")
def results(shapes, image, data):
    return {
        "grad_cam": cw.grad_cam(shapes, image),
        "saliency": cw.saliency(shapes, image, smooth=2),
        "occlusion": cw.occlusion(shapes, image, patch=16, stride=8),
        "predictions": cw.predict_top(shapes, image, k=4),
        "feature_maps": cw.feature_maps(shapes, image, "conv2"),
        "top": cw.top_examples(shapes, "conv4", (data.images, data.labels), k=3),
        "optimized": cw.visualize(shapes, cw.objectives.channel("conv3", [1, 2]), steps=4),
    }


@pytest.fixture(scope="module")
def atlas(shapes, data, tmp_path_factory):
    store = tmp_path_factory.mktemp("atlas")
    return cw.atlas(shapes, "conv4", data.images, channels=[12, 13], store=store, steps=2)


def texts(fig) -> str:
    """Every text of a figure: titles, axis labels, colour bar labels, suptitle."""
    out = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
    return "\n".join(out)


def colorbar_labels(fig) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


@pytest.mark.parametrize("kind", ["grad_cam", "saliency", "occlusion"])
def test_an_attribution_figure_shows_the_image_the_map_and_a_colour_bar(results, kind):
    r = results[kind]
    fig = r.to_figure()
    assert isinstance(fig, Figure)
    text = texts(fig)
    assert r.class_name in text and f"{r.probability:.3f}" in text
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.asarray(shown), np.clip(r.image, 0, 1))
    heat = [im for ax in fig.axes for im in ax.images if im.get_array().shape == r.heatmap.shape]
    assert any(np.array_equal(np.asarray(im.get_array()), r.heatmap) for im in heat)
    assert len(colorbar_labels(fig)) == 2 and all(colorbar_labels(fig))
    if kind == "grad_cam":
        assert r.layer in text
    if kind == "occlusion":
        assert any("drop" in label for label in colorbar_labels(fig))


def test_a_regression_like_result_says_value_not_probability(results):
    import dataclasses

    r = dataclasses.replace(results["grad_cam"], probability=float("nan"))
    text = texts(r.to_figure())
    assert "value" in text and "probability" not in text


def test_top_examples_figure_labels_rows_and_flags_dead_units(results):
    top = results["top"]
    dead = top.dead_units()
    assert len(dead), "conv4 has units that never fire on these images"
    units = [0, 1, int(dead[0])]
    fig = top.to_figure(units=units)
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels[0] == "channel 0" and labels[1] == "channel 1"
    assert labels[2].startswith(f"channel {dead[0]}\nDEAD: fired on 0/300")
    assert len(fig.axes) == 3 * top.k
    # the peak cells are drawn on live units only
    live_boxes = sum(len(ax.patches) for ax in fig.axes[: 2 * top.k])
    dead_boxes = sum(len(ax.patches) for ax in fig.axes[2 * top.k :])
    assert live_boxes == 2 * top.k and dead_boxes == 0
    with pytest.raises(cw.CnnvizError, match="was not ranked"):
        top.to_figure(units=[999])


def test_feature_maps_figure_labels_each_channel(results):
    fm = results["feature_maps"]
    fig = fm.to_figure(channels=[3, 7, 0])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:4] == ["image", "ch 3", "ch 7", "ch 0"]
    np.testing.assert_array_equal(np.asarray(fig.axes[2].images[0].get_array()), fm.maps[..., 7])
    assert colorbar_labels(fig) == ["activation"]
    assert len(fm.to_figure(k=5).axes) >= 6


def test_optimization_figure_has_images_and_the_objective_curve(results):
    res = results["optimized"]
    fig = res.to_figure()
    curve = [ax for ax in fig.axes if ax.get_xlabel() == "step"]
    assert len(curve) == 1 and curve[0].get_ylabel() == "objective"
    lines = curve[0].get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[1].get_ydata(), res.history[:, 1])
    np.testing.assert_array_equal(np.asarray(fig.axes[0].images[0].get_array()), res.images[0])


def test_atlas_and_unit_figures_flag_a_dead_unit(atlas):
    assert atlas.health(12) == "dead" and atlas.health(13) == "alive"
    unit = atlas.unit(12)
    assert unit.fired == 0 and unit.seen == 300 and unit.health == "dead"
    fig = atlas.to_figure()
    assert [ax.get_title() for ax in fig.axes] == ["ch 12 (dead)", "ch 13"]
    page = unit.to_figure(k=3)
    assert "fired on 0 of 300 images" in texts(page)
    assert "feeds" in texts(page)
    alive = atlas.unit(13)
    assert alive.fired > 0 and "(dead)" not in texts(alive.to_figure())


@pytest.mark.parametrize(
    "suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_save_figure_writes_the_format_of_the_suffix(results, tmp_path, suffix, magic):
    path = results["grad_cam"].save_figure(tmp_path / f"cam{suffix}")
    assert path.read_bytes()[:5].startswith(magic)


def test_save_figure_at_a_chosen_size_and_dpi(results, tmp_path):
    path = results["top"].save_figure(tmp_path / "top.png", dpi=200, size=(6, 4))
    with Image.open(path) as im:
        assert im.size == (1200, 800)
    small = results["grad_cam"].save_figure(tmp_path / "small.png", dpi=50, size=(4, 2))
    with Image.open(small) as im:
        assert im.size == (200, 100)


def test_bad_figure_arguments_get_clear_messages(results, tmp_path):
    r = results["grad_cam"]
    with pytest.raises(cw.CnnvizError, match=r"end the name with \.png, \.svg, \.pdf"):
        r.save_figure(tmp_path / "cam.jpg")
    with pytest.raises(cw.CnnvizError, match="dots per inch"):
        r.save_figure(tmp_path / "cam.png", dpi=0)
    with pytest.raises(cw.CnnvizError, match=r"\(width, height\) in inches"):
        r.save_figure(tmp_path / "cam.png", size=(3,))
    with pytest.raises(cw.CnnvizError, match="does not exist"):
        r.save_figure(tmp_path / "nowhere" / "cam.png")


def test_figures_never_load_pyplot():
    code = (
        "import sys, keras;"
        "base = 'matplotlib.pyplot' in sys.modules;"
        "import cnnviz_widgets as cw, io;"
        "m = cw.load_model('shapes'); img = cw.sample_image('circle');"
        "fig = cw.grad_cam(m, img).to_figure(); fig.savefig(io.BytesIO(), format='png');"
        "cw.feature_maps(m, img, 'conv2').to_figure();"
        "print(base, 'matplotlib.pyplot' in sys.modules);"
        "sys.exit(0 if base or 'matplotlib.pyplot' not in sys.modules else 1)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr[-2000:]


def test_a_figure_renders_to_png_bytes_in_memory(results):
    fig = results["predictions"].to_figure()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == list(results["predictions"].names)
