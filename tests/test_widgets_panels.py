"""The panels without a browser: drive them like a front end would, check the session and
the exact pixels sent to the canvases (decoded from the binary messages)."""

import io

import ipywidgets
import keras
import numpy as np
import pytest
from ipycanvas.canvas import _CANVAS_MANAGER
from matplotlib.figure import Figure
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.session import Session
from cnnviz_widgets.widgets import (
    FilterGallery,
    LayerBrowser,
    PixelCanvas,
    safe_hold,
    zoom_nearest,
)
from cnnviz_widgets.widgets import filter_gallery as gallery_module
from cnnviz_widgets.widgets.canvas import send_png
from cnnviz_widgets.widgets.filter_gallery import auto_zoom

from .helpers import PNG, assert_same_state, click, model_state


def tile_center(gallery: FilterGallery, position: int) -> tuple[float, float]:
    x, y, w, h = gallery.montage.tile_box(position)
    zoom = gallery.pixels.zoom
    return (x + w / 2) * zoom, (y + h / 2) * zoom


# --- canvas helper ---------------------------------------------------------------------


def test_pixel_canvas_sends_exact_rgba_and_resizes(sent):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    image[..., 3] = 255
    pixels = PixelCanvas("my-class")
    out = pixels.show(image, zoom=3)
    assert "my-class" in pixels.canvas._dom_classes
    assert (pixels.canvas.width, pixels.canvas.height) == (21, 15)
    np.testing.assert_array_equal(sent.last, out)
    np.testing.assert_array_equal(out, zoom_nearest(image, 3))
    np.testing.assert_array_equal(out[::3, ::3], image)  # nearest neighbour: crisp blocks


