import keras
import numpy as np
import pytest

import cnnviz_widgets as cw


def test_tutorial_filter_expression_number_for_number(vgg16):
    """layer.get_weights()[0][:,:,:,0][:,:,0] for layers 1, 4, 7, 11, 15 of VGG16."""
    for layer_id in (1, 4, 7, 11, 15):
        layer = vgg16.model.layers[layer_id]
        expected = layer.get_weights()[0][:, :, :, 0][:, :, 0]
        got = cw.filter_values(vgg16, layer_id, view="channel", channel=0)[0]
        assert got.shape == (3, 3)
        np.testing.assert_array_equal(got, expected)


def test_views_and_shapes(vgg16):
    k = vgg16.model.get_layer("block1_conv1").get_weights()[0]
    rgb = cw.filter_values(vgg16, "block1_conv1", view="rgb")
    assert rgb.shape == (64, 3, 3, 3)
    np.testing.assert_array_equal(rgb[5], k[:, :, :, 5])
    np.testing.assert_allclose(cw.filter_values(vgg16, 1, view="mean")[7], k[:, :, :, 7].mean(-1))
    np.testing.assert_allclose(
        cw.filter_values(vgg16, 1, view="maxabs")[7], np.abs(k[:, :, :, 7]).max(-1)
    )
    np.testing.assert_array_equal(
        cw.filter_values(vgg16, 1, view="channel", channel=2, filters=[3, 9])[1], k[:, :, 2, 9]
    )
    assert cw.filter_values(vgg16, "block5_conv1", view="auto").shape == (512, 3, 3)


def test_montage_layout(vgg16):
    m = cw.filter_montage(vgg16, "block5_conv1")
    assert m.image.dtype == np.uint8 and m.image.ndim == 3 and m.image.shape[2] == 4
    assert m.view == "mean" and m.normalization == "filter" and m.cmap == "gray"
    np.testing.assert_array_equal(m.order, np.arange(512))
    rows, cols = m.grid
    assert rows * cols >= 512 > (rows - 1) * cols
    th, tw = m.tile
    assert m.image.shape[:2] == (rows * (th + 1) + 1, cols * (tw + 1) + 1)
    # each tile shows its own filter: a per-filter normalised, gray, upscaled kernel
    values = cw.filter_values(vgg16, "block5_conv1", view="mean")
    for f in (0, 37, 511):
        x, y, w, h = m.tile_box(f)
        tile = m.image[y : y + h, x : x + w, 0]
        v = values[f]
        expected = np.rint((v - v.min()) / (v.max() - v.min()) * 255)
        step = th // 3
        # matplotlib's 256-entry colormap floors v * 256 to pick a colour: off by <= 2
        np.testing.assert_allclose(tile[::step, ::step], expected, atol=2)
        assert m.filter_at(x + w // 2, y + h // 2) == f
    assert m.filter_at(0, 0) is None  # padding


def test_montage_rgb_first_layer(shapes):
    m = cw.filter_montage(shapes, "conv1")
    assert m.view == "rgb" and m.cmap is None
    assert m.tile == (28, 28)  # 7x7 kernels at 4 px per weight
    x, y, w, h = m.tile_box(0)
    tile = m.image[y : y + h, x : x + w]
    assert (tile[..., 3] == 255).all()
    assert len({tuple(p) for p in tile[..., :3].reshape(-1, 3)}) > 10  # a real colour image


def test_sort_by_norm_and_paging(vgg16):
    k = vgg16.model.get_layer("block3_conv1").get_weights()[0]
    norms = np.sqrt((k.reshape(-1, k.shape[-1]) ** 2).sum(0))
    m = cw.filter_montage(vgg16, "block3_conv1", sort="norm")
    assert list(m.order[:5]) == list(np.argsort(-norms)[:5])
    # pages share the layer's range under layer-wide normalization
    full = cw.filter_montage(vgg16, "block3_conv1", normalization="layer")
    page = cw.filter_montage(vgg16, "block3_conv1", normalization="layer", filters=slice(64, 128))
    assert page.value_range == full.value_range
    assert list(page.order) == list(range(64, 128))


def test_out_of_range_filter_indices_name_the_valid_range(shapes):
    n = shapes.model.get_layer("conv1").get_weights()[0].shape[-1]
    for bad in ([0, n], [-n - 1]):
        with pytest.raises(
            cw.CnnvizError, match=rf"filters .* out of range: 'conv1' has filters 0\.\.{n - 1}"
        ):
            cw.filter_montage(shapes, "conv1", filters=bad)
    assert list(cw.filter_montage(shapes, "conv1", filters=[n - 1, 0]).order) == [n - 1, 0]


def test_symmetric_normalization_maps_zero_to_middle():
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 3, name="c")
    model = keras.Model(inputs, conv(inputs))
    w = np.zeros((3, 3, 1, 2), np.float32)
    w[0, 0, 0, 0], w[2, 2, 0, 1] = 2.0, -1.0
    conv.set_weights([w, np.zeros(2, np.float32)])
    m = cw.filter_montage(model, "c", normalization="symmetric", scale=1, padding=0, columns=2)
    assert m.cmap == "RdBu_r" and m.value_range == (-2.0, 2.0)
    import matplotlib

    cmap = matplotlib.colormaps["RdBu_r"]
    np.testing.assert_array_equal(m.image[1, 1], cmap(0.5, bytes=True))
    np.testing.assert_array_equal(m.image[0, 0], cmap(1.0, bytes=True))
    np.testing.assert_array_equal(m.image[2, 5], cmap(0.25, bytes=True))


