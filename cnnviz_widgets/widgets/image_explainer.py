"""ImageExplainer: how the network sees one image, as a panel.

Pick an image (upload, a bundled sample, a new generated shapes image, or an array from
code), read the top-5 predictions, and see where the evidence for a class is: Grad-CAM,
Grad-CAM++, saliency, SmoothGrad or occlusion, as a heatmap over the image.  Under it, the
feature maps of the session's layer, strongest first; a click on a map selects that
channel in the session, so the class optimizer (channel target) and the filter gallery
follow.

Every engine call runs synchronously in the callback that asked for it: on the embedded
model they take milliseconds; occlusion on VGG16 takes seconds, during which the status
line says "working…".
"""

from __future__ import annotations

import io
import os
import time
import warnings
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image

from ..engine import (
    SHAPES_CLASS_NAMES,
    Attribution,
    FeatureMaps,
    ImageAdjustedWarning,
    Predictions,
    default_cam_layer,
    grad_cam,
    occlusion,
    predict_top,
    saliency,
    sample_image,
)
from ..engine.filters import to_rgba
from ..engine.imageio import as_image, fit_image, load_image
from ..engine.internals import image_input
from ..engine.shapes import generate_shapes
from ..engine.shapes import sample as shapes_sample
from ..errors import CnnvizError
from .canvas import PixelCanvas
from .common import Panel, esc, style_sheet
from .feature_maps_view import FeatureMapsView
from .pictures import fit_zoom, opaque_rgba

METHODS = [
    ("Grad-CAM", "grad_cam"),
    ("Grad-CAM++", "grad_cam++"),
    ("Saliency", "saliency"),
    ("SmoothGrad", "smoothgrad"),
    ("Occlusion", "occlusion"),
]
METHOD_TIPS = [
    "class-weighted sum of a conv layer's channels (Selvaraju et al. 2017)",
    "Grad-CAM with higher-order channel weights (Chattopadhay et al. 2018)",
    "gradient of the class score with respect to the pixels (Simonyan et al. 2014)",
    "saliency averaged over noisy copies of the image (Smilkov et al. 2017)",
    "score drop when a patch is hidden (Zeiler and Fergus 2014)",
]
METHOD_NAMES = dict((v, k) for k, v in METHODS)
CMAPS = ["jet", "turbo", "inferno", "viridis", "magma", "hot"]
GRACE_HOPPER = "grace_hopper"
TOP_K = 5
OVERLAY_TARGET = 256  # CSS pixels the overlay's longer side aims for (small images)
LARGE_IMAGE = 128  # inputs larger than this get cheaper occlusion / SmoothGrad defaults
SEARCH_FROM = 20  # a class search box when the model has more classes than this
NO_SAMPLE = ""  # the sample dropdown's value when the image is not a sample
AUTO = ""  # the Grad-CAM layer option "automatic" (a Dropdown shows no value for None)


def overlay_zoom(shape: tuple[int, ...], target: int = OVERLAY_TARGET) -> int:
    """Whole-pixel zoom that brings a small image's longer side near ``target`` (1..8)."""
    return fit_zoom(shape, target, nearest=True)


def colorbar_css(cmap: str, steps: int = 11) -> str:
    """A CSS ``linear-gradient`` through a matplotlib colormap (low on the left)."""
    colors = to_rgba(np.linspace(0.0, 1.0, steps)[None], cmap)[0]
    stops = ", ".join(f"rgb({r},{g},{b})" for r, g, b, _ in colors)
    return f"linear-gradient(to right, {stops})"


def _percent(p: float) -> str:
    """A probability as a percentage: ``"99.8 %"``, ``"<0.1 %"``."""
    return "<0.1 %" if 0 < p < 0.0005 else f"{p * 100:.1f} %"