def test_pixel_canvas_refuses_rgb_which_would_go_as_jpeg():
    pixels = PixelCanvas()
    with pytest.raises(cw.CnnvizError, match="RGBA"):
        pixels.show(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(cw.CnnvizError, match="RGBA"):
        pixels.show(np.zeros((4, 4, 4), np.float32))


def test_client_ready_replays_the_last_image(sent):
    pixels = PixelCanvas()
    image = np.full((3, 3, 4), 200, np.uint8)
    pixels.show(image, zoom=2)
    before = len(sent.images)
    pixels.canvas._handle_frontend_event(None, {"event": "client_ready"}, [])
    assert len(sent.images) == before + 1
    np.testing.assert_array_equal(sent.last, zoom_nearest(image, 2))


def test_safe_hold_recovers_from_an_exception(sent):
    pixels = PixelCanvas()
    with pytest.raises(RuntimeError), safe_hold():
        pixels.canvas.clear()
        raise RuntimeError("boom")
    assert _CANVAS_MANAGER._caching is False
    assert _CANVAS_MANAGER._commands_cache == []
    pixels.show(np.zeros((2, 2, 4), np.uint8))
    assert len(sent.images) == 1  # drawn right away, not held forever


def test_drawing_works_without_ipycanvas_private_state(sent, monkeypatch):
    """Another ipycanvas without the canvas manager's private caches, or without
    hold_canvas: drawing still goes out, unbatched."""
    import ipycanvas
    import ipycanvas.canvas

    monkeypatch.delattr(_CANVAS_MANAGER, "_commands_cache")
    monkeypatch.delattr(ipycanvas, "hold_canvas")
    pixels = PixelCanvas()
    image = np.full((2, 3, 4), 90, np.uint8)
    pixels.show(image)
    np.testing.assert_array_equal(sent.last, image)
    with pytest.raises(RuntimeError), safe_hold():
        raise RuntimeError("boom")  # no private state to restore: nothing to leave held
    pixels.show(image[:, :2].copy())
    assert len(sent.images) == 2
    # without the putImageData command, the fast PNG path hands over to put_image_data
    monkeypatch.setattr(ipycanvas.canvas, "COMMANDS", {})
    assert send_png(pixels.canvas, b"png") is False


def test_zoom_nearest_rejects_bad_factors():
    with pytest.raises(cw.CnnvizError):
        zoom_nearest(np.zeros((2, 2, 4), np.uint8), 0)


# --- LayerBrowser ----------------------------------------------------------------------


def test_layer_browser_lists_every_layer(shapes):
    browser = LayerBrowser(shapes)
    table = cw.layer_table(shapes)
    values = [v for _, v in browser.layer_list.options]
    assert values == [r.path for r in table]
    labels = [label for label, _ in browser.layer_list.options]
    assert "conv1" in labels[1] and "Conv2D" in labels[1] and "2,368" in labels[1]
    assert " " not in labels[1]  # non-breaking spaces keep the columns in a <select>
    assert "63,017" in browser.summary.value
    assert "(None, 64, 64, 3)" in browser.summary.value and "(None, 9)" in browser.summary.value
    assert browser.layer_list.value is None
    assert "Select a layer" in browser.details.value


def test_picking_a_layer_sets_the_session_and_shows_its_config(shapes):
    browser = LayerBrowser(shapes)
    browser.layer_list.value = "conv1"
    assert browser.session.layer == "conv1"
    details = browser.details.value
    for text in ["kernel_size", "(7, 7)", "filters", "16", "relu", "GlorotUniform", "image"]:
        assert text in details, text
    assert "kernel (7, 7, 3, 16)" in details and "bias (16,)" in details
    assert "2,368" in details and "model.layers[1]" in details


def test_front_end_state_update_selects_a_layer(shapes):
    browser = LayerBrowser(shapes)
    index = [v for _, v in browser.layer_list.options].index("conv3")
    browser.layer_list.set_state({"index": index})  # what the browser sends
    assert browser.session.layer == "conv3"
    assert "18,496" in browser.details.value


def test_filters_by_name_and_type(shapes):
    browser = LayerBrowser(shapes)
    browser.name_filter.value = "POOL"
    assert [v for _, v in browser.layer_list.options] == ["pool1", "pool2", "pool3"]
    assert "3 of 10" in browser.count.value
    browser.name_filter.value = ""
    browser.type_filter.value = "Conv2D"
    assert [v for _, v in browser.layer_list.options] == ["conv1", "conv2", "conv3", "conv4"]
    assert browser.session.layer is None  # filtering selects nothing


def test_selection_from_elsewhere_follows_and_unhides(shapes):
    session = Session(shapes)
    browser = LayerBrowser(session)
    session.layer = "pool2"
    assert browser.layer_list.value == "pool2"
    assert "MaxPooling2D" in browser.details.value
    browser.type_filter.value = "Conv2D"
    session.layer = "gap"  # hidden by the filter: the filters are cleared to show it
    assert browser.type_filter.value == ""
    assert browser.layer_list.value == "gap"


def test_nested_models_are_indented():
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="c")], name="inner"
    )
    outer = keras.Sequential(
        [keras.Input((8, 8, 3)), inner, keras.layers.Flatten(name="flatten")], name="o"
    )
    browser = LayerBrowser(outer)
    options = dict((v, label) for label, v in browser.layer_list.options)
    assert set(options) == {"inner", "inner/c", "flatten"}
    assert options["inner"].lstrip("\u00a0").startswith("▾")
    indent = len(options["inner/c"]) - len(options["inner/c"].lstrip("\u00a0"))
    assert indent > len(options["flatten"]) - len(options["flatten"].lstrip("\u00a0"))
    assert "inside nested models" in browser.summary.value
    browser.layer_list.value = "inner/c"
    assert browser.session.layer == "inner/c"


def test_vgg16_browser(vgg16):
    browser = LayerBrowser(vgg16)
    assert len(browser.layer_list.options) == len(cw.layer_table(vgg16))
    browser.session.layer = 15
    assert browser.layer_list.value == "block5_conv1"
    assert "512" in browser.details.value and "block4_pool" in browser.details.value


# --- FilterGallery ---------------------------------------------------------------------


def test_gallery_draws_the_engine_montage_exactly(shapes, sent):
    gallery = FilterGallery(shapes)
    assert gallery.session.layer == "conv1"  # no layer yet: the first convolution
    expected = cw.filter_montage(shapes, "conv1")
    zoom = auto_zoom(expected.image.shape)
    assert zoom > 1
    np.testing.assert_array_equal(sent.last, zoom_nearest(expected.image, zoom))
    canvas = gallery.pixels.canvas
    assert (canvas.width, canvas.height) == sent.last.shape[1::-1]
    assert "cnnviz-gallery-canvas" in canvas._dom_classes
    assert gallery.controls.layer_select.value == "conv1"


def test_selecting_in_the_browser_redraws_the_gallery(shapes, sent):
    session = Session(shapes)
    browser = LayerBrowser(session)
    gallery = FilterGallery(session)
    first = sent.last
    browser.layer_list.value = "conv3"
    second = sent.last
    assert gallery.montage.layer == "conv3"
    assert first.shape != second.shape or not np.array_equal(first, second)
    expected = cw.filter_montage(shapes, "conv3").image
    np.testing.assert_array_equal(second, zoom_nearest(expected, auto_zoom(expected.shape)))
    gallery.controls.layer_select.value = "conv2"  # and the other way round
    assert browser.layer_list.value == "conv2"


