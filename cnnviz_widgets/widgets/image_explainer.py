"""ImageExplainer: how the network sees one image, as a panel.

Layout and wiring: the image comes from :mod:`.image_source`, the class from a
:class:`~.class_picker.ClassPicker`, the heatmap is drawn by :mod:`.overlay_view` and the
feature maps by :mod:`.feature_maps_view`.  Occlusion and SmoothGrad on large inputs run
in the background (:mod:`.runner`) with a progress bar and Stop; the rest runs in the
callback that asked for it.
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
    Predictions,
    default_cam_layer,
    grad_cam,
    occlusion,
    occlusion_grid,
    predict_top,
    saliency,
    spatial_layers,
)
from ..engine.model.budget import long_runs_to
from ..engine.model.internals import image_input
from ..errors import CnnvizError
from .class_picker import ClassPicker
from .common import Panel, esc, labeled, row, style_sheet, write_file
from .feature_maps_view import FeatureMapsView
from .image_source import GRACE_HOPPER, ImageSource, source_name
from .overlay_view import METHOD_NAMES, OverlayView, colorbar_css, overlay_zoom, percent
from .pictures import png_bytes
from .runner import LARGE_INPUT, RunBar, Runner, Stopped, duration, long_run_note

__all__ = ["METHODS", "ExplainSettings", "ImageExplainer", "colorbar_css", "overlay_zoom"]

METHODS = [(label, key) for key, label in METHOD_NAMES.items()]
METHOD_TIPS = [
    "class-weighted sum of a conv layer's channels (Selvaraju et al. 2017)",
    "Grad-CAM with higher-order channel weights (Chattopadhay et al. 2018)",
    "gradient of the class score with respect to the pixels (Simonyan et al. 2014)",
    "saliency averaged over noisy copies of the image (Smilkov et al. 2017)",
    "score drop when a patch is hidden (Zeiler and Fergus 2014)",
]
CMAPS = ["jet", "turbo", "inferno", "viridis", "magma", "hot"]
TOP_K = 5
LARGE_IMAGE = LARGE_INPUT  # larger: fewer SmoothGrad samples, long methods in the background
SEARCH_FROM = 20  # a class search box when the model has more classes than this
AUTO = ""  # the Grad-CAM layer option "automatic" (a Dropdown shows no value for None)
LONG_METHODS = ("occlusion", "smoothgrad")


class ExplainSettings(traitlets.HasTraits):
    """What the explainer computes and how it draws it; the controls are linked to these
    traits (the engine checks the values when it computes)."""

    method = traitlets.Unicode("grad_cam")
    cam_layer = traitlets.Unicode(AUTO)
    samples = traitlets.Int(25)
    noise = traitlets.Float(0.15)
    patch = traitlets.Int(8)
    stride = traitlets.Int(4)
    opacity = traitlets.Float(0.5)
    cmap = traitlets.Unicode("jet")
    weighted = traitlets.Bool(False)

    @traitlets.validate("method")
    def _known_method(self, proposal: Any) -> str:
        if proposal["value"] not in METHOD_NAMES:
            raise CnnvizError(
                f"unknown method {proposal['value']!r}: use one of {', '.join(METHOD_NAMES)}"
            )
        return proposal["value"]


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
    session elsewhere is explained here; the line above the class list says which class
    is explained and, when it is not the top prediction, offers to explain that one.  The
    feature maps are those of ``session.layer`` (the Grad-CAM layer while the session has
    none); a click on a map calls ``session.select(layer, channel)``.

    Occlusion and SmoothGrad run in the background when ``background`` says so (default
    ``None``: for inputs larger than 128 px): a progress bar, Stop (the picture shown
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
        busy: ``True`` while an engine call runs.
        background: ``True``/``False`` to force where occlusion and SmoothGrad run.
    """

    attribution = traitlets.Instance(Attribution, allow_none=True)
    predictions = traitlets.Instance(Predictions, allow_none=True)

    def __init__(self, model_or_session: Any, image: Any = None, **load_kwargs: Any) -> None:
        super().__init__(model_or_session, css_class="cnnviz-image-explainer", **load_kwargs)
        session = self.session
        loaded = session.loaded
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
            input_shape = image_input(loaded.model)
        except CnnvizError:
            input_shape = (None, None, 3)
        try:
            self._cam_default: str | None = default_cam_layer(loaded)
        except CnnvizError:
            self._cam_default = None
        large = max(input_shape[0] or 0, input_shape[1] or 0) > LARGE_IMAGE
        self.config = ExplainSettings(
            method="grad_cam" if self._cam_default is not None else "saliency",
            samples=10 if large else 25,
        )

        # --- parts ---------------------------------------------------------------------
        self.title = widgets.HTML(
            f'Explain an image <span class="cnnviz-sub">with {esc(loaded.name)}: what it '
            "predicts, and where in the image the evidence is</span>"
        )
        self.title.add_class("cnnviz-title")
        self.images = ImageSource(input_shape, self._on_image, self.guarded)
        self.upload, self.sample_select = self.images.upload, self.images.sample_select
        self.new_image, self.source = self.images.new_image, self.images.text
        self.picker = ClassPicker(
            session,
            multiple=False,
            on_pick=self._on_class_pick,
            guarded=self.guarded,
            messages=self.messages,
            search_from=SEARCH_FROM,
            width="340px",
        )
        self.class_search, self.class_select = self.picker.search, self.picker.select
        self.class_search.add_class("cnnviz-ex-class-search")
        self.class_select.add_class("cnnviz-ex-class")
        self.class_note = widgets.HTML()
        self.class_note.add_class("cnnviz-ex-class-note")
        self.use_top = widgets.Button(
            description="explain the top prediction",
            tooltip="explain the class the model predicts for this image",
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.use_top.add_class("cnnviz-ex-use-top")
        self.predictions_html = widgets.HTML()
        self.overlay = OverlayView()
        self.pixels, self.caption = self.overlay.pixels, self.overlay.caption
        self.legend = self.overlay.legend
        self.cmap = labeled(widgets.Dropdown, "colours", "180px", "64px", options=CMAPS)
        self.maps = FeatureMapsView(session, self._cam_default, self.guarded, self.cmap)
        self.fm_layer, self.fm_sort = self.maps.layer, self.maps.sort
        self.fm_pixels, self.channel_pixels = self.maps.pixels, self.maps.channel_pixels
        self.fm_info, self.fm_detail, self.fm_head = (
            self.maps.info,
            self.maps.detail,
            self.maps.head,
        )
        self.run_bar = RunBar(progress_width="160px", hide_idle=True)
        self.status, self.progress = self.run_bar.status, self.run_bar.progress
        self.stop_button = self.run_bar.stop_button
        self.status.value = ""
        self.runner = Runner("cnnviz-image-explainer", self.messages, self.run_bar, self._lock)
        self.runner.redraw_interval = 0.2

        # --- method controls: linked to self.config -----------------------------------
        self.method = widgets.ToggleButtons(
            options=METHODS, tooltips=METHOD_TIPS, style={"button_width": "108px"}
        )
        self.method.add_class("cnnviz-ex-methods")
        cam_options = [(f"auto: {self._cam_default} (the last conv layer)", AUTO)] * bool(
            self._cam_default
        ) + [(self._spatial_label(path), path) for path in spatial_layers(loaded)]
        w, slider, number = "64px", widgets.FloatSlider, widgets.BoundedIntText
        no_layer = [("auto (this model has no spatial layer)", AUTO)]
        self.cam_layer = labeled(
            widgets.Dropdown, "Layer", "340px", w, options=cam_options or no_layer
        )
        self.cam_layer.add_class("cnnviz-ex-cam-layer")
        self.smooth_samples = labeled(
            widgets.IntSlider, "samples", "340px", w, min=5, max=100, step=5,
            continuous_update=False,
        )  # fmt: skip
        self.smooth_noise = labeled(
            slider, "noise", "340px", w, min=0.0, max=0.5, step=0.05, continuous_update=False
        )
        self.patch = labeled(
            number, "patch", "150px", w, min=1, max=4096,
            tooltip="side of the hidden patch, in pixels",
        )  # fmt: skip
        self.stride = labeled(
            number, "stride", "130px", "50px", min=1, max=4096,
            tooltip="step between patches, in pixels",
        )  # fmt: skip
        self.patch_count = widgets.HTML()
        self.patch_count.add_class("cnnviz-muted")
        self.opacity = labeled(
            slider, "opacity", "340px", w, min=0.0, max=1.0, step=0.05, readout_format=".2f"
        )
        self.opacity.add_class("cnnviz-ex-opacity")
        self.weighted = widgets.Checkbox(
            description="fade cold regions",
            indent=False,
            tooltip="scale the opacity by the heat, so unimportant regions show the image",
            layout=widgets.Layout(width="150px"),
        )
        for name, control in (
            ("method", self.method), ("cam_layer", self.cam_layer),
            ("samples", self.smooth_samples), ("noise", self.smooth_noise),
            ("patch", self.patch), ("stride", self.stride), ("opacity", self.opacity),
            ("cmap", self.cmap), ("weighted", self.weighted),
        ):  # fmt: skip
            widgets.link((self.config, name), (control, "value"))

        # --- layout ------------------------------------------------------------------
        self.cam_box = widgets.VBox([self.cam_layer])
        self.smooth_box = widgets.VBox([self.smooth_samples, self.smooth_noise])
        self.occlusion_box = row(self.patch, self.stride, self.patch_count)
        side = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Top 5 predictions</div>'),
                self.predictions_html,
                widgets.HTML('<div class="cnnviz-section">Explain</div>'),
                self.class_note,
                self.use_top,
                self.class_search,
                self.class_select,
                self.method,
                self.cam_box,
                self.smooth_box,
                self.occlusion_box,
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
        self.children = [
            style_sheet(),
            style_sheet("image_explainer"),
            self.title,
            self.images.box,
            self.source,
            self.messages,
            body,
            *self.maps.children,
        ]

        # --- wiring ------------------------------------------------------------------
        explain = self.guarded(self._on_method_control)
        self.config.observe(
            explain, names=["method", "cam_layer", "samples", "noise", "patch", "stride"]
        )
        self.config.observe(self.guarded(self._on_style), names=["opacity", "cmap", "weighted"])
        self.use_top.on_click(self.guarded(lambda _: self.explain_top()))
        self.fm_sort.observe(self.guarded(lambda _: self.render_features()), names="value")
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(lambda _: self.maps.on_session_channel(), names=["channel"])
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
        self.images.set(image, name if name is not None else source_name(image))

    def new_shapes_image(self, seed: int | None = None) -> int:
        """Show a generated shapes image (random class) for ``seed`` (default: a random
        seed); returns the seed."""
        return self.images.new_shapes_image(seed)

    def explain(self) -> Attribution | None:
        """Recompute the heatmap for the current image, class and method and draw it.

        Occlusion and SmoothGrad may go to the background (see ``background``): then
        this returns ``None`` at once and :meth:`wait` waits for the result."""
        if self.image is None:
            return None
        if self.runner.running:  # this one runs when the job ends (an explanation stops)
            self._pending = True
            if self._job == "explain":
                self.runner.stop()
            return None
        method = self.config.method
        if method in LONG_METHODS and self._in_background():
            return self._explain_in_background(method, self.class_select.value)
        return self._explain_now()

    def _explain_now(self) -> Attribution:
        method, target = self.config.method, self.class_select.value
        self.attribution = None
        self._working(f"working… {esc(self._what(method))}")
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

    def _what(self, method: str) -> str:
        what = METHOD_NAMES[method]
        if method == "occlusion":
            what += f" ({self._patches()} patches)"
        elif method == "smoothgrad":
            what += f" ({int(self.config.samples)} noisy copies)"
        return what

    def explain_top(self) -> None:
        """Explain the top prediction (and make it the session's class)."""
        if self.predictions is not None:
            self.class_select.value = self.predictions.class_index

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background explanation to end; ``True`` if none is going."""
        return self.runner.wait(timeout)

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
        """Stop a background explanation, then close the panel."""
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
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

    @staticmethod
    def _run_steps(steps: Any, task: Any = None) -> list[BaseException]:
        """Each step on its own: a method that fails leaves the others shown."""
        errors: list[BaseException] = []
        for k, step in enumerate(steps):
            if task is not None:
                task.offer((k, len(steps)), k)
            try:
                step()
            except Exception as err:
                errors.append(err)
            if task is not None:
                task.check()
        return errors

    def _image_in_background(self, steps: Any) -> None:
        """A new image on a large model: predictions, heatmap and feature maps in the
        background (the first image also compiles the model's functions)."""
        self.busy = True
        self.run_bar.start(len(steps), "working… predictions, heatmap, feature maps")
        start = time.perf_counter()

        def paint(item: tuple[int, int], rate: float, text: bool) -> None:
            done, total = item
            what = ("predictions", "heatmap", "feature maps")[min(done, 2)]
            self.progress.value = done
            seconds = duration(time.perf_counter() - start)
            self.status.value = f"working… {what} ({done + 1} of {total}) · {seconds}"

        def finish(errors: list[BaseException] | None, error: BaseException | None) -> None:
            self.busy = False
            if isinstance(error, Stopped):
                self.run_bar.end(self.progress.value, "warning", "stopped")
                return
            errors = [*(errors or []), *([error] if error is not None else [])]
            if errors:
                self.messages.show_error(errors[0])
            text = self.status.value if self.attribution is not None else ""
            self.run_bar.end(len(steps), "danger" if errors else "success", text)

        self._job = "image"
        self.runner.start(
            lambda task: self._run_steps(steps, task),
            paint=paint,
            finish=finish,
            after=self._after_background,
        )

    def _predict(self) -> None:
        self.predictions = None
        self.predictions_html.value = ""
        k = min(TOP_K, self.session.n_classes or TOP_K)
        self.predictions = predict_top(self.session.loaded, self.image, k=k)
        self.picker.set([self.predictions.class_index])  # not written to the session
        self._show_predictions()

    def _reset_occlusion(self, shape: tuple[int, ...]) -> None:
        patch, stride, _ = occlusion_grid(shape[0], shape[1])  # the engine's defaults
        self._quiet = True
        try:
            self.patch.max = self.stride.max = max(shape[0], shape[1])
            self.config.patch, self.config.stride = patch, stride
        finally:
            self._quiet = False
        self._update_patch_count()

    def _patches(self) -> int:
        h, w = self.image.shape[:2]
        return occlusion_grid(h, w, self.config.patch, self.config.stride)[2]

    def _update_patch_count(self) -> None:
        try:
            n = self._patches() if self.image is not None else None
        except CnnvizError:
            n = None
        self.patch_count.value = "" if n is None else f"→ {n} patches, one forward pass each"

    # --- explanation ------------------------------------------------------------------

    def _in_background(self) -> bool:
        """Long work goes to the background: ``background``, or by default on images
        larger than ``LARGE_IMAGE`` pixels."""
        if self.background is not None:
            return bool(self.background)
        return max(self.image.shape[:2]) > LARGE_IMAGE

    def _compute(self, method: str, target: int | None, progress: Any = None) -> Attribution:
        """The engine's explanation; a long-run estimate becomes a note in the panel."""
        self._long_run = ""
        with long_runs_to(lambda text: self._on_long_run(text, progress is not None)):
            return self._engine_call(method, target, progress)

    def _on_long_run(self, text: str, stoppable: bool) -> None:
        self._long_run = long_run_note(text, stoppable)
        self.messages.show_note(self._long_run)  # while it runs; kept with its result
        self._caveats = self.messages.value

    def _engine_call(self, method: str, target: int | None, progress: Any) -> Attribution:
        loaded, image, c = self.session.loaded, self.image, self.config
        if method in ("grad_cam", "grad_cam++"):
            layer = c.cam_layer or None
            return grad_cam(loaded, image, target, layer=layer, plus_plus=method == "grad_cam++")
        if method == "saliency":
            return saliency(loaded, image, target)
        if method == "smoothgrad":
            return saliency(
                loaded, image, target, smooth=c.samples, noise=c.noise, progress=progress
            )
        if method == "occlusion":
            return occlusion(
                loaded, image, target, patch=c.patch, stride=c.stride, progress=progress
            )
        raise CnnvizError(f"unknown method {method!r}: use one of {', '.join(METHOD_NAMES)}")

    def _explain_in_background(self, method: str, target: int | None) -> None:
        image = self.image
        total = self._patches() if method == "occlusion" else int(self.config.samples)
        unit, units = ("patch", "patches") if method == "occlusion" else ("sample", "samples")
        self.busy = True
        self.run_bar.start(total, f"working… {esc(self._what(method))}")
        start = time.perf_counter()

        def paint(item: tuple[int, int], rate: float, text: bool) -> None:
            done, total = item
            self.run_bar.show_step(done, total, rate, time.perf_counter() - start, unit, units)

        def finish(result: Attribution | None, error: BaseException | None) -> None:
            self.busy = False
            if isinstance(error, Stopped) or self.image is not image:
                shown = "the picture shown is the previous one"
                self.run_bar.end(self.progress.value, "warning", f"stopped; {shown}")
            elif error is not None:
                self.run_bar.end(self.progress.value, "danger", "failed: see the message")
                self.attribution = None
                self.overlay.show_plain(self.image)
                self.messages.show_error(error)
            else:
                self.run_bar.end(total, "success", "")
                self._show_result(result, time.perf_counter() - start)

        self._job = "explain"
        self.runner.start(
            lambda task: self._compute(method, target, progress=task.progress),
            paint=paint,
            finish=finish,
            after=self._after_background,
        )
        return None

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
        self.status.value = (
            f"{esc(METHOD_NAMES[result.method])} computed in {seconds * 1000:.0f} ms"
        )
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
        p = self.predictions
        if p is None:
            self.predictions_html.value = self.class_note.value = ""
            self.use_top.layout.display = "none"
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
                f'<td class="cnnviz-top-p">{percent(prob)}</td></tr>'
            )
        self.predictions_html.value = f'<table class="cnnviz-top">{"".join(rows)}</table>'
        top, top_p = p.class_index, float(p.probabilities[0])
        top_name = esc(self.picker.name(top))
        if picked is None or picked == top:
            self.class_note.value = (
                f"Explaining <b>{top_name}</b>, the top prediction ({percent(top_p)})."
            )
            self.use_top.layout.display = "none"
        else:
            self.class_note.value = (
                f'<span class="cnnviz-ex-other-class">Explaining <b>'
                f"{esc(self.picker.name(picked))}</b> (the class picked in the session), not "
                f"the top prediction <b>{top_name}</b> ({percent(top_p)}).</span>"
            )
            self.use_top.layout.display = None

    def _update_method_controls(self) -> None:
        method = self.config.method
        self.cam_box.layout.display = None if method.startswith("grad_cam") else "none"
        self.smooth_box.layout.display = None if method == "smoothgrad" else "none"
        self.occlusion_box.layout.display = None if method == "occlusion" else "none"

    def _spatial_label(self, path: str) -> str:
        shape = self.session.table.row(path).output_shape
        return f"{path} · " + "×".join(str(d) for d in shape[1:])

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
        self._update_method_controls()
        self._update_patch_count()
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

    def _on_session_class(self, change: dict) -> None:
        if self._writing or change["new"] is None:
            return
        index = int(change["new"])
        if index == self.class_select.value:
            return
        self.picker.set([index])
        self.explain()