class ImageExplainer(Panel):
    """Explain one image: top-5 predictions, a class heatmap over the image, feature maps.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model (name,
            path, ``keras.Model``, ``LoadedModel``).
        image: the first image: an array ``(H, W, 3)`` (floats in ``[0, 1]`` or uint8), a
            grayscale array, a PIL image, a path or the bytes of an image file.  Default:
            a generated shapes image for the embedded model, matplotlib's sample photo of
            Grace Hopper for other models.  A bad image shows a message in the panel (and
            the default image instead).
        **load_kwargs: passed to ``load_model`` when a model is given.

    Images come from the **Upload** button (any format PIL reads), the **Sample**
    dropdown (one generated image per shapes class and matplotlib's Grace Hopper photo,
    nothing downloaded), **New shapes image** (a random seed, shown) or :meth:`set_image`.
    An image that does not fit the model's input is resized or converted, with a note.

    A new image selects its top prediction as the class to explain.  Picking a class sets
    ``session.class_index`` (so the class optimizer can take it up), and a class set in the
    session elsewhere is explained here.  The feature maps are those of ``session.layer``
    (the Grad-CAM layer while the session has none); a click on a map calls
    ``session.select(layer, channel)``.

    Attributes:
        image: the display image the model sees, ``(H, W, C)`` float32 in ``[0, 1]``
            (after any resizing), or ``None``.
        image_label: where it came from (``"generated ring, seed 4821"``).
        image_notes: what was changed to make it fit the model.
        predictions: the :class:`~cnnviz_widgets.Predictions` for the image.
        attribution: the last :class:`~cnnviz_widgets.Attribution` shown, or ``None``.
        features: the :class:`~cnnviz_widgets.FeatureMaps` shown, or ``None``.
        pixels: the overlay's :class:`PixelCanvas` (CSS class
            ``cnnviz-explainer-canvas``), zoomed by whole pixels (``pixels.zoom``).
        fm_pixels: the feature-map montage (``cnnviz-featuremap-canvas``);
            ``channel_pixels`` the selected channel over the image.
        upload, sample_select, new_image: the image sources.
        class_search, class_select, method, cam_layer, smooth_samples, smooth_noise,
            patch, stride, opacity, cmap, weighted: the explanation's controls.
        fm_layer, fm_sort: the feature maps' layer (it is ``session.layer``) and order.
        status: what was computed and how long it took ("working…" meanwhile).
        busy: ``True`` while an engine call runs.
    """

    def __init__(self, model_or_session: Any, image: Any = None, **load_kwargs: Any) -> None:
        super().__init__(model_or_session, css_class="cnnviz-image-explainer", **load_kwargs)
        session = self.session
        loaded = session.loaded
        self.image: np.ndarray | None = None
        self.image_label = ""
        self.image_notes: list[str] = []
        self.predictions: Predictions | None = None
        self.attribution: Attribution | None = None
        self.busy = False
        self._updating = False
        self._n_classes = session.n_classes
        self._class_labels = self._make_class_labels()
        self._is_shapes = list(loaded.class_names or []) == list(SHAPES_CLASS_NAMES)
        try:
            self._input = image_input(loaded.model)
        except CnnvizError:
            self._input = (None, None, 3)
        try:
            self._cam_default: str | None = default_cam_layer(loaded)
        except CnnvizError:
            self._cam_default = None

        # --- image sources -----------------------------------------------------------
        self.title = widgets.HTML(
            f'Explain an image <span class="cnnviz-sub">with {esc(loaded.name)}: what it '
            "predicts, and where in the image the evidence is</span>"
        )
        self.title.add_class("cnnviz-title")
        self.upload = widgets.FileUpload(
            accept="image/*",
            multiple=False,
            description="Upload image",
            layout=widgets.Layout(width="150px"),
        )
        self.upload.add_class("cnnviz-ex-upload")
        self.sample_select = widgets.Dropdown(
            options=[
                ("— choose a sample —", NO_SAMPLE),
                *[(f"{name.replace('_', ' ')} (generated)", name) for name in SHAPES_CLASS_NAMES],
                ("Grace Hopper (photo)", GRACE_HOPPER),
            ],
            value=NO_SAMPLE,
            description="Sample",
            layout=widgets.Layout(width="290px"),
            style={"description_width": "56px"},
        )
        self.sample_select.add_class("cnnviz-ex-sample")
        self.new_image = widgets.Button(
            description="New shapes image",
            icon="random",
            tooltip="a random generated shapes image (its seed is shown)",
            layout=widgets.Layout(width="170px"),
        )
        self.new_image.add_class("cnnviz-ex-new")
        self.source = widgets.HTML()
        self.source.add_class("cnnviz-muted")

        # --- class and method --------------------------------------------------------
        self.predictions_html = widgets.HTML()
        self.class_search = widgets.Text(
            placeholder=f"search {self._n_classes or ''} classes…",
            continuous_update=True,
            layout=widgets.Layout(width="340px"),
        )
        self.class_search.add_class("cnnviz-ex-class-search")
        self.class_search.layout.display = None if (self._n_classes or 0) > SEARCH_FROM else "none"
        self.class_select = widgets.Dropdown(
            options=self._class_options(""),
            value=None,
            description="Class",
            layout=widgets.Layout(width="340px"),
            style={"description_width": "64px"},
        )
        self.class_select.add_class("cnnviz-ex-class")
        self.method = widgets.ToggleButtons(
            options=METHODS,
            tooltips=METHOD_TIPS,
            value="grad_cam" if self._cam_default is not None else "saliency",
            style={"button_width": "108px"},
        )
        self.method.add_class("cnnviz-ex-methods")
        cam_options: list[tuple[str, Any]] = []
        if self._cam_default is not None:
            cam_options.append((f"auto: {self._cam_default} (the last conv layer)", AUTO))
        cam_options += [
            (f"{r.path} · {r.output_shape[1]}×{r.output_shape[2]}×{r.output_shape[3]}", r.path)
            for r in session.table
            if r.class_name != "InputLayer"
            and isinstance(r.output_shape, tuple)
            and len(r.output_shape) == 4
        ]
        self.cam_layer = widgets.Dropdown(
            options=cam_options or [("auto (this model has no spatial layer)", AUTO)],
            value=AUTO,
            description="Layer",
            layout=widgets.Layout(width="340px"),
            style={"description_width": "64px"},
        )
        self.cam_layer.add_class("cnnviz-ex-cam-layer")
        height, width = self._input[:2]
        large = max(height or 0, width or 0) > LARGE_IMAGE
        self.smooth_samples = widgets.IntSlider(
            value=10 if large else 25,
            min=5,
            max=100,
            step=5,
            description="samples",
            continuous_update=False,
            layout=widgets.Layout(width="340px"),
            style={"description_width": "64px"},
        )
        self.smooth_noise = widgets.FloatSlider(
            value=0.15,
            min=0.0,
            max=0.5,
            step=0.05,
            description="noise",
            continuous_update=False,
            layout=widgets.Layout(width="340px"),
            style={"description_width": "64px"},
        )
        self.patch = widgets.BoundedIntText(
            value=8,
            min=1,
            max=4096,
            description="patch",
            tooltip="side of the hidden patch, in pixels",
            layout=widgets.Layout(width="150px"),
            style={"description_width": "64px"},
        )
        self.stride = widgets.BoundedIntText(
            value=4,
            min=1,
            max=4096,
            description="stride",
            tooltip="step between patches, in pixels",
            layout=widgets.Layout(width="130px"),
            style={"description_width": "50px"},
        )
        self.opacity = widgets.FloatSlider(
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            description="opacity",
            readout_format=".2f",
            layout=widgets.Layout(width="340px"),
            style={"description_width": "64px"},
        )
        self.opacity.add_class("cnnviz-ex-opacity")
        self.cmap = widgets.Dropdown(
            options=CMAPS,
            value="jet",
            description="colours",
            layout=widgets.Layout(width="180px"),
            style={"description_width": "64px"},
        )
        self.weighted = widgets.Checkbox(
            value=False,
            description="fade cold regions",
            indent=False,
            tooltip="scale the opacity by the heat, so unimportant regions show the image",
            layout=widgets.Layout(width="150px"),
        )
        self.status = widgets.HTML()
        self.status.add_class("cnnviz-status")

        # --- overlay -----------------------------------------------------------------
        self.pixels = PixelCanvas("cnnviz-explainer-canvas")
        self.caption = widgets.HTML()
        self.caption.add_class("cnnviz-ex-caption")
        self.legend = widgets.HTML()
        image_box = widgets.Box([self.pixels.canvas])
        image_box.add_class("cnnviz-ex-image-box")

        # --- feature maps ------------------------------------------------------------
        self.maps = FeatureMapsView(session, self._cam_default, self.guarded, self.cmap)
        self.fm_layer, self.fm_sort = self.maps.layer, self.maps.sort
        self.fm_pixels, self.channel_pixels = self.maps.pixels, self.maps.channel_pixels
        self.fm_info, self.fm_detail, self.fm_head = (
            self.maps.info,
            self.maps.detail,
            self.maps.head,
        )

        # --- layout ------------------------------------------------------------------
        sources = widgets.HBox([self.upload, self.sample_select, self.new_image])
        sources.add_class("cnnviz-controls")
        self.cam_box = widgets.VBox([self.cam_layer])
        self.smooth_box = widgets.VBox([self.smooth_samples, self.smooth_noise])
        self.patch_count = widgets.HTML()
        self.patch_count.add_class("cnnviz-muted")
        self.occlusion_box = widgets.HBox([self.patch, self.stride, self.patch_count])
        self.occlusion_box.add_class("cnnviz-controls")
        side = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Top 5 predictions</div>'),
                self.predictions_html,
                widgets.HTML('<div class="cnnviz-section">Explain</div>'),
                self.class_search,
                self.class_select,
                self.method,
                self.cam_box,
                self.smooth_box,
                self.occlusion_box,
                self.opacity,
                widgets.HBox([self.cmap, self.weighted], layout=widgets.Layout(gap="8px")),
                self.status,
            ]
        )
        side.add_class("cnnviz-ex-side")
        side.add_class("cnnviz-ex-column")
        left = widgets.VBox([image_box, self.legend, self.caption])
        left.add_class("cnnviz-ex-column")
        body = widgets.HBox(
            [left, side],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", gap="14px"),
        )
        self.children = [
            style_sheet(),
            style_sheet("image_explainer"),
            self.title,
            sources,
            self.source,
            self.messages,
            body,
            *self.maps.children,
        ]

        # --- callbacks ---------------------------------------------------------------
        self.upload.observe(self.guarded(self._on_upload), names="value")
        self.sample_select.observe(self.guarded(self._on_sample), names="value")
        self.new_image.on_click(self.guarded(lambda _: self.new_shapes_image()))
        self.class_search.observe(self.guarded(self._on_search), names="value")
        self.class_select.observe(self.guarded(self._on_class_pick), names="value")
        for control in (self.method, self.cam_layer, self.smooth_samples, self.smooth_noise):
            control.observe(self.guarded(self._on_method_control), names="value")
        for control in (self.patch, self.stride):
            control.observe(self.guarded(self._on_method_control), names="value")
        for control in (self.opacity, self.cmap, self.weighted):
            control.observe(self.guarded(self._on_style), names="value")
        self.fm_sort.observe(self.guarded(lambda _: self.render_features()), names="value")
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(self._on_session_channel, names=["channel"])
        self.observe_session(self._on_session_class, names=["class_index"])

        self._update_method_controls()
        self.maps.sync_layer()
        first_error: BaseException | None = None
        if image is not None:
            try:
                self.set_image(image)
            except Exception as err:  # keep the panel: show the error and a default image
                first_error = err
        if self.image is None:
            self.guarded(self._default_image)()
        if first_error is not None:
            self.messages.show_error(first_error)

    # --- public API -------------------------------------------------------------------

    def set_image(self, image: Any, name: str | None = None) -> None:
        """Explain a new image: an array ``(H, W, C)`` or ``(H, W)`` (floats in ``[0, 1]``
        or uint8), a PIL image, a path, or the bytes of an image file.

        The image is fitted to the model's input (resized, gray <-> RGB; each change shown
        as a note), its top-5 predictions computed, the top one selected as the class to
        explain, and the heatmap and feature maps redrawn.

        Raises:
            CnnvizError: not an image (no such file, undecodable bytes, wrong shape); the
                panel keeps its previous image.
        """
        if name is None:
            if isinstance(image, (str, os.PathLike)):
                name = os.path.basename(os.fspath(image))
            elif isinstance(image, np.ndarray):
                name = f"array {image.shape} {image.dtype}"
            else:
                name = type(image).__name__
        self._set_image(image, name)

    def new_shapes_image(self, seed: int | None = None) -> int:
        """Show a generated shapes image (random class) for ``seed`` (default: a random
        seed); returns the seed."""
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 100_000))
        size = self._shapes_size()
        batch = generate_shapes(1, seed=int(seed), size=size)
        label = SHAPES_CLASS_NAMES[int(batch.labels[0])].replace("_", " ")
        self._set_image(batch.images[0], f"generated {label}, seed {seed}")
        return int(seed)

    def explain(self) -> Attribution | None:
        """Recompute the heatmap for the current image, class and method and draw it."""
        if self.image is None:
            return None
        self.attribution = None
        method = self.method.value
        target = self.class_select.value
        what = METHOD_NAMES[method]
        if method == "occlusion":
            h, w = self.image.shape[:2]
            n = -(-h // int(self.stride.value)) * -(-w // int(self.stride.value))
            what += f" ({n} patches)"
        elif method == "smoothgrad":
            what += f" ({int(self.smooth_samples.value)} noisy copies)"
        self._working(f"working… {esc(what)}")
        start = time.perf_counter()
        try:
            result = self._compute(method, target)
        except Exception:
            self._show_plain()
            self.status.value = ""
            raise
        finally:
            self.busy = False
            self.status.remove_class("cnnviz-working")
        seconds = time.perf_counter() - start
        self.attribution = result
        self.draw_overlay()
        self.status.value = f"{esc(METHOD_NAMES[method])} computed in {seconds * 1000:.0f} ms"
        self._show_predictions()
        caveats = [n for n in result.notes if n not in self.image_notes]
        if caveats:
            self.messages.show_note("<br>".join(esc(n) for n in caveats))
        return result

    def draw_overlay(self) -> np.ndarray | None:
        """Draw the current heatmap over the image (opacity, colours); returns the RGBA
        image drawn (before zoom)."""
        result = self.attribution
        if result is None:
            self._show_plain()
            return None
        rgba = result.overlay(
            self.cmap.value, float(self.opacity.value), weighted=bool(self.weighted.value)
        )
        self.pixels.show(rgba, overlay_zoom(rgba.shape))
        self.legend.value = (
            '<div class="cnnviz-ex-legend">low<div class="cnnviz-ex-bar" '
            f'style="background: {colorbar_css(self.cmap.value)}"></div>high evidence</div>'
        )
        self.caption.value = self._caption(result)
        return rgba

    @property
    def features(self) -> FeatureMaps | None:
        """The :class:`~cnnviz_widgets.FeatureMaps` shown, or ``None``."""
        return self.maps.features

    def render_features(self) -> FeatureMaps | None:
        """Redraw the feature maps of ``session.layer`` (the Grad-CAM layer when the session
        has no layer) for the current image."""
        return self.maps.render(self.image)

    def to_png(self, path: str | os.PathLike | None = None) -> bytes:
        """The overlay as shown (at its zoom) as PNG bytes; also written to ``path``."""
        if self.pixels.sent is None:
            raise CnnvizError("nothing to export yet: choose an image")
        buffer = io.BytesIO()
        Image.fromarray(self.pixels.sent, "RGBA").save(buffer, "PNG")
        data = buffer.getvalue()
        if path is not None:
            with open(path, "wb") as file:
                file.write(data)
        return data

    # --- images -----------------------------------------------------------------------

    def _default_image(self) -> None:
        if self._is_shapes:
            self.sample_select.value = SHAPES_CLASS_NAMES[0]
        else:
            self.sample_select.value = GRACE_HOPPER

    def _shapes_size(self) -> int:
        h, w, _ = self._input
        return int(h) if h is not None and h == w and 16 <= h <= 512 else 64

    def _set_image(self, source: Any, label: str, sample: str = NO_SAMPLE) -> None:
        h, w, c = self._input
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ImageAdjustedWarning)
            arr, notes = as_image(source)
            fitted, notes = fit_image(arr, h, w, c, notes=notes)
        for warning in caught:  # anything warned but not in the notes
            text = str(warning.message)
            if issubclass(warning.category, ImageAdjustedWarning) and text not in notes:
                notes.append(text)
        self.image = fitted
        self.image_label = label
        self.image_notes = notes
        self.attribution = self.predictions = None
        if self.sample_select.value != sample:
            self._updating = True
            try:
                self.sample_select.value = sample
            finally:
                self._updating = False
        self._reset_occlusion(fitted.shape)
        self.messages.clear()
        self.source.value = (
            f"Image: <b>{esc(label)}</b> · {fitted.shape[0]}×{fitted.shape[1]}"
            f"{'' if fitted.shape[-1] != 1 else ' gray'} as the model sees it"
        )
        if notes:
            self.messages.show_note(
                "The image was adjusted to fit the model: " + "; ".join(esc(n) for n in notes)
            )
        # each step on its own: a method that fails leaves the others shown
        errors: list[BaseException] = []
        for step in (self._predict, self.explain, self.render_features):
            try:
                step()
            except Exception as err:
                errors.append(err)
        if errors:
            self.messages.show_error(errors[0])

    def _predict(self) -> None:
        self.predictions = None
        self.predictions_html.value = ""
        k = min(TOP_K, self._n_classes or TOP_K)
        self.predictions = predict_top(self.session.loaded, self.image, k=k)
        top = self.predictions.class_index
        self._updating = True  # a new image's default class: not written to the session
        try:
            if top not in {v for _, v in self.class_select.options}:
                self.class_search.value = ""
                self.class_select.options = self._class_options("")
            self.class_select.value = top
        finally:
            self._updating = False
        self._show_predictions()

    def _reset_occlusion(self, shape: tuple[int, ...]) -> None:
        patch = max(1, min(shape[0], shape[1]) // 8)
        self._updating = True
        try:
            self.patch.max = self.stride.max = max(shape[0], shape[1])
            self.patch.value = patch
            # half-patch steps on small images; whole patches on large ones (VGG16: 64
            # patches instead of 256, each a forward pass)
            small = max(shape[0], shape[1]) <= LARGE_IMAGE
            self.stride.value = max(1, patch // 2) if small else patch
        finally:
            self._updating = False
        self._update_patch_count()

    def _update_patch_count(self) -> None:
        if self.image is None:
            self.patch_count.value = ""
            return
        h, w = self.image.shape[:2]
        step = max(1, int(self.stride.value))
        n = -(-h // step) * -(-w // step)
        self.patch_count.value = f"→ {n} patches, one forward pass each"

    # --- explanation ------------------------------------------------------------------

    def _compute(self, method: str, target: int | None) -> Attribution:
        loaded, image = self.session.loaded, self.image
        if method in ("grad_cam", "grad_cam++"):
            return grad_cam(
                loaded,
                image,
                target,
                layer=self.cam_layer.value or None,
                plus_plus=method == "grad_cam++",
            )
        if method == "saliency":
            return saliency(loaded, image, target)
        if method == "smoothgrad":
            return saliency(
                loaded,
                image,
                target,
                smooth=int(self.smooth_samples.value),
                noise=float(self.smooth_noise.value),
            )
        if method == "occlusion":
            return occlusion(
                loaded, image, target, patch=int(self.patch.value), stride=int(self.stride.value)
            )
        raise CnnvizError(f"unknown method {method!r}: use one of {', '.join(METHOD_NAMES)}")

    def _working(self, text: str) -> None:
        self.busy = True
        self.status.add_class("cnnviz-working")
        self.status.value = text

    def _show_plain(self) -> None:
        if self.image is None:
            self.pixels.clear()
            return
        rgba = opaque_rgba(self.image)
        self.pixels.show(rgba, overlay_zoom(rgba.shape))
        self.legend.value = ""
        self.caption.value = '<span class="cnnviz-muted">the image without a heatmap</span>'

    def _caption(self, result: Attribution) -> str:
        name = result.class_name or f"class {result.class_index}"
        where = f" at <code>{esc(result.layer)}</code>" if result.layer else ""
        extra = ""
        if result.method == "occlusion":
            extra = f" · patch {result.patch}, stride {result.stride}"
        elif result.method == "smoothgrad":
            extra = f" · {result.samples} samples, noise {result.noise:g}"
        h, w = result.heatmap.shape
        zoom = self.pixels.zoom
        size = f"{w}×{h} px" + (f", shown {zoom}× larger" if zoom > 1 else "")
        return (
            f"<b>{esc(METHOD_NAMES.get(result.method, result.method))}</b> for "
            f"<b>{esc(name)}</b> (p = {_percent(result.probability)}){where}{extra}"
            f'<br><span class="cnnviz-muted">{size}</span>'
        )

    def _show_predictions(self) -> None:
        p = self.predictions
        if p is None:
            self.predictions_html.value = ""
            return
        picked = self.class_select.value
        rows = []
        for rank, (index, name, prob) in enumerate(p, 1):
            label = name if name is not None else f"class {index}"
            cls = ' class="cnnviz-top-picked"' if index == picked else ""
            width = max(0.0, min(100.0, prob * 100))
            rows.append(
                f"<tr{cls}><td>{rank}.</td>"
                f'<td class="cnnviz-top-name" title="{esc(label)} (index {index})">'
                f"{esc(label)}</td>"
                f'<td><div class="cnnviz-top-track"><div class="cnnviz-top-bar" '
                f'style="width: {width:.1f}%"></div></div></td>'
                f'<td class="cnnviz-top-p">{_percent(prob)}</td></tr>'
            )
        self.predictions_html.value = f'<table class="cnnviz-top">{"".join(rows)}</table>'

    def _update_method_controls(self) -> None:
        method = self.method.value
        self.cam_box.layout.display = None if method.startswith("grad_cam") else "none"
        self.smooth_box.layout.display = None if method == "smoothgrad" else "none"
        self.occlusion_box.layout.display = None if method == "occlusion" else "none"

    # --- classes ----------------------------------------------------------------------

    def _make_class_labels(self) -> list[str]:
        names = self.session.loaded.class_names
        if names:
            return [f"{i} · {name}" for i, name in enumerate(names)]
        return [f"class {i}" for i in range(self._n_classes or 0)]

    def _class_options(self, text: str) -> list[tuple[str, int]]:
        text = text.strip().lower()
        current = getattr(self, "class_select", None)
        keep = current.value if current is not None else None
        options = [
            (label, i)
            for i, label in enumerate(self._class_labels)
            if not text or text in label.lower() or text == str(i) or i == keep
        ]
        return options

    # --- callbacks --------------------------------------------------------------------

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        item = files[-1]
        name = item.get("name") or "uploaded file"
        try:
            data = bytes(item["content"])
            self._set_image(load_image(data, mode=None), f"{name} (uploaded)")
        except CnnvizError as err:
            raise CnnvizError(f"{name}: {err}") from None
        finally:
            self._updating = True
            try:  # the same file can be uploaded again
                self.upload.value = ()
            finally:
                self._updating = False

    def _on_sample(self, change: dict) -> None:
        if self._updating or change["new"] == NO_SAMPLE:
            return
        name = change["new"]
        if name == GRACE_HOPPER:
            image = sample_image(GRACE_HOPPER)
            label = "Grace Hopper (matplotlib's sample photo)"
        else:
            image = shapes_sample(name, seed=0, size=self._shapes_size())[0]
            label = f"generated {name.replace('_', ' ')}, seed 0"
        self._set_image(image, label, sample=name)

    def _on_search(self, change: dict) -> None:
        text = change["new"]
        options = self._class_options(text)
        self._updating = True
        try:
            self.class_select.options = options
        finally:
            self._updating = False
        needle = text.strip().lower()
        if needle and not any(needle in label.lower() or needle == str(i) for label, i in options):
            self.messages.show_note(
                f"No class matches <b>{esc(text)}</b>; the explained class stays."
            )
        elif self.messages.kind == "note" and "No class matches" in self.messages.value:
            self.messages.clear()

    def _on_class_pick(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        index = int(change["new"])
        if self.session.class_index != index:
            self._updating = True
            try:
                self.session.class_index = index
            finally:
                self._updating = False
        self.explain()

    def _on_method_control(self, change: dict) -> None:
        self._update_method_controls()
        self._update_patch_count()
        if self._updating:
            return
        self.explain()

    def _on_style(self, change: dict) -> None:
        self.draw_overlay()
        if change["owner"] is self.cmap and self.features is not None:
            self.maps.show_channel()

    def _on_session_layer(self, change: dict) -> None:
        self.maps.sync_layer()
        self.render_features()

    def _on_session_channel(self, change: dict) -> None:
        self.maps.on_session_channel()

    def _on_session_class(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        index = int(change["new"])
        if index == self.class_select.value:
            return
        self._updating = True
        try:
            if index not in {v for _, v in self.class_select.options}:
                self.class_search.value = ""
                self.class_select.options = self._class_options("")
            self.class_select.value = index
        finally:
            self._updating = False
        self.explain()