def test_clicking_a_filter_selects_and_enlarges_it(shapes, sent):
    gallery = FilterGallery(shapes)
    click(gallery.pixels.canvas, *tile_center(gallery, 5))
    assert gallery.session.channel == 5
    assert gallery.messages.kind is None
    values = cw.filter_values(shapes, "conv1", view="rgb", filters=[5])[0]
    numbers = gallery.filter_detail.numbers.value
    assert f"{values[0, 0, 0]:+.3g}" in numbers and f"{values[6, 6, 2]:+.3g}" in numbers
    assert "Filter 5 of conv1" in gallery.filter_detail.head.value
    enlarged = gallery.filter_detail.pixels.sent
    tile = cw.filter_montage(shapes, "conv1", filters=[5], scale=1, padding=0).image
    assert enlarged.shape[0] >= 140
    step = enlarged.shape[0] // 7
    np.testing.assert_array_equal(enlarged[::step, ::step], tile)
    assert gallery.pixels.highlight == gallery.montage.tile_box(5)


def test_clicking_padding_selects_nothing(shapes):
    gallery = FilterGallery(shapes)
    click(gallery.pixels.canvas, 0, 0)
    assert gallery.session.channel is None


def test_a_click_on_the_gap_between_tiles_picks_the_nearest(shapes):
    gallery = FilterGallery(shapes)
    montage, z = gallery.montage, gallery.pixels.zoom
    x, y, w, h = montage.tile_box(4)
    assert montage.tile_box(5)[0] == x + w + 1  # one pixel of padding, zoomed
    click(gallery.pixels.canvas, (x + w) * z + z / 2, (y + h / 2) * z)
    assert gallery.session.channel == int(montage.order[4])


def test_small_weights_print_in_significant_digits():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(2, 3, name="c")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.linspace(-0.00207, 0.00208, 54, dtype=np.float32).reshape(3, 3, 3, 2)
    conv.set_weights([kernel, np.zeros(2, np.float32)])
    gallery = FilterGallery(model)
    gallery.session.channel = 0
    head, numbers = gallery.filter_detail.head.value, gallery.filter_detail.numbers.value
    values = cw.filter_values(model, "c", view="rgb", filters=[0])[0]
    assert f"min {values.min():+.3g}" in head and "0.000 " not in head
    assert "+0.000<" not in numbers and "-0.000<" not in numbers
    assert f"{values[0, 0, 0]:+.3g}" in numbers  # -0.00207, as the caption says


def test_channel_view_numbers_are_the_tutorial_expression(vgg16):
    session = Session(vgg16, layer="block3_conv1")
    gallery = FilterGallery(session)
    gallery.controls.view.value = "channel"
    gallery.controls.in_channel.value = 0
    session.channel = 0
    expected = vgg16.model.layers[7].get_weights()[0][:, :, :, 0][:, :, 0]
    for v in expected.ravel():
        assert f"{v:+.3g}" in gallery.filter_detail.numbers.value


def test_controls_redraw_with_the_engine(shapes, sent):
    gallery = FilterGallery(shapes)
    gallery.session.layer = "conv3"
    gallery.controls.normalization.value = "symmetric"
    gallery.controls.cmap.value = "viridis"
    gallery.controls.sort.value = True
    gallery.controls.zoom.value = 1
    expected = cw.filter_montage(
        shapes, "conv3", normalization="symmetric", cmap="viridis", sort="norm"
    )
    np.testing.assert_array_equal(sent.last, expected.image)
    np.testing.assert_array_equal(gallery.montage.order, expected.order)
    gallery.controls.view.value = "channel"
    gallery.controls.in_channel.value = 7
    assert gallery.controls.in_channel.max == 31 and not gallery.controls.in_channel.disabled
    expected = cw.filter_montage(
        shapes, "conv3", view="channel", channel=7, normalization="symmetric",
        cmap="viridis", sort="norm",
    )  # fmt: skip
    np.testing.assert_array_equal(sent.last, expected.image)
    gallery.controls.zoom.value = 3
    np.testing.assert_array_equal(sent.last, zoom_nearest(expected.image, 3))