@pytest.mark.parametrize(
    "make, n_filters, tile_hw",
    [
        (lambda: keras.layers.DepthwiseConv2D(5, depth_multiplier=2, name="x"), 6, (5, 5)),
        (lambda: keras.layers.SeparableConv2D(4, 3, name="x"), 3, (3, 3)),
        (lambda: keras.layers.Conv2DTranspose(4, 3, name="x"), 4, (3, 3)),
    ],
)
def test_other_conv_layers(make, n_filters, tile_hw):
    inputs = keras.Input((16, 16, 3))
    layer = make()
    model = keras.Model(inputs, layer(inputs))
    values = cw.filter_values(model, "x", view="mean")
    assert values.shape == (n_filters, *tile_hw)
    m = cw.filter_montage(model, "x", scale=1)
    assert len(m.order) == n_filters and m.tile == tile_hw


def test_transpose_kernel_is_per_output_filter():
    inputs = keras.Input((8, 8, 2))
    layer = keras.layers.Conv2DTranspose(5, 3, name="t")
    model = keras.Model(inputs, layer(inputs))
    k = layer.get_weights()[0]  # (3, 3, out=5, in=2)
    got = cw.filter_values(model, "t", view="channel", channel=1)
    np.testing.assert_array_equal(got[4], k[:, :, 4, 1])


def test_conv1d_shown_as_rows():
    inputs = keras.Input((50, 4))
    layer = keras.layers.Conv1D(6, 9, name="c1")
    model = keras.Model(inputs, layer(inputs))
    values = cw.filter_values(model, "c1", view="channel", channel=3)
    assert values.shape == (6, 1, 9)
    np.testing.assert_array_equal(values[2, 0], layer.get_weights()[0][:, 3, 2])


def test_filters_of_layers_without_kernel(vgg16):
    for name in ("fc1", "block1_pool", "flatten"):
        with pytest.raises(cw.NoKernelError) as err:
            cw.filter_montage(vgg16, name)
        msg = str(err.value)
        assert name in msg and "block1_conv1" in msg and "Layers with filters" in msg


def test_bad_view_arguments(vgg16):
    with pytest.raises(cw.CnnvizError, match="3 input channels"):
        cw.filter_values(vgg16, "block2_conv1", view="rgb")
    with pytest.raises(cw.CnnvizError, match="out of range"):
        cw.filter_values(vgg16, "block1_conv1", view="channel", channel=3)
    with pytest.raises(cw.CnnvizError, match="colormap"):
        cw.filter_montage(vgg16, "block1_conv1", view="mean", cmap="no-such-map")
    with pytest.raises(cw.CnnvizError, match="normalization"):
        cw.filter_montage(vgg16, "block1_conv1", normalization="nope")


def test_a_point_on_the_padding_goes_to_the_nearest_tile(shapes):
    m = cw.filter_montage(shapes, "conv1", scale=4, padding=1)
    x, y, w, _ = m.tile_box(0)
    x1, _, _, _ = m.tile_box(1)
    assert x1 == x + w + 1  # a 1-pixel gap
    assert m.filter_at(x + w, y + 2) is None  # on the gap: no tile ...
    assert m.filter_at(x + w, y + 2, nearest=True) == m.order[0]  # ... but the nearest
    assert m.filter_at(0, 0, nearest=True) is None  # the outer border
    cols = m.grid[1]
    below = m.tile_box(cols)[1]
    assert m.filter_at(x + 2, below - 1, nearest=True) in (m.order[0], m.order[cols])
    wide = cw.filter_montage(shapes, "conv1", scale=4, padding=4)
    x, y, w, _ = wide.tile_box(0)
    assert wide.filter_at(x + w + 1, y, nearest=True) == wide.order[0]  # nearer the left
    assert wide.filter_at(x + w + 3, y, nearest=True) == wide.order[1]  # nearer the right
