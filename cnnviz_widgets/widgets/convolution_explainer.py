"""ConvolutionExplainer: click one value of a feature map and see how the convolution made it.

The panel shows a convolution layer's map of one channel for one image.  A click on the
map picks a position; the panel then shows the input patch the kernel saw (outlined on the
image as the unit's receptive field, and on the layer's input map for deeper layers), the
kernel, the element-wise products as coloured grids, and the arithmetic as one line
("sum 3.41 + bias −0.20 = 3.21 → relu → 3.21").  The numbers come from
:func:`cnnviz_widgets.convolution_at`; the layer's input and output are read once per
image and layer, so a click costs no model pass.  On large inputs that read (a pass
through the model, which also compiles it for a new layer) runs in the background
(:mod:`.runner`) with a progress bar and Stop, so the panel, and ``explore``, come back
at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..engine import (
    SHAPES_CLASS_NAMES,
    ConvolutionTrace,
    Job,
    ReceptiveField,
    conv_layer_paths,
    image_input,
    inbound_paths,
    layer_input_output,
    receptive_field,
    trace_from_maps,
)
from ..errors import CnnvizError
from .common import Panel, esc, labeled, row, style_sheet
from .convolution_parts import (  # noqa: F401  (re-exported: the panel's helpers)
    NUMBERS_UP_TO,
    STRONGEST,
    SUM,
    ConvolutionNumbers,
    ConvolutionPictures,
    canvas_zoom,
    grid_html,
    scaled_map,
)
from .image_source import GRACE_HOPPER, ImageSource, source_name
from .runner import LARGE_INPUT, RunBar, Runner, duration


class ConvolutionExplainer(Panel):
    """How a convolution computes: click a feature-map value, see its patch, kernel,
    products and sum.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model (name,
            path, ``keras.Model``, ``LoadedModel``).
        image: the first image (an array ``(H, W, 3)`` in ``[0, 1]`` or uint8, a path, the
            bytes of an image file).  Default: a generated circle for the embedded model,
            matplotlib's photo of Grace Hopper for other models.
        layer: the first layer (default: the session's layer if it is a convolution, else
            the model's first convolution).
        channel: the first output channel (default: the session's channel, else 0).
        **load_kwargs: passed to ``load_model`` when a model is given.

    Picking a layer or a channel here sets ``session.layer`` / ``session.channel``; a
    convolution layer or a channel selected elsewhere is followed.  Clicking the feature
    map (or :meth:`select`) picks the position explained.

    Images come from the **Upload** button, the **Sample** dropdown (one generated image
    per shapes class and matplotlib's Grace Hopper photo), **New shapes image** or
    :meth:`set_image`; an image that does not fit the model is resized or converted, with
    a note.

    A new image or layer is one pass through the model.  When ``background`` says so
    (default ``None``: for inputs larger than 128 px) that pass runs in the background
    with a progress bar and Stop, and clicks wait for it; :meth:`wait` waits for it.  Stop
    keeps the picture shown, and the next image or layer picked is read again.

    Attributes:
        image: the display image the model sees, ``(H, W, C)`` float32, or ``None``.
        image_label: where it came from (``"generated circle, seed 0"``).
        trace: the :class:`~cnnviz_widgets.ConvolutionTrace` shown, or ``None``.
        field: the unit's :class:`~cnnviz_widgets.ReceptiveField` in the image, or
            ``None`` when it cannot be followed (the caption says why).
        position: ``(y, x)`` explained in the layer's output map.
        layer, channel, input_channel: the controls (the input-channel view shows the
            channel that contributes most, one chosen channel, or the sum over channels).
        images: the image sources (:class:`~.image_source.ImageSource`); ``upload``,
            ``sample_select``, ``new_image`` its controls, ``source`` its line.
        image_pixels, map_pixels, input_pixels: the canvases (CSS classes
            ``cnnviz-conv-image``, ``cnnviz-conv-map``, ``cnnviz-conv-input``).
        arithmetic: the arithmetic line; grids: the patch, kernel and products.
        run_bar, runner: the background pass's progress bar, Stop and status.
        background: ``True``/``False`` to force where the model passes run.
    """

    def __init__(
        self,
        model_or_session: Any,
        image: Any = None,
        *,
        layer: Any = None,
        channel: int | None = None,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-conv-explainer", **load_kwargs)
        loaded = self.session.loaded
        self.image: np.ndarray | None = None
        self.image_label = ""
        self.trace: ConvolutionTrace | None = None
        self.field: ReceptiveField | None = None
        self.position: tuple[int, int] | None = None
        self.picked = False  # the position was clicked (else: the strongest value)
        self.background: bool | None = None
        self._maps: tuple[np.ndarray, np.ndarray] | None = None  # layer input, output
        self._pending = False  # a new image or layer came while a pass was running
        self._updating = False
        self._lock = threading.RLock()  # the maps and the drawing, across threads
        self._convs = conv_layer_paths(loaded)
        self._is_shapes = list(loaded.class_names or []) == list(SHAPES_CLASS_NAMES)
        self.title = widgets.HTML(
            f'How a convolution computes <span class="cnnviz-sub">in {esc(loaded.name)}: click '
            "a value of the feature map to see the patch, the kernel and the sum that made "
            "it</span>"
        )
        self.title.add_class("cnnviz-title")
        self._image_controls()
        self._selection_controls()
        self.run_bar = RunBar(progress_width="160px", hide_idle=True)
        self.status = self.run_bar.status
        self.status.value = ""
        self.runner = Runner("cnnviz-conv-explainer", self.messages, self.run_bar, self._lock)
        self.pictures, self.numbers = ConvolutionPictures(), ConvolutionNumbers()
        for name in ("image_pixels", "map_pixels", "input_pixels", "input_column"):
            setattr(self, name, getattr(self.pictures, name))
        self.arithmetic, self.grids = self.numbers.arithmetic, self.numbers.grids
        self.sums = self.numbers.sums
        self.children = [
            style_sheet(),
            style_sheet("convolution_explainer"),
            self.title,
            self.images.box,
            self.source,
            row(self.layer, self.channel, self.input_channel),
            self.run_bar,
            self.messages,
            self.pictures.box,
            self.numbers.box,
        ]
        self.map_pixels.canvas.on_mouse_down(self.guarded(self._on_click))
        self.observe_session(self._on_session_layer, names=["layer"])
        self.observe_session(self._on_session_channel, names=["channel"])
        if not self._convs:
            self._nothing_to_explain()
            return
        self.guarded(self._start)(image, layer, channel)

    def _image_controls(self) -> None:
        """The image sources: Upload, Sample, New shapes image."""
        try:
            input_shape = image_input(self.session.loaded.model)
        except CnnvizError:
            input_shape = (None, None, 3)
        self.images = ImageSource(input_shape, self._on_image, self.guarded)
        self.upload, self.sample_select = self.images.upload, self.images.sample_select
        self.new_image, self.source = self.images.new_image, self.images.text
        for control, name in ((self.sample_select, "sample"), (self.new_image, "new")):
            control.add_class(f"cnnviz-conv-{name}")

    def _selection_controls(self) -> None:
        """The layer, channel and input-channel controls."""
        self.layer = labeled(
            widgets.Dropdown, "Layer", "300px", "48px",
            options=[(self._layer_label(p), p) for p in self._convs], value=None,
        )  # fmt: skip
        self.layer.add_class("cnnviz-conv-layer")
        self.channel = labeled(widgets.BoundedIntText, "Channel", "150px", "58px", min=0, max=0)
        self.channel.add_class("cnnviz-conv-channel")
        self.input_channel = labeled(
            widgets.Dropdown, "Input channel", "300px", "92px",
            options=[("largest contribution", STRONGEST)], value=STRONGEST,
        )  # fmt: skip
        self.input_channel.add_class("cnnviz-conv-input-channel")
        self.layer.observe(self.guarded(self._on_layer), names="value")
        self.channel.observe(self.guarded(self._on_channel), names="value")
        self.input_channel.observe(self.guarded(lambda _: self._show_trace()), names="value")

    def _nothing_to_explain(self) -> None:
        self.messages.show_note(
            f"{esc(self.session.loaded.name)} has no Conv2D, DepthwiseConv2D or "
            "SeparableConv2D layer: there is no convolution to explain here."
        )
        for control in (self.layer, self.channel, self.input_channel, self.sample_select):
            control.disabled = True
        self.new_image.disabled = self.upload.disabled = True

    # --- public API -------------------------------------------------------------------

    def set_image(self, image: Any, name: str | None = None) -> None:
        """Explain the layer on a new image (an array, a PIL image, a path or the bytes of
        an image file), fitted to the model's input; a clicked position stays (else the
        channel's strongest value is explained).

        Raises:
            CnnvizError: not an image; the panel keeps its previous image.
        """
        self.images.set(image, name if name is not None else source_name(image))

    def new_shapes_image(self, seed: int | None = None) -> int:
        """Show a generated shapes image (random class) for ``seed`` (default: a random
        seed); returns the seed."""
        return self.images.new_shapes_image(seed)

    def select(self, y: int, x: int) -> ConvolutionTrace:
        """Explain position ``(y, x)`` of the feature map (what a click does); returns
        the trace shown.

        Raises:
            CnnvizError: ``(y, x)`` is outside the map, or the map is still being read
                in the background (:meth:`wait` for it).
        """
        with self._lock:
            if self._maps is None:
                self._show_trace()  # none read (a stopped pass): read them again
            if self._maps is None and self.runner.running:
                raise CnnvizError(
                    f"{self.layer.value}'s maps for this image are still being read in the "
                    "background: wait for them (panel.wait()) and select again"
                )
            before = self.position, self.picked
            self.position, self.picked = (int(y), int(x)), True
            try:
                self._show_trace(keep_position=True)
            except Exception:
                self.position, self.picked = before  # a bad position leaves the last one
                raise
            if self.trace is None:
                raise CnnvizError("nothing to explain yet: choose an image and a layer")
            return self.trace

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a background pass to end; ``True`` if none is going."""
        return self.runner.wait(timeout)

    def stop(self) -> None:
        """Stop a background pass (the picture shown stays)."""
        self.runner.stop()

    def close(self) -> None:
        """Stop a background pass, then close the panel."""
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
        super().close()

    # --- images -----------------------------------------------------------------------

    def _start(self, image: Any, layer: Any, channel: int | None) -> None:
        session = self.session
        if layer is not None:
            session.layer = layer
        if session.layer in self._convs:
            start = session.layer
        else:
            start = self._convs[0]
        self._set_layer(start)
        if channel is None and session.layer == start:
            channel = session.channel
        if channel is not None:
            self.channel.value = int(channel)
        first_error: BaseException | None = None
        if image is not None:
            try:
                self.set_image(image)
            except Exception as err:  # show the message and a default image
                first_error = err
        if self.image is None:
            self.sample_select.value = "circle" if self._is_shapes else GRACE_HOPPER
        if first_error is not None:
            self.messages.show_error(first_error)

    def _on_image(self, image: np.ndarray, label: str, notes: list[str]) -> None:
        self.image, self.image_label = image, label
        self.messages.clear()
        if notes:
            self.messages.show_note(
                "The image was adjusted to fit the model: " + "; ".join(esc(n) for n in notes)
            )
        self._read_maps()

    # --- layer, channel, position -----------------------------------------------------

    def _layer_label(self, path: str) -> str:
        row = self.session.table.row(path)
        k = row.config.get("kernel_size")
        size = f"{k[0]}×{k[1]}" if isinstance(k, (list, tuple)) and len(k) == 2 else ""
        shape = row.output_shape
        channels = shape[-1] if isinstance(shape, tuple) else "?"
        return f"{path} · {row.class_name} {size} · {channels} channels"

    def _set_layer(self, path: str) -> None:
        """Show ``path`` in the dropdown and re-read the maps (without a session echo)."""
        self._updating = True
        try:
            self.layer.value = path
            shape = self.session.table.row(path).output_shape
            self.channel.max = max(0, int(shape[-1]) - 1)
        finally:
            self._updating = False
        self.position, self.picked = None, False
        self._read_maps()

    def _in_background(self) -> bool:
        """Model passes go to the background: ``background``, or by default on images
        larger than ``LARGE_INPUT`` pixels."""
        if self.background is not None:
            return bool(self.background)
        return max(self.image.shape[:2]) > LARGE_INPUT

    def _read_maps(self) -> None:
        """Read the layer's input and output for the image (one model pass) and redraw;
        on a large input in the background (clicks wait for it)."""
        with self._lock:
            self._maps = None
            self.trace = self.field = None
            if self.image is None or self.layer.value is None:
                return
            if not self._in_background():
                self._use_maps(
                    layer_input_output(self.session.loaded, self.image, self.layer.value)
                )
            elif self.runner.running:
                self._pending = True  # read when the pass going on ends
            else:
                self._maps_in_background(self.image, self.layer.value)

    def _maps_in_background(self, image: np.ndarray, layer: str) -> None:
        what = f"reading {esc(layer)}'s input and output for this image"
        self.run_bar.start(1, f"working… {what} (one pass through the model)")
        start = time.perf_counter()

        def work(report: Any, stopping: Any) -> tuple[np.ndarray, np.ndarray] | None:
            if stopping():
                return None
            maps = layer_input_output(self.session.loaded, image, layer)
            # Stop pressed during the pass: the picture shown stays
            return None if stopping() else maps

        def finish(maps: Any, error: BaseException | None) -> None:
            seconds = duration(time.perf_counter() - start)
            if error is None and maps is None:
                self._pending = False
                drawn = self.map_pixels.sent is not None
                kept = "the picture shown is the previous one" if drawn else "nothing drawn"
                self.run_bar.end(
                    0,
                    "warning",
                    f"stopped: {kept}; click the map or pick a channel, layer or image to "
                    f"read {esc(layer)} again",
                )
            elif error is not None:
                self.run_bar.end(0, "danger", "failed: see the message")
                self.messages.show_error(error)
            elif self.image is image and self.layer.value == layer:
                self._use_maps(maps)
                self.run_bar.end(1, "success", f"{esc(layer)} read in {seconds}")
            # else: another image or layer was picked meanwhile; it is read next

        self.runner.run_job(Job(work, f"read {layer}"), finish=finish, after=self._after_pass)

    def _after_pass(self) -> None:
        if self._pending:
            self._pending = False
            self.guarded(self._read_maps)()

    def _use_maps(self, maps: tuple[np.ndarray, np.ndarray]) -> None:
        """Show the layer's maps just read: the input-channel choices and the trace."""
        self._maps = maps
        inputs = maps[0]
        current = self.input_channel.value
        options = [("largest contribution", STRONGEST), ("sum over the input channels", SUM)]
        options += [(f"input channel {i}", i) for i in range(inputs.shape[-1])]
        self._updating = True
        try:
            self.input_channel.options = options
            keep = current in {v for _, v in options}
            self.input_channel.value = current if keep else STRONGEST
        finally:
            self._updating = False
        self._show_trace()

    def _default_position(self) -> tuple[int, int]:
        out = self._maps[1][..., int(self.channel.value)]
        y, x = np.unravel_index(int(np.argmax(out)), out.shape)
        return int(y), int(x)

    def _show_trace(self, keep_position: bool = False) -> None:
        """Explain ``position`` (the channel's strongest value when there is none, or
        when it is outside this map, unless ``keep_position``: then the engine says so)."""
        with self._lock:
            if self._maps is None and self.image is not None and not self.runner.running:
                self._read_maps()  # none read (a stopped or failed pass): read them again
            elif self._maps is not None:
                self._trace_and_draw(keep_position)

    def _trace_and_draw(self, keep_position: bool) -> None:
        inputs, outputs = self._maps
        h, w = outputs.shape[:2]
        inside = self.position is not None and (
            0 <= self.position[0] < h and 0 <= self.position[1] < w
        )
        # the strongest value of the channel, unless a position was clicked (a new image
        # or channel keeps a clicked position: the same place, compared)
        if not self.picked or (not inside and not keep_position):
            self.position = self._default_position()
        y, x = self.position
        layer = self.layer.value
        self.trace = trace_from_maps(
            self.session.loaded, layer, inputs, outputs, int(self.channel.value), y, x
        )
        try:
            self.field = receptive_field(self.session.loaded, layer, y, x)
            field_error = None
        except CnnvizError as err:
            self.field, field_error = None, err
        self._draw_image(field_error)
        self._draw_map()
        self._draw_input()
        self._draw_numbers()

    # --- drawing ----------------------------------------------------------------------

    def _draw_image(self, field_error: BaseException | None) -> None:
        self.pictures.draw_image(self.image, self.field, field_error)

    def _draw_map(self) -> None:
        self.pictures.draw_map(self.trace, self._maps[1])

    def _shown_channel(self) -> int | None:
        """Which input channel the grids and the input map show (``None``: the sum)."""
        choice = self.input_channel.value
        trace = self.trace
        if choice == SUM:
            return None
        if choice == STRONGEST:
            return int(np.argmax(np.abs(trace.channel_sums)))
        where = np.flatnonzero(trace.input_channels == choice)
        return int(where[0]) if len(where) else int(np.argmax(np.abs(trace.channel_sums)))

    def _draw_input(self) -> None:
        """The layer's input map with the patch outlined (deeper layers: the previous
        layer's map; the first convolution's input is the image itself)."""
        trace = self.trace
        first = inbound_paths(self.session.loaded.model, trace.layer) == [""]
        if first and trace.input_shape[:2] == self.image.shape[:2]:
            self.pictures.hide_input()
        else:
            self.pictures.draw_input(trace, self._maps[0], self._shown_channel())

    def _draw_numbers(self) -> None:
        strongest = self.input_channel.value == STRONGEST
        self.numbers.draw(self.trace, self._shown_channel(), strongest)

    # --- callbacks --------------------------------------------------------------------

    def _on_layer(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self._set_layer(change["new"])
        self.session.layer = change["new"]  # the other panels follow
        channel = int(self.channel.value)  # kept (within the new layer's channels)
        n = self.session.n_channels()
        if n is not None and channel < n:
            self._updating = True
            try:
                self.session.channel = channel
            finally:
                self._updating = False

    def _on_channel(self, change: dict) -> None:
        if self._updating:
            return
        channel = int(change["new"])
        n = self.session.n_channels() if self.session.layer == self.layer.value else None
        if n is not None and channel < n and self.session.channel != channel:
            self._updating = True
            try:
                self.session.channel = channel
            finally:
                self._updating = False
        self._show_trace()

    def _on_click(self, x: float, y: float) -> None:
        if self._maps is None:  # being read (the status says so), or read them again
            self._show_trace()
            return
        ix, iy = self.map_pixels.to_image_coordinates(x, y)
        h, w = self._maps[1].shape[:2]
        self.select(min(max(int(iy), 0), h - 1), min(max(int(ix), 0), w - 1))

    def _on_session_layer(self, change: dict) -> None:
        layer = change["new"]
        if layer is None or layer == self.layer.value:
            return
        if layer in self._convs:
            self._set_layer(layer)
        else:
            self.messages.show_note(
                f"The session selected <b>{esc(layer)}</b>, which is not a convolution: this "
                f"panel keeps <b>{esc(self.layer.value)}</b>."
            )

    def _on_session_channel(self, change: dict) -> None:
        channel = change["new"]
        if self._updating or channel is None or self.session.layer != self.layer.value:
            return
        if channel != self.channel.value and channel <= self.channel.max:
            self.channel.value = channel  # redraws through _on_channel
