"""The UnitAtlas panel without a browser: the grid fills in from the run, a click selects the
unit in the session and shows its page, the store is reused on reopening, Stop keeps what
is finished, bad input becomes a message in the panel."""

import threading

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.session import Session
from cnnviz_widgets.widgets import UnitAtlas, unit_atlas
from cnnviz_widgets.widgets.unit_atlas import TILE, unit_page
from cnnviz_widgets.widgets.unit_atlas import _fit as fit_tile

from .helpers import click, wait_until

SETTINGS = dict(steps=4, batch=8, channels=range(12))


@pytest.fixture(scope="module")
def data():
    return cw.generate_shapes(40, seed=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("atlas-store")


def tile_of(picture, panel, c):
    x, y, w, h = panel.tile_box(c)
    return picture[y : y + h, x : x + w]


def test_the_grid_fills_in_and_a_click_shows_the_unit(shapes, data, store, sent):
    session = Session(shapes, layer="conv4")
    panel = UnitAtlas(session, data, store=store, **SETTINGS)
    assert panel.wait(300) and panel.messages.kind is None, panel.messages.text
    assert panel.atlas.layer == "conv4" and panel.run_bar.progress.value == 0
    assert "0 of 12 units stored" in panel.run_bar.status.value
    empty = sent.on(panel.grid.canvas)[-1]
    panel.runner.redraw_interval = 0  # every report drawn (at most ~10 a second otherwise)
    panel.run(wait=True, timeout=900)
    assert not panel.running and panel.messages.kind is None, panel.messages.text
    bar = panel.run_bar
    assert bar.progress.value == 12 and "12 of 12 units done" in bar.status.value
    grids = sent.on(panel.grid.canvas)
    assert len(grids) >= 3  # the empty grid, each finished chunk, the end
    grid = grids[-1]
    for c in (0, 5, 11):
        expected = np.asarray(fit_tile(panel.atlas.image(c), TILE))
        np.testing.assert_array_equal(tile_of(grid, panel, c), expected)
        assert not np.array_equal(tile_of(empty, panel, c), expected)
    # the first chunk (units 0..7) was drawn before the second finished
    assert any(
        np.array_equal(tile_of(g, panel, 0), tile_of(grid, panel, 0))
        and not np.array_equal(tile_of(g, panel, 11), tile_of(grid, panel, 11))
        for g in grids
    )
    # a click on unit 5: the session's channel, and the unit's page
    x, y, w, h = panel.tile_box(5)
    click(panel.grid.canvas, x + w / 2, y + h / 2)
    assert session.channel == 5 and panel.shown == 5
    unit = panel.atlas.unit(5)
    assert unit.examples.shape == (9, 64, 64, 3)
    np.testing.assert_array_equal(sent.on(panel.page.canvas)[-1], unit_page(unit))
    info = panel.page_info.value
    assert "channel <b>5</b>" in info and "dataset examples" in info and "feeds most" in info
    assert panel.grid.highlight == panel.tile_box(5)
    # a channel chosen in another panel shows its page here
    session.channel = 7
    assert panel.shown == 7 and "channel <b>7</b>" in panel.page_info.value
    panel.close()


def test_reopening_paints_the_stored_units_without_computing(shapes, data, store, sent):
    session = Session(shapes, layer="conv4")
    panel = UnitAtlas(session, data, store=store, **SETTINGS)
    assert panel.wait(300)
    assert panel.atlas.done() == set(range(12)) and panel.run_bar.progress.value == 12
    grid = sent.on(panel.grid.canvas)[-1]
    expected = np.asarray(fit_tile(panel.atlas.image(3), TILE))
    np.testing.assert_array_equal(tile_of(grid, panel, 3), expected)
    panel.run(wait=True, timeout=300)  # nothing left to do
    assert panel.atlas.computed == [] and panel.atlas.reused == list(range(12))
    panel.close()


def test_stop_keeps_the_finished_units_and_the_last_images(shapes, data, tmp_path, sent):
    session = Session(shapes, layer="conv3")
    panel = UnitAtlas(session, data, store=tmp_path, steps=400, batch=4, channels=range(8))
    panel.run()
    wait_until(lambda: panel.live, timeout=600, what="live images")
    panel.stop()
    assert panel.wait(timeout=300)
    assert "(stopped)" in panel.run_bar.status.value
    stored = panel.atlas.vis_store.done()
    assert len(stored) < 8
    # the unit being optimized keeps its last image in the grid
    live = {c: im for c, im in panel.live.items() if c not in stored}
    assert live
    grid = sent.on(panel.grid.canvas)[-1]
    c, image = next(iter(live.items()))
    np.testing.assert_array_equal(tile_of(grid, panel, c), np.asarray(fit_tile(image, TILE)))
    panel.close()


def test_bad_input_becomes_a_message_in_the_panel(shapes, tmp_path):
    panel = UnitAtlas(shapes, tmp_path / "no-such-folder", store=tmp_path)
    assert panel.wait(300)
    assert panel.messages.kind == "error" and "no folder or file" in panel.messages.text
    assert panel.atlas is None and "failed" in panel.run_bar.status.value
    panel.messages.clear()
    panel.run_bar.run_button.click()  # the button shows the error again, the kernel goes on
    assert panel.wait(300)
    assert panel.messages.kind == "error" and "no folder or file" in panel.messages.text
    assert not panel.running and not panel.run_bar.run_button.disabled
    panel.close()
    # another layer opens another atlas
    session = Session(shapes, layer="conv4")
    ok = UnitAtlas(session, store=tmp_path, steps=2, channels=range(2))
    ok.steps.value = 3
    session.layer = "pool1"  # a 4-D output: fine, a new atlas opens
    assert ok.wait(300)
    assert ok.atlas.layer == "pool1" and ok.messages.kind != "error"
    ok.close()


def test_the_constructor_computes_nothing_and_the_store_opens_in_the_background(
    shapes, data, tmp_path, monkeypatch
):
    """Opening hashes the model's weights (seconds on a large model): it runs on the
    panel's runner, so the constructor (and explore) returns at once; a Run asked for
    meanwhile starts when the store is open."""
    release = threading.Event()
    opening = []
    original = unit_atlas.open_atlas

    def slow_open(*args, **kwargs):
        opening.append(threading.current_thread().name)
        assert release.wait(60)
        return original(*args, **kwargs)

    monkeypatch.setattr(unit_atlas, "open_atlas", slow_open)
    session = Session(shapes, layer="conv4")
    panel = UnitAtlas(session, data, store=tmp_path, steps=2, batch=4, channels=range(4))
    wait_until(lambda: opening, timeout=30, what="the opening")
    # the job's worker thread (the runner runs it), not the caller's
    assert opening == ["cnnviz job: open the atlas of conv4"]
    assert panel.running and panel.atlas is None and "opening" in panel.run_bar.status.value
    assert panel.run_bar.run_button.disabled and not panel.run_bar.stop_button.disabled
    panel.run()  # asked while opening: runs after
    release.set()
    assert panel.wait(600) and panel.messages.kind is None, panel.messages.text
    assert panel.atlas.complete and sorted(panel.atlas.computed) == [0, 1, 2, 3]
    bar = panel.run_bar
    assert "4 of 4 units done" in bar.status.value and not bar.run_button.disabled
    panel.close()


def test_explore_has_a_unit_atlas_tab(shapes, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNVIZ_STORE", str(tmp_path))
    app = cw.explore(shapes)
    panel = app.show("Unit atlas")
    assert isinstance(panel, UnitAtlas) and panel.session is app.session
    assert panel.wait(300)
    assert panel.atlas.layer == app.session.layer and panel.atlas.has_data  # generated data
    app.session.layer = "conv3"
    assert panel.wait(300)
    assert panel.atlas.layer == "conv3"
    assert str(panel.atlas.vis_store.path).startswith(str(tmp_path))
    app.close()


def test_a_unit_page_names_each_example_on_its_own_line():
    """Class names such as "horizontal_stripes" do not fit beside the score under an
    84-pixel example: with labels each caption has two lines (the name, then the score)."""
    from cnnviz_widgets.engine.dataset.atlas import AtlasUnit

    rng = np.random.default_rng(0)
    examples = rng.integers(0, 255, (7, 64, 64, 3), dtype=np.uint8)
    common = dict(
        layer="conv4",
        channel=3,
        image=examples[0],
        examples=examples,
        example_scores=np.linspace(2, 1, 7),
        example_boxes=np.array([[8, 8, 16, 16]] * 7),
    )
    plain = unit_page(AtlasUnit(**common))
    named = unit_page(
        AtlasUnit(**common, example_labels=np.arange(7)),
        label_names=list(cw.SHAPES_CLASS_NAMES),
    )
    rows = 2  # 7 examples, 6 a row
    assert named.shape[0] - plain.shape[0] == rows * 14 and named.shape[1] == plain.shape[1]
    # the second row's examples start lower by one caption line
    first_of_row_2 = 160 + 30 + 84 + 36  # visualization, caption, a row with two lines
    np.testing.assert_array_equal(
        named[first_of_row_2 : first_of_row_2 + 84, 6 : 6 + 84, :3].reshape(-1, 3)[:1],
        np.asarray(fit_tile(examples[6], 84))[:1, :1, :3].reshape(-1, 3),
    )


def test_a_unit_page_says_what_its_weights_thumbnail_shows():
    """A conv2 or conv4 kernel is drawn as the mean of its input channels, in grey: the page
    says so under "weights" (a grey 3x3 square alone reads as a broken image)."""
    from cnnviz_widgets.engine.dataset.atlas import AtlasUnit

    kernel = np.full((3, 3, 4), 128, np.uint8)
    bare = unit_page(AtlasUnit("conv4", 0, kernel=kernel))
    told = unit_page(AtlasUnit("conv4", 0, kernel=kernel, kernel_view="3x3, mean of 64 inputs"))
    assert bare.shape == told.shape
    caption = (slice(118, 136), slice(160 + 16, 160 + 16 + 200))
    assert (bare[caption] != told[caption]).any()
    assert (bare[:118] == told[:118]).all()  # the rest of the page is the same
