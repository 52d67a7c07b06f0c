"""ImageExplainer: how the network sees one image, as a panel.

Layout and wiring: the image comes from :mod:`.image_source`, the class from a
:class:`~.class_picker.ClassPicker`, the method and its settings from
:mod:`.method_settings` (built from the engine's registry), the heatmap is drawn by
:mod:`.overlay_view`, the top-k by :mod:`.predictions_view`, the feature maps by
:mod:`.feature_maps_view` and the Compare view by :mod:`.compare_view`.  Every
explanation goes through the engine's one door (``attribution_job``); long methods on
large inputs run in the background (:mod:`.runner`) with a progress bar and Stop; the
rest runs in the callback that asked for it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets

from ..engine import (
    SHAPES_CLASS_NAMES,
    Attribution,
    FeatureMaps,
    Job,
    Predictions,
    attribution_job,
    default_cam_layer,
    image_input,
    long_runs_to,
    method_info,
    predict_top,
    spatial_layers,
)
from ..errors import CnnvizError
from .class_picker import ClassPicker, output_dropdown
from .common import Panel, esc, labeled, style_sheet, write_file
from .compare_view import CompareView
from .explainer_background import BackgroundWork
from .feature_maps_view import FeatureMapsView
from .image_source import GRACE_HOPPER, ImageSource, source_name
from .method_settings import AUTO, CMAPS, ExplainSettings, MethodSettings, method_choices
from .overlay_view import OverlayView, colorbar_css, overlay_zoom
from .pictures import png_bytes
from .predictions_view import PredictionsView
from .runner import LARGE_INPUT, RunBar, Runner, long_run_note
from .save_figure import SaveFigure, explainer_figures

__all__ = ["METHODS", "ExplainSettings", "ImageExplainer", "colorbar_css", "overlay_zoom"]

METHODS = method_choices()  # (label, name) of every registered method
TOP_K = 5
LARGE_IMAGE = LARGE_INPUT  # larger: fewer SmoothGrad samples, long methods in the background
SEARCH_FROM = 20  # a class search box when the model has more classes than this
ALIASES = {  # panel attribute -> (part, attribute): the controls, reachable from the panel
    "upload": ("images", "upload"), "sample_select": ("images", "sample_select"),
    "new_image": ("images", "new_image"), "source": ("images", "text"),
    "class_search": ("picker", "search"), "class_select": ("picker", "select"),
    "class_note": ("top", "note"), "use_top": ("top", "use_top"),
    "predictions_html": ("top", "html"), "pixels": ("overlay", "pixels"),
    "caption": ("overlay", "caption"), "legend": ("overlay", "legend"),
    "method": ("settings", "method"), "cam_layer": ("settings", "cam_layer"),
    "smooth_samples": ("settings", "smooth_samples"), "smooth_noise": ("settings", "smooth_noise"),
    "patch": ("settings", "patch"), "stride": ("settings", "stride"),
    "patch_count": ("settings", "patch_count"), "cam_box": ("settings", "cam_box"),
    "smooth_box": ("settings", "smooth_box"), "occlusion_box": ("settings", "occlusion_box"),
    "fm_layer": ("maps", "layer"), "fm_sort": ("maps", "sort"), "fm_pixels": ("maps", "pixels"),
    "channel_pixels": ("maps", "channel_pixels"), "fm_info": ("maps", "info"),
    "fm_detail": ("maps", "detail"), "fm_head": ("maps", "head"),
    "status": ("run_bar", "status"), "progress": ("run_bar", "progress"),
    "stop_button": ("run_bar", "stop_button"),
}  # fmt: skip


class ImageExplainer(BackgroundWork, Panel):
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
    session elsewhere is explained here; the line above the class list says which class
    is explained and, when it is not the top prediction, offers to explain that one.  The
    feature maps are those of ``session.layer`` (the Grad-CAM layer while the session has
    none); a click on a map calls ``session.select(layer, channel)``.

    The methods are those of the engine's registry (:func:`~cnnviz_widgets.method_names`):
    the method dropdown, its tip and the settings shown come from their records.  Long
    methods (occlusion, SmoothGrad, Integrated Gradients, Score-CAM, RISE, ...) run in the
    background when ``background`` says so (default ``None``: for inputs larger than
    128 px): a progress bar, Stop (the picture shown
    stays), and a panel that stays usable; :meth:`wait` waits for them.  Before they start
    the engine estimates their memory and time: a run that will not fit is refused with
    the estimate and the way out in the panel's message area, and one that will take long
    (``cnnviz_widgets.engine.model.budget.WARN_SECONDS``) starts with a note there saying how long.

    Traits:
        attribution: the :class:`~cnnviz_widgets.Attribution` shown, or ``None``.
        predictions: the :class:`~cnnviz_widgets.Predictions` for the image.

    Attributes:
        config: the :class:`ExplainSettings` (traits) the method controls are linked to.
        image: the display image the model sees, ``(H, W, C)`` float32 in ``[0, 1]``
            (after any resizing), or ``None``.
        image_label: where it came from (``"generated ring, seed 4821"``).
        image_notes: what was changed to make it fit the model.
        features: the :class:`~cnnviz_widgets.FeatureMaps` shown, or ``None``.
        pixels: the overlay's :class:`PixelCanvas` (CSS class
            ``cnnviz-explainer-canvas``), zoomed by whole pixels (``pixels.zoom``).
        fm_pixels: the feature-map montage (``cnnviz-featuremap-canvas``);
            ``channel_pixels`` the selected channel over the image.
        upload, sample_select, new_image: the image sources.
        class_search, class_select, method, cam_layer, smooth_samples, smooth_noise,
            patch, stride, opacity, cmap, weighted: the explanation's controls.
        class_note, use_top: which class is explained, and the button that explains the
            top prediction instead.
        fm_layer, fm_sort: the feature maps' layer (it is ``session.layer``) and order.
        status, progress, stop_button: what is computed, how far, and Stop.
        compare: the :class:`~.compare_view.CompareView` (methods side by side with their
            deletion and insertion AUC, and the sanity check).
        busy: ``True`` while an engine call runs.
        background: ``True``/``False`` to force where the long methods run.
    """

    attribution = traitlets.Instance(Attribution, allow_none=True)
    predictions = traitlets.Instance(Predictions, allow_none=True)

    def __init__(self, model_or_session: Any, image: Any = None, **load_kwargs: Any) -> None:
        super().__init__(model_or_session, css_class="cnnviz-image-explainer", **load_kwargs)
        session, loaded = self.session, self.session.loaded
        self._init_state()
        self.title = widgets.HTML(
            f'Explain an image <span class="cnnviz-sub">with {esc(loaded.name)}: what it '
            "predicts, and where in the image the evidence is</span>"
        )
        self.title.add_class("cnnviz-title")
        self.images = ImageSource(self._input_shape, self._on_image, self.guarded)
        self.picker = ClassPicker(
            session, multiple=False, on_pick=self._on_class_pick, guarded=self.guarded,
            messages=self.messages, search_from=SEARCH_FROM, width="340px",
        )  # fmt: skip
        self.picker.search.add_class("cnnviz-ex-class-search")
        self.picker.select.add_class("cnnviz-ex-class")
        self.output_select = output_dropdown(session, "340px")
        self.top = PredictionsView(self.picker.name)
        self.overlay = OverlayView()
        self.settings = MethodSettings(self.config, self._layer_options())
        self.cmap = labeled(widgets.Dropdown, "colours", "180px", "64px", options=CMAPS)
        self.opacity = labeled(
            widgets.FloatSlider, "opacity", "340px", "64px", min=0.0, max=1.0, step=0.05,
            readout_format=".2f",
        )  # fmt: skip
        self.opacity.add_class("cnnviz-ex-opacity")
        self.weighted = widgets.Checkbox(
            description="fade cold regions", indent=False, layout=widgets.Layout(width="150px"),
            tooltip="scale the opacity by the heat, so unimportant regions show the image",
        )  # fmt: skip
        for name in ("opacity", "cmap", "weighted"):
            widgets.link((self.config, name), (getattr(self, name), "value"))
        self.maps = FeatureMapsView(session, self._cam_default, self.guarded, self.cmap)
        self.run_bar = RunBar(progress_width="160px", hide_idle=True)
        self.run_bar.status.value = ""
        self.runner = Runner("cnnviz-image-explainer", self.messages, self.run_bar, self._lock)
        self.runner.redraw_interval = 0.2
        self.compare = CompareView(self._compare_context, self.messages, self._lock)
        self.children = self._layout()
        self._wire()
        self._first_image(image)

    def __getattr__(self, name: str) -> Any:
        """The parts' controls as the panel's attributes (``panel.method``, ...)."""
        if name in ALIASES:
            part, attr = ALIASES[name]
            return getattr(
                self.__dict__[part] if part in self.__dict__ else getattr(self, part), attr
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _init_state(self) -> None:
        loaded = self.session.loaded
        self.image: np.ndarray | None = None
        self.image_label = ""
        self.image_notes: list[str] = []
        self.busy = False
        self.background: bool | None = None
        self._quiet = False  # the occlusion defaults of a new image are being set
        self._writing = False  # this panel is writing session.class_index
        self._caveats = ""  # the note of the last explanation's caveats, while shown
        self._long_run = ""  # the engine's long-run note for the explanation computed
        self._pending = False  # a new explanation was asked for while one was running
        self._job = ""  # what the runner runs: "image" (a new image) or "explain"
        self._pending_maps = False  # the session's layer changed during an image job
        self._lock = threading.RLock()
        try:
            self._input_shape = image_input(loaded.model)
        except CnnvizError:
            self._input_shape = (None, None, 3)
        try:
            self._cam_default: str | None = default_cam_layer(loaded)
        except CnnvizError:
            self._cam_default = None
        large = max(self._input_shape[0] or 0, self._input_shape[1] or 0) > LARGE_IMAGE
        self.config = ExplainSettings(
            method="grad_cam" if self._cam_default is not None else "saliency",
            samples=10 if large else 25,
        )

    def _layer_options(self) -> list[tuple[str, str]]:
        auto = f"auto: {self._cam_default} (the last conv layer)"
        options = [(auto, AUTO)] * bool(self._cam_default) + [
            (self._spatial_label(path), path) for path in spatial_layers(self.session.loaded)
        ]
        return options or [("auto (this model has no spatial layer)", AUTO)]

    def _layout(self) -> list[widgets.Widget]:
        side = widgets.VBox(
            [
                self.output_select,
                widgets.HTML('<div class="cnnviz-section">Top 5 predictions</div>'),
                self.top.html,
                self.top.unlike,
                widgets.HTML('<div class="cnnviz-section">Explain</div>'),
                self.top.note,
                self.top.use_top,
                self.picker.search,
                self.picker.select,
                self.settings.box,
                self.opacity,
                widgets.HBox([self.cmap, self.weighted], layout=widgets.Layout(grid_gap="8px")),
                self.run_bar,
            ]
        )
        side.add_class("cnnviz-ex-side")
        side.add_class("cnnviz-ex-column")
        body = widgets.HBox(
            [self.overlay.box, side],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="14px"),
        )
        return [
            style_sheet(),
            style_sheet("image_explainer"),
            self.title,
            self.images.box,
            self.images.text,
            self.messages,
            body,
            SaveFigure(explainer_figures(self), "explanation.pdf"),
            self.compare.box,
            *self.maps.children,
        ]

    def _wire(self) -> None:
        explain = self.guarded(self._on_method_control)
        names = ["method", "cam_layer", "samples", "noise", "patch", "stride", "params"]
        self.config.observe(explain, names=names)
        self.config.observe(self.guarded(self._on_style), names=["opacity", "cmap", "weighted"])
        self.top.use_top.on_click(self.guarded(lambda _: self.explain_top()))
        self.maps.sort.observe(self.guarded(lambda _: self.render_features()), names="value")
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(lambda _: self.maps.on_session_channel(), names=["channel"])
        self.observe_session(self._on_session_class, names=["class_index"])
        self.output_select.observe(self.guarded(self._on_output_pick), names="value")
        self.observe_session(self._on_session_output, names=["output"])
        self.maps.sync_layer()

    def _first_image(self, image: Any) -> None:
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
        self.images.set(image, name if name is not None else source_name(image))

    def new_shapes_image(self, seed: int | None = None) -> int:
        """Show a generated shapes image (random class) for ``seed`` (default: a random
        seed); returns the seed."""
        return self.images.new_shapes_image(seed)

    def explain(self) -> Attribution | None:
        """Recompute the heatmap for the current image, class and method and draw it.

        Long methods may go to the background (see ``background``): then this returns
        ``None`` at once and :meth:`wait` waits for the result."""
        if self.image is None:
            return None
        if self.runner.running:  # this one runs when the job ends (an explanation stops)
            self._pending = True
            if self._job == "explain":
                self.runner.stop()
            return None
        method = self.config.method
        if method_info(method).long and self._in_background():
            return self._explain_in_background(method, self.class_select.value)
        return self._explain_now()

    def _explain_now(self) -> Attribution:
        method, target = self.config.method, self.class_select.value
        self.attribution = None
        self._working(f"working… {esc(self.settings.what(method))}")
        start = time.perf_counter()
        try:
            result = self._compute(method, target)
        except Exception:
            self.overlay.show_plain(self.image)
            self.status.value = ""
            raise
        finally:
            self.busy = False
            self.status.remove_class("cnnviz-working")
        self._show_result(result, time.perf_counter() - start)
        return result

    def explain_top(self) -> None:
        """Explain the top prediction (and make it the session's class)."""
        if self.predictions is not None:
            self.class_select.value = self.predictions.class_index

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background explanation (and a comparison) to end; ``True`` if none
        is going."""
        return self.runner.wait(timeout) and self.compare.wait(timeout)

    def stop(self) -> None:
        """Stop a background explanation after its current batch (the picture stays)."""
        self.runner.stop()

    def draw_overlay(self) -> np.ndarray | None:
        """Draw the current heatmap over the image (opacity, colours); returns the RGBA
        image drawn (before zoom)."""
        result = self.attribution
        if result is None:
            self.overlay.show_plain(self.image)
            return None
        c = self.config
        return self.overlay.show(result, c.cmap, c.opacity, c.weighted)

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
        return write_file(png_bytes(self.pixels.sent), path)

    def close(self) -> None:
        """Stop the background work, then close the panel."""
        for part in ("runner", "compare"):
            if part in self.__dict__:
                self.__dict__[part].close()
        super().close()

    # --- images -----------------------------------------------------------------------

    def _default_image(self) -> None:
        is_shapes = list(self.session.loaded.class_names or []) == list(SHAPES_CLASS_NAMES)
        self.sample_select.value = SHAPES_CLASS_NAMES[0] if is_shapes else GRACE_HOPPER

    def _on_image(self, image: np.ndarray, label: str, notes: list[str]) -> None:
        if self.runner.running:
            self._pending = False
            self.runner.stop()
            self.runner.wait(60)  # ends after its current batch
        self.image, self.image_label, self.image_notes = image, label, notes
        self.attribution = self.predictions = None
        self._reset_occlusion(image.shape)
        self.messages.clear()
        self._caveats = ""
        if notes:
            self.messages.show_note(
                "The image was adjusted to fit the model: " + "; ".join(esc(n) for n in notes)
            )
        self.overlay.show_plain(image)
        steps = (self._predict, self._explain_now, self.render_features)
        if self._in_background():
            self._image_in_background(steps)
            return
        errors = self._run_steps(steps)
        if errors:
            self.messages.show_error(errors[0])

    def _predict(self) -> None:
        self.predictions = None
        self.top.show(None, None)
        k = min(TOP_K, self.session.n_classes or TOP_K)
        self.predictions = predict_top(self.session.scored, self.image, k=k)
        self.picker.set([self.predictions.class_index])  # not written to the session
        self._show_predictions()

    def _reset_occlusion(self, shape: tuple[int, ...]) -> None:
        self._quiet = True
        try:
            self.settings.reset_occlusion(shape)
        finally:
            self._quiet = False
        self.settings.update_patch_count()

    # --- explanation ------------------------------------------------------------------

    def _in_background(self) -> bool:
        """Long work goes to the background: ``background``, or by default on images
        larger than ``LARGE_IMAGE`` pixels."""
        if self.background is not None:
            return bool(self.background)
        return max(self.image.shape[:2]) > LARGE_IMAGE

    def _attribution_job(self, method: str, target: int | None, stoppable: bool) -> Job:
        """The engine's explanation as a job; a long-run estimate becomes a note in the
        panel."""
        self._long_run = ""
        with long_runs_to(lambda text: self._on_long_run(text, stoppable)):
            return attribution_job(
                self.session.scored, self.image, method, target, **self.config.values(method)
            )

    def _compute(self, method: str, target: int | None) -> Attribution:
        """The explanation, computed here (a quick method, or a small image)."""
        return self._attribution_job(method, target, stoppable=False).run()

    def _on_long_run(self, text: str, stoppable: bool) -> None:
        self._long_run = long_run_note(text, stoppable)
        self.messages.show_note(self._long_run)  # while it runs; kept with its result
        self._caveats = self.messages.value

    def _after_background(self) -> None:
        if self._pending_maps:
            self._pending_maps = False
            self.guarded(self.render_features)()
        if self._pending:
            self._pending = False
            self.guarded(self.explain)()

    def _show_result(self, result: Attribution, seconds: float) -> None:
        self.attribution = result
        self.draw_overlay()
        label = method_info(result.method).label
        self.status.value = f"{esc(label)} computed in {seconds * 1000:.0f} ms"
        self._show_predictions()
        caveats = [esc(n) for n in result.notes if n not in self.image_notes]
        if self._long_run:  # this explanation's estimate stays with it
            caveats.insert(0, self._long_run)
            self._long_run = ""
        if self._caveats and self.messages.value == self._caveats:
            self.messages.clear()  # the previous explanation's caveats do not apply
        self._caveats = ""
        if caveats:
            self.messages.show_note("<br>".join(caveats))
            self._caveats = self.messages.value

    def _working(self, text: str) -> None:
        self.busy = True
        self.status.add_class("cnnviz-working")
        self.status.value = text

    def _show_predictions(self) -> None:
        self.top.show(self.predictions, self.class_select.value)

    def _spatial_label(self, path: str) -> str:
        shape = self.session.table.row(path).output_shape
        return f"{path} · " + "×".join(str(d) for d in shape[1:])

    def _compare_context(self) -> tuple:
        return self.session.scored, self.image, self.class_select.value, self.config.values

    # --- callbacks --------------------------------------------------------------------

    def _on_class_pick(self, picked: list[int], added: list[int]) -> None:
        index = picked[0]
        if self.session.class_index != index:
            self._write_class(index)
        self.explain()

    def _write_class(self, index: int) -> None:
        self._writing = True
        try:
            self.session.class_index = index
        finally:
            self._writing = False

    def _on_method_control(self, change: dict) -> None:
        if self._quiet:
            return
        self.explain()

    def _on_style(self, change: dict) -> None:
        if self.runner.running and self.attribution is None:
            return  # the plain image stays until the heatmap is ready
        self.draw_overlay()
        if change["name"] == "cmap" and self.features is not None:
            self.maps.show_channel()

    def _on_session_layer(self, change: dict) -> None:
        self.maps.sync_layer()
        if self.runner.running and self._job == "image":
            self._pending_maps = True  # drawn when the new image's job ends
            return
        self.render_features()

    def _on_output_pick(self, change: dict) -> None:
        if change["new"] is not None and change["new"] != self.session.output:
            self.session.output = change["new"]  # the session's observer redoes the work

    def _on_session_output(self, change: dict) -> None:
        """Another output to explain: its classes in the list, the image predicted and
        explained again."""
        if self.output_select.value != change["new"]:
            self.output_select.value = change["new"]
        self.picker.reload(self.session)
        if self.image is not None:
            self._on_image(self.image, self.image_label, self.image_notes)

    def _on_session_class(self, change: dict) -> None:
        if self._writing or change["new"] is None:
            return
        index = int(change["new"])
        if index == self.class_select.value:
            return
        self.picker.set([index])
        self.explain()