def test_a_layer_without_filters_is_explained(shapes, sent):
    session = Session(shapes, layer="conv2")
    gallery = FilterGallery(session)
    session.layer = "pool1"
    assert gallery.messages.kind == "note"
    text = gallery.messages.text
    assert "pool1" in text and "MaxPooling2D" in text and "conv1, conv2, conv3, conv4" in text
    assert gallery.montage is None and gallery.pixels.sent is None
    assert gallery.controls.layer_select.value is None
    session.layer = "conv4"
    assert gallery.messages.kind is None and gallery.montage.layer == "conv4"


def test_engine_errors_show_in_the_panel(shapes):
    session = Session(shapes, layer="conv3")
    gallery = FilterGallery(session)
    gallery.controls.view.value = "rgb"  # conv3 sees 32 channels, not 3: no exception escapes
    assert gallery.messages.kind == "error"
    assert "rgb view needs filters that see 3 input channels" in gallery.messages.text
    gallery.controls.view.value = "mean"
    assert gallery.messages.kind is None


def test_unexpected_errors_show_in_the_panel_and_the_session_goes_on(shapes, monkeypatch):
    session = Session(shapes)
    gallery = FilterGallery(session)
    browser = LayerBrowser(session)

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gallery_module, "filter_montage", broken)
    browser.layer_list.value = "conv2"  # the gallery's observer fails inside the gallery
    assert session.layer == "conv2"
    assert browser.messages.kind is None
    assert gallery.messages.kind == "error"
    assert "Unexpected RuntimeError" in gallery.messages.text
    assert "disk on fire" in gallery.messages.text
    assert isinstance(gallery.messages.last_error, RuntimeError)


def test_a_bad_selection_from_a_panel_is_shown_not_raised(shapes):
    browser = LayerBrowser(shapes)
    browser.guarded(lambda: setattr(browser.session, "layer", "nope"))()
    assert browser.messages.kind == "error" and "no layer named 'nope'" in browser.messages.text


def test_paging_a_512_filter_layer(vgg16, sent):
    session = Session(vgg16)
    gallery = FilterGallery(session, page_size=128)
    session.layer = "block5_conv1"
    assert list(gallery.montage.order) == list(range(128))
    assert "0–127 of 512" in gallery.controls.page_label.value
    assert gallery.controls.paging.layout.display is None and gallery.controls.prev_page.disabled
    gallery.controls.next_page.click()
    gallery.controls.next_page.click()
    assert list(gallery.montage.order) == list(range(256, 384))
    expected = cw.filter_montage(vgg16, "block5_conv1", filters=slice(256, 384))
    np.testing.assert_array_equal(gallery.pixels.image, expected.image)
    gallery.controls.prev_page.click()
    assert gallery.montage.order[0] == 128
    session.channel = 500  # on the last page: the gallery turns to it
    assert gallery.page == 3 and 500 in gallery.montage.order
    gallery.controls.page_size.value = 512
    assert len(gallery.montage.order) == 512 and gallery.controls.paging.layout.display == "none"


def test_sorting_pages_the_whole_layer_strongest_first(vgg16):
    session = Session(vgg16, layer="block4_conv1")
    gallery = FilterGallery(session, page_size=64)
    gallery.controls.sort.value = True
    ranked = cw.filter_montage(vgg16, "block4_conv1", sort="norm").order
    np.testing.assert_array_equal(gallery.montage.order, ranked[:64])
    gallery.controls.next_page.click()
    np.testing.assert_array_equal(gallery.montage.order, ranked[64:128])


def test_2048_filters_stay_paged():
    model = keras.Sequential(
        [keras.Input((8, 8, 4)), keras.layers.Conv2D(2048, 3, name="wide")], name="wide"
    )
    gallery = FilterGallery(model)
    assert len(gallery.montage.order) == 512
    label = gallery.controls.page_label.value
    assert "of 2048" in label and "page 1/4" in label
    assert max(gallery.pixels.sent.shape[:2]) <= 800


