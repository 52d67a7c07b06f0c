"""The "save figure" control of the panels: it writes what the panel shows, at the chosen
dpi and format, and says what went wrong inside the panel; the atlas grid and unit page
flag dead units."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

import cnnviz_widgets as cw
from cnnviz_widgets.session import Session
from cnnviz_widgets.widgets import ClassOptimizer, FilterGallery, UnitAtlas
from cnnviz_widgets.widgets.save_figure import SaveFigure
from cnnviz_widgets.widgets.unit_atlas import TILE, unit_page
from cnnviz_widgets.widgets.unit_atlas import _fit as fit_tile


def control(panel) -> SaveFigure:
    found = [c for c in panel.children if isinstance(c, SaveFigure)]
    assert len(found) == 1
    return found[0]


def test_the_filter_gallery_saves_its_montage_at_print_resolution(shapes, tmp_path):
    gallery = FilterGallery(Session(shapes, layer="conv1"))
    save = control(gallery)
    assert save.filename.value.endswith(".pdf") and save.dpi.value == 300
    save.dpi.value = 100
    path = save.save(tmp_path / "filters.png")
    assert path == tmp_path / "filters.png" and "saved" in save.message.value
    fig = cw.engine.figures.figure_of(gallery.montage)
    w, h = fig.get_size_inches()
    with Image.open(path) as im:
        assert im.size == (round(w * 100), round(h * 100))
    assert "conv1" in fig._suptitle.get_text()
    # the tiles are numbered with the filter shown
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == [str(int(i)) for i in gallery.montage.order]
    save.filename.value = str(tmp_path / "filters.svg")
    save.button.click()
    assert (tmp_path / "filters.svg").read_bytes()[:5] == b"<?xml"
    gallery.close()


def test_bad_names_and_nothing_to_draw_become_messages(shapes, tmp_path):
    panel = ClassOptimizer(shapes, steps=3)
    save = control(panel)
    assert save.save(tmp_path / "run.pdf") is None
    assert "no run yet" in save.message.value
    assert save.save(tmp_path / "run.jpg") is None
    assert "end the file name with .png, .svg, .pdf" in save.message.value
    assert save.save(tmp_path / "missing" / "run.png") is None
    assert "does not exist" in save.message.value
    panel.run(wait=True, timeout=180)
    path = save.save(tmp_path / "run.pdf")
    assert path is not None and path.read_bytes()[:4] == b"%PDF"
    assert save.last_path == path
    panel.close()


def test_the_atlas_flags_dead_units_and_saves_grid_and_page(shapes, tmp_path):
    data = cw.generate_shapes(200, seed=0)
    session = Session(shapes, layer="conv4")
    panel = UnitAtlas(
        session, data.images, store=tmp_path / "store", channels=[12, 13], steps=2, batch=2
    )
    assert panel.wait(300) and panel.messages.kind is None, panel.messages.text
    panel.run(wait=True, timeout=600)
    assert panel.messages.kind is None, panel.messages.text
    assert panel.atlas.health(12) == "dead" and panel.atlas.health(13) == "alive"
    assert panel._marks == {12: "dead", 13: "alive"}
    save = control(panel)
    assert save.what.options == ("atlas grid", "unit page")
    save.what.value = "unit page"
    assert save.save(tmp_path / "page.png") is None and "no unit is shown" in save.message.value
    session.channel = 12
    assert "DEAD</b>: fired on 0 of 200 images" in panel.page_info.value
    dead_page = unit_page(panel.atlas.unit(12))
    plain = unit_page(dataclasses.replace(panel.atlas.unit(12), fired=None))
    assert dead_page.shape == plain.shape and not np.array_equal(dead_page, plain)
    red = (dead_page[..., 0] > 200) & (dead_page[..., 1] < 120) & (dead_page[..., 2] < 120)
    assert red.sum() > 20  # the red line
    assert save.save(tmp_path / "page.png") is not None
    save.what.value = "atlas grid"
    assert save.save(tmp_path / "grid.pdf") is not None
    session.channel = 13
    assert "DEAD" not in panel.page_info.value
    # the dead unit's tile carries the word, the live one is the plain visualization
    # (above the unit number every tile has in its bottom 15 rows)
    grid = np.asarray(panel.grid.image)
    x, y, w, h = panel.tile_box(13)
    np.testing.assert_array_equal(
        grid[y : y + h - 15, x : x + w],
        np.asarray(fit_tile(panel.atlas.image(13), TILE))[: h - 15],
    )
    x, y, w, h = panel.tile_box(12)
    assert not np.array_equal(
        grid[y : y + h - 15, x : x + w],
        np.asarray(fit_tile(panel.atlas.image(12), TILE))[: h - 15],
    )
    panel.close()


@pytest.mark.parametrize("bad", ["x.gif", "noext"])
def test_the_control_alone(tmp_path, bad, shapes):
    r = cw.predict_top(shapes, cw.sample_image("ring"))
    save = SaveFigure(r.to_figure, filename=str(tmp_path / "p.png"))
    assert save.what.layout.display == "none"  # one figure: no menu
    assert save.save() == tmp_path / "p.png"
    assert (
        save.save(tmp_path / bad) is None and "cannot tell the figure format" in save.message.value
    )


def test_the_explain_panel_saves_its_explanation_and_feature_maps(shapes, tmp_path):
    from cnnviz_widgets.widgets import ImageExplainer

    panel = ImageExplainer(shapes)  # a sample image, explained at once on this small model
    save = control(panel)
    assert list(save.figures) == ["explanation", "feature maps"]
    assert panel.wait(120) and panel.attribution is not None
    path = save.save(tmp_path / "explanation.pdf")
    assert path is not None and path.read_bytes()[:4] == b"%PDF"
    fig = panel.attribution.to_figure()
    assert panel.attribution.class_name in fig._suptitle.get_text() + "".join(
        a.get_title() for a in fig.axes
    )
    save.what.value = "feature maps"
    path = save.save(tmp_path / "maps.png")
    assert path is not None and "saved" in save.message.value
    panel.close()
