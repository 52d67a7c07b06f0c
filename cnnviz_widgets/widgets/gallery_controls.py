"""The filter gallery's settings as traits, and the controls linked to them."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from ..errors import CnnvizError
from .common import labeled, row

VIEW_OPTIONS = [
    ("auto (rgb for 3 inputs, else mean)", "auto"),
    ("one input channel", "channel"),
    ("rgb (3 input channels)", "rgb"),
    ("mean over input channels", "mean"),
    ("max |w| over input channels", "maxabs"),
]
NORMALIZATION_OPTIONS = [
    ("each filter to its own range", "filter"),
    ("one range for the layer", "layer"),
    ("symmetric around 0", "symmetric"),
]
CMAP_OPTIONS = [
    ("auto (gray / RdBu_r)", ""),
    ("gray", "gray"),
    ("viridis", "viridis"),
    ("magma", "magma"),
    ("RdBu_r (diverging)", "RdBu_r"),
    ("coolwarm (diverging)", "coolwarm"),
    ("PiYG (diverging)", "PiYG"),
]
ZOOM_OPTIONS = [("auto", 0), ("1×", 1), ("2×", 2), ("3×", 3), ("4×", 4), ("6×", 6), ("8×", 8)]
PAGE_SIZES = [64, 128, 256, 512, 1024, 2048]

__all__ = ["PAGE_SIZES", "GalleryControls", "GallerySettings"]


class GallerySettings(traitlets.HasTraits):
    """How the gallery draws: the controls are linked to these traits."""

    mode = traitlets.Unicode("filters")
    view = traitlets.Unicode("auto")
    in_channel = traitlets.Int(0)
    normalization = traitlets.Unicode("filter")
    cmap = traitlets.Unicode("")
    zoom = traitlets.Int(0)
    sort = traitlets.Bool(False)
    page_size = traitlets.Int(512)

    @traitlets.validate("mode")
    def _known_mode(self, proposal: Any) -> str:
        if proposal["value"] not in ("filters", "overview"):
            raise CnnvizError(f"unknown mode {proposal['value']!r}: use 'filters' or 'overview'")
        return proposal["value"]

    @traitlets.validate("page_size")
    def _offered_page_size(self, proposal: Any) -> int:
        if proposal["value"] not in PAGE_SIZES:
            raise CnnvizError(
                f"page_size {proposal['value']} is not offered: use one of {PAGE_SIZES}"
            )
        return proposal["value"]


class GalleryControls:
    """The gallery's controls, each linked to a trait of ``config``.

    Attributes:
        mode_toggle, layer_select, view, in_channel, normalization, cmap, zoom, sort,
            page_size, prev_page, next_page, page_label, save_png, export_status: the
            controls (``layer_select`` is set by the panel: it is the session's layer).
        layer_row, style_row, paging, export_row: their rows.
    """

    def __init__(self, config: GallerySettings, layers: list[tuple[str, str]]) -> None:
        label, small = "52px", "initial"

        self.mode_toggle = widgets.ToggleButtons(
            options=[("All filters", "filters"), ("Overview", "overview")],
            tooltips=["every filter of one layer", "the first filter of each block"],
            style={"button_width": "110px"},
        )
        self.mode_toggle.add_class("cnnviz-mode")
        self.layer_select = labeled(widgets.Dropdown, "Layer", "380px", label, options=layers)
        self.layer_select.value = None
        self.layer_select.add_class("cnnviz-gallery-layer")
        self.view = labeled(widgets.Dropdown, "View", "300px", label, options=VIEW_OPTIONS)
        self.in_channel = labeled(
            widgets.BoundedIntText, "input channel", "170px", small, min=0, max=0, disabled=True
        )
        self.normalization = labeled(
            widgets.Dropdown, "Scale", "290px", label, options=NORMALIZATION_OPTIONS
        )
        self.cmap = labeled(widgets.Dropdown, "Colours", "250px", small, options=CMAP_OPTIONS)
        self.zoom = labeled(widgets.Dropdown, "Zoom", "140px", label, options=ZOOM_OPTIONS)
        self.sort = widgets.Checkbox(
            description="strongest first (L2 norm)",
            indent=False,
            layout=widgets.Layout(width="190px"),
        )
        self.page_size = widgets.Dropdown(
            options=[(f"{n} per page", n) for n in PAGE_SIZES], layout=widgets.Layout(width="130px")
        )
        self.prev_page = widgets.Button(
            description="◀", tooltip="previous page", layout=widgets.Layout(width="36px")
        )
        self.next_page = widgets.Button(
            description="▶", tooltip="next page", layout=widgets.Layout(width="36px")
        )
        self.page_label = widgets.HTML()
        self.page_label.add_class("cnnviz-muted")
        self.save_png = widgets.Button(
            description="Save PNG",
            icon="download",
            tooltip="write the picture to a PNG file",
            layout=widgets.Layout(width="110px"),
        )
        self.export_status = widgets.HTML()
        self.export_status.add_class("cnnviz-muted")
        for name in ("view", "in_channel", "normalization", "cmap", "zoom", "sort", "page_size"):
            widgets.link((config, name), (getattr(self, name), "value"))
        widgets.link((config, "mode"), (self.mode_toggle, "value"))
        self.layer_row = row(self.layer_select, self.view, self.in_channel)
        self.style_row = row(self.normalization, self.cmap, self.zoom, self.sort)
        self.paging = row(self.prev_page, self.page_label, self.next_page, self.page_size)
        self.export_row = row(self.save_png, self.export_status)