def test_overview_is_the_tutorial_figure(vgg16, sent):
    session = Session(vgg16)
    gallery = FilterGallery(session, mode="overview")
    boxes = gallery._overview_boxes
    assert [b[4] for b in boxes] == cw.first_conv_per_block(vgg16)
    assert [vgg16.model.layers.index(vgg16.model.get_layer(b[4])) for b in boxes] == [
        1, 4, 7, 11, 15,
    ]  # fmt: skip
    np.testing.assert_array_equal(sent.last, gallery.overview_image()[0])
    for x, y, w, h, path in boxes:
        index = vgg16.model.layers.index(vgg16.model.get_layer(path))
        expected = vgg16.model.layers[index].get_weights()[0][:, :, :, 0][:, :, 0]
        tile = sent.last[y : y + h, x : x + w, 0].astype(float)
        k = expected.shape[0]
        step = h // k
        shown = tile[step // 2 :: step, step // 2 :: step][:k, :k]
        gray = (expected - expected.min()) / (expected.max() - expected.min()) * 255
        np.testing.assert_allclose(shown, gray, atol=2)  # gray colormap, filter-scaled
    x, y, w, h, path = boxes[2]
    click(gallery.pixels.canvas, x + w / 2, y + h / 2)
    assert session.layer == path == "block3_conv1" and session.channel == 0
    assert gallery.controls.mode_toggle.value == "filters" and gallery.montage.layer == path


def test_exports(shapes, tmp_path, monkeypatch):
    gallery = FilterGallery(shapes)
    data = gallery.to_png(tmp_path / "m.png")
    assert data.startswith(PNG) and (tmp_path / "m.png").read_bytes() == data
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), gallery.pixels.sent)
    fig = gallery.to_figure()
    assert isinstance(fig, Figure) and "conv1" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "fig.png")  # renders without pyplot
    assert fig._repr_png_().startswith(PNG)  # shows itself as a cell's result
    monkeypatch.chdir(tmp_path)
    gallery.controls.save_png.click()
    assert (tmp_path / "filters_conv1.png").read_bytes() == data
    assert "data:image/png;base64," in gallery.controls.export_status.value
    gallery.controls.mode_toggle.value = "overview"
    fig = gallery.to_figure()
    assert [ax.get_title() for ax in fig.axes] == [
        "1: conv1", "3: conv2", "5: conv3", "7: conv4",
    ]  # fmt: skip
    gallery.controls.save_png.click()
    assert (tmp_path / "filters_overview.png").exists()


def test_export_without_a_picture_is_a_clear_error(shapes):
    gallery = FilterGallery(Session(shapes, layer="gap"))
    with pytest.raises(cw.CnnvizError, match="select a convolution layer"):
        gallery.to_png()
    gallery.controls.save_png.click()  # the button reports it in the panel
    assert gallery.messages.kind == "error"


def test_panels_accept_a_model_or_a_session_and_bad_options_raise(shapes):
    assert isinstance(FilterGallery("shapes"), ipywidgets.VBox)
    with pytest.raises(cw.CnnvizError, match="mode"):
        FilterGallery(shapes, mode="grid")
    with pytest.raises(cw.CnnvizError, match="page_size"):
        FilterGallery(shapes, page_size=100)
    with pytest.raises(cw.ModelSourceError):
        LayerBrowser("no-such-model")


def test_closed_panels_stop_following_the_session(shapes):
    session = Session(shapes)
    gallery = FilterGallery(session)
    browser = LayerBrowser(session)
    draws = gallery.pixels.draw_count
    gallery.close()
    browser.close()
    session.layer = "conv4"
    assert gallery.pixels.draw_count == draws
    assert browser.layer_list.value == "conv1"


def test_panels_do_not_change_the_model(shapes):
    before = model_state(shapes.model)
    session = Session(shapes)
    LayerBrowser(session)
    gallery = FilterGallery(session)
    for layer in ["conv1", "conv2", "conv4"]:
        session.layer = layer
        click(gallery.pixels.canvas, *tile_center(gallery, 0))
    gallery.controls.mode_toggle.value = "overview"
    assert_same_state(before, model_state(shapes.model))


def test_the_layer_list_column_is_as_wide_as_its_rows(vgg16):
    """At JupyterLab's width the details wrap below the list instead of cutting its
    parameter column (12.5 px monospace: ~7.6 px a character)."""
    browser = LayerBrowser(vgg16)
    column = next(w for w in browser.children[-1].children if browser.layer_list in w.children)
    longest = max(len(label) for label, _ in browser.layer_list.options)
    width = float(column.layout.min_width.split(",")[1].strip(" px)"))
    assert width >= longest * 7.6 and column.layout.min_width.startswith("min(100%,")
    assert f"{width:.0f}px" in column.layout.flex
    browser.close()


def test_explore_sets_only_layout_traits_ipywidgets_knows(shapes):
    """A Layout keyword ipywidgets does not know (``gap=``) is dropped with a traitlets
    DeprecationWarning and never reaches the page: the spacing silently does not apply."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        panel = cw.explore(shapes)
    unknown = [str(w.message) for w in caught if "Layout" in str(w.message)]
    assert not unknown, unknown
    panel.close()
