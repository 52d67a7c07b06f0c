"""ClassOptimizer: activation maximization as a panel, with a live preview and a history.

Layout and wiring only: the target column is :mod:`.optimizer_target`, the run goes in the
background through :mod:`.runner` (a worker thread steps the engine's ``Run``, a painter
redraws at most ~10 times a second), the preview is :mod:`.preview`, the curve
:mod:`.objective_curve` and the finished runs :mod:`.run_history`.
"""

from __future__ import annotations

import io
import os
import re
import threading
from typing import Any

import ipywidgets as widgets
import numpy as np
import traitlets
from PIL import Image

from ..engine import PRESETS, optimize
from ..engine.model.budget import long_runs_to
from ..engine.optvis import objectives as obj
from ..engine.optvis.results import Frame, Result
from ..engine.optvis.run import Run, warm_up
from ..errors import CnnvizError
from .canvas import zoom_nearest
from .common import Panel, download_link, esc, row, style_sheet, write_file
from .objective_curve import curve_svg
from .optimizer_settings import CLASS_OBJECTIVES, RunSettings, SettingsColumn
from .optimizer_target import MAX_BATCH, TargetChooser
from .pictures import compose, opaque_rgba, png_bytes
from .preview import BatchPreview, PreviewLayout, over_checkerboard
from .run_history import HistoryItem, HistoryStrip, RunRecord
from .runner import RunBar, Runner, duration, long_run_note

__all__ = [
    "MAX_BATCH",
    "ClassOptimizer",
    "PreviewLayout",
    "RunRecord",
    "RunSettings",
    "curve_svg",
    "over_checkerboard",
]


class ClassOptimizer(Panel):
    """Synthesize the image a class or a channel responds to most, watching it form.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model (name,
            path, ``keras.Model``, ``LoadedModel``).
        preset: ``"lucid"`` (default), ``"tf-keras-vis"``, ``"keras-vis"`` or ``"maco"``:
            fills in steps, learning rate and regularizer weights.
        steps, lr, tv, lp, blur: override the preset's values.
        seed: the random seed (the same seed gives the same images).
        **load_kwargs: passed to ``load_model`` when a model is given.

    Targets: in **Class** mode, classes picked by name from a searchable list (several
    with Ctrl/Shift-click: one image each, optimized as one batch); in **Channel** mode, a
    channel of a convolution layer, or channels ``k .. k+n-1``.  The panel follows the
    session (``session.class_index`` selects a class; ``session.channel``, e.g. a filter
    clicked in the :class:`FilterGallery`, selects that channel) and writes its own
    selections back to it.

    Run starts the optimization in a background thread: the preview, the progress bar
    and the objective curve update at most ~10 times a second, and Stop ends it within
    one step, keeping the last image.  Finished runs go to the history strip; click one
    to show it again.  :meth:`to_png` and :meth:`to_gif` export the shown run.

    Traits:
        result: the engine :class:`~cnnviz_widgets.engine.optvis.results.Result` of the shown run
            (``None`` before the first one ends); observe it to follow finished runs.

    Attributes:
        config: the :class:`RunSettings` (traits) the settings controls are linked to.
        mode, class_search, class_list, layer_select, channel_index, channel_count,
            target_summary: the target (see :class:`.optimizer_target.TargetChooser`).
        preset, steps, lr, tv, lp, blur, seed, class_objective, live_preview: settings.
        transparency: show the finished images over a checkerboard, transparent where the
            model took little evidence (the result's ``alpha``); PNG export follows it.
        run_button, stop_button, progress, status, curve: run controls and read-outs.
        pixels: the live preview, one :class:`PixelCanvas` (CSS class
            ``cnnviz-optimizer-canvas``) with every image of the batch side by side at its
            own size, shown enlarged (pixelated); ``preview_layout.box(k)`` is where image
            ``k`` is.  ``labels`` are the captions, ``captions`` the HTML laid over it.
        records: the finished runs (:class:`RunRecord`), oldest first; ``shown`` the one on
            display.
        extra: an objective added to the target's (e.g. ``0.5 * objectives.diversity(
            "conv3")``), or ``None``.
        redraw_interval: seconds between live redraws.
        draw_count: live redraws of the current or last run (for tests and benchmarks).
    """

    result = traitlets.Instance(Result, allow_none=True, read_only=True)

    def __init__(
        self,
        model_or_session: Any,
        *,
        preset: str = "lucid",
        steps: int | None = None,
        lr: float | None = None,
        tv: float | None = None,
        lp: float | None = None,
        blur: float | None = None,
        seed: int = 0,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-class-optimizer", **load_kwargs)
        if preset not in PRESETS:
            raise CnnvizError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
        session = self.session
        self._lock = threading.RLock()  # this panel's run widgets, across threads
        self._run: Run | None = None
        self.extra: obj.Objective | None = None
        self.records: list[RunRecord] = []
        self.shown: RunRecord | None = None
        self.config = RunSettings(preset=preset, seed=int(seed))
        self.config.apply_preset(preset, steps=steps, lr=lr, tv=tv, lp=lp, blur=blur)

        # --- target ------------------------------------------------------------------
        self.title = widgets.HTML(
            f'Class optimization <span class="cnnviz-sub">of {esc(session.loaded.name)}: the '
            "input a class or a channel responds to most</span>"
        )
        self.title.add_class("cnnviz-title")
        self.target = TargetChooser(session, self.guarded, self.messages)
        t = self.target
        self.mode, self.layer_select = t.mode, t.layer_select
        self.class_search, self.class_list = t.picker.search, t.picker.select
        self.channel_index, self.channel_count = t.channel_index, t.channel_count
        self.target_summary = t.summary

        # --- settings: controls linked to self.config ----------------------------------
        self.settings_column = SettingsColumn(self.config)
        for name in (
            "preset", "preset_info", "steps", "lr", "seed", "tv", "lp", "blur",
            "class_objective", "live_preview", "transparency",
        ):  # fmt: skip
            setattr(self, name, getattr(self.settings_column, name))

        # --- run and read-outs ---------------------------------------------------------
        self.run_button = widgets.Button(
            description="Run",
            icon="play",
            button_style="success",
            tooltip="start the optimization (the notebook stays usable)",
            layout=widgets.Layout(width="96px"),
        )
        self.run_button.add_class("cnnviz-run-button")
        self.run_bar = RunBar(self.run_button)
        self.stop_button, self.progress = self.run_bar.stop_button, self.run_bar.progress
        self.status = self.run_bar.status
        self.runner = Runner("cnnviz-class-optimizer", self.messages, self.run_bar, self._lock)
        self.preview = BatchPreview()
        self.pixels, self.captions = self.preview.pixels, self.preview.captions
        self.curve = widgets.HTML(curve_svg(np.zeros(0), np.zeros((0, 1)), 1))
        self.curve.add_class("cnnviz-curve")
        self.result_info = widgets.HTML()
        self.result_info.add_class("cnnviz-result-info")
        self.history = HistoryStrip(self.guarded(self._on_history_click))
        self.history_box, self.history_section = self.history.box, self.history.section
        self.save_png = widgets.Button(
            description="PNG",
            icon="download",
            tooltip="write the shown images to a PNG file",
            disabled=True,
            layout=widgets.Layout(width="84px"),
        )
        self.save_gif = widgets.Button(
            description="GIF",
            icon="film",
            tooltip="write the shown run as an animated GIF",
            disabled=True,
            layout=widgets.Layout(width="84px"),
        )
        self.export_status = widgets.HTML()
        self.export_status.add_class("cnnviz-muted")

        # --- layout ------------------------------------------------------------------
        top = widgets.HBox(
            [self.target.box, self.settings_column.box],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="18px"),
        )
        side = widgets.VBox(
            [self.curve, self.result_info, row(self.save_png, self.save_gif), self.export_status],
            layout=widgets.Layout(flex="0 1 316px", padding="0 0 0 14px"),
        )
        body = widgets.HBox(
            [self.preview.box, side],
            layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"),
        )
        self.children = [
            style_sheet(),
            style_sheet("class_optimizer"),
            self.title,
            top,
            self.run_bar,
            self.messages,
            body,
            self.history_section,
        ]

        # --- wiring ------------------------------------------------------------------
        self.mode.observe(self.guarded(self._on_mode), names="value")
        self.config.observe(self.guarded(self._on_transparency), names="transparency")
        self.run_button.on_click(self.guarded(lambda _: self.run()))
        self.save_png.on_click(self.guarded(self._on_save_png))
        self.save_gif.on_click(self.guarded(self._on_save_gif))
        self.observe_session(t.on_session_class, names=["class_index"])
        self.observe_session(t.on_session_layer, names=["layer"])
        self.observe_session(t.on_session_channel, names=["channel"])
        self._on_mode(None)
        if not session.conv_layers and not t.n_classes:
            self.messages.show_note(
                "This model has no convolution layer and no known number of classes: there "
                "is nothing to optimize here."
            )
            self.run_button.disabled = True
        else:
            self._warm_up()

    def _warm_up(self) -> None:
        """Trace and optimize the step the Run button will use, in the background, so
        that the first run starts at full speed (``cw.warm_up``; an unusable
        selection is left for Run to report)."""
        try:
            objective, _, _ = self.targets()
            warm_up(self.session.loaded, objective, background=True, **self.settings())
        except CnnvizError:
            pass

    # --- public API -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A run is going on (or finishing its last update)."""
        return self.runner.running

    @property
    def redraw_interval(self) -> float:
        return self.runner.redraw_interval

    @redraw_interval.setter
    def redraw_interval(self, seconds: float) -> None:
        self.runner.redraw_interval = float(seconds)

    @property
    def draw_count(self) -> int:
        return self.runner.draw_count

    @property
    def paint_seconds(self) -> float:
        return self.runner.paint_seconds

    @property
    def labels(self) -> list[str]:
        """One caption per image of the preview."""
        return self.preview.labels

    @property
    def preview_layout(self) -> PreviewLayout | None:
        return self.preview.layout

    @property
    def class_targets(self) -> list[int]:
        """The classes picked in Class mode (indices); assign indices or names."""
        return self.target.classes

    @class_targets.setter
    def class_targets(self, classes: Any) -> None:
        self.target.pick_classes(classes)

    def targets(self) -> tuple[obj.Objective, list[str], str]:
        """The objective of the current target selection, one caption per image and a
        short title.  Raises ``CnnvizError`` with the fix when the selection is unusable."""
        return self.target.targets(CLASS_OBJECTIVES[self.config.objective][1])

    def settings(self) -> dict:
        """The run settings as ``optimize`` keyword arguments, checked by the engine."""
        return self.config.checked()

    def run(self, wait: bool = False, timeout: float | None = None) -> RunRecord:
        """Start an optimization of the current targets in a background thread.

        Args:
            wait: block until it ends (scripts and tests; the Run button never waits).
            timeout: seconds to wait at most (with ``wait``).

        Returns:
            The :class:`RunRecord` of the new run (its ``result`` is set when it ends).

        A run the engine estimates too big for memory is refused
        (:class:`~cnnviz_widgets.RunTooLargeError`); one estimated to take long starts
        with a note in the panel's message area saying how long.

        Raises:
            CnnvizError: a run is already going, the targets or settings are unusable, or
                the run will not fit in memory (the Run button shows these in the panel).
        """
        with self._lock:
            if self.runner.closed:
                raise CnnvizError("this panel is closed: make a new ClassOptimizer")
            if self.running:
                raise CnnvizError(
                    "a run is already going in this panel: press Stop (or wait for it to end) "
                    "before starting another"
                )
            objective, labels, title = self.targets()
            settings = self.settings()
            if self.extra is not None:
                objective = objective + self.extra
            long_run: list[str] = []  # the engine's estimate, shown here, not in stderr
            with long_runs_to(long_run.append):
                run = optimize(self.session.loaded, objective, every=1, **settings)
            settings["objective"] = repr(objective)
            record = RunRecord(labels=labels, title=title, settings=settings)
            self._run = run
            self.messages.clear()
            if long_run:
                self.messages.show_note(long_run_note(long_run[0]))
            self.export_status.value = ""
            self.history.select(None)
            self.preview.prepare(labels)
            self.run_bar.start(
                settings["steps"], "compiling the step… (once per target kind and batch size)"
            )
            self.result_info.value = ""
            self.curve.value = curve_svg(np.zeros(0), np.zeros((0, 1)), settings["steps"])
            self.save_png.disabled = self.save_gif.disabled = True
            self.runner.start(
                lambda task: self._work(task, run, record),
                paint=lambda frame, rate, text: self._paint(frame, run, record, rate, text),
                finish=lambda _result, error: self._finish(run, record, error),
            )
        if wait:
            self.wait(timeout)
        return record

    def stop(self) -> None:
        """End the run after the step in progress; its last image is kept."""
        self.runner.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to end; ``True`` if no run is going any more."""
        return self.runner.wait(timeout)

    def show_record(self, record: RunRecord) -> None:
        """Show a finished run again: its images, curve and summary."""
        with self._lock:
            if self.running:
                raise CnnvizError(
                    "a run is going: its preview is live. Stop it (or wait) to look at "
                    "earlier results"
                )
            self._show_record(record)

    def to_png(
        self,
        path: str | os.PathLike | None = None,
        *,
        index: int | None = None,
        zoom: int | None = None,
        labels: bool = True,
    ) -> bytes:
        """The shown run's images as PNG bytes (also written to ``path`` when given).

        Args:
            index: only this image of the batch, at its own size times ``zoom`` (default
                1), without a caption.
            zoom: whole-pixel zoom (default: the preview's).
            labels: caption each image with its target (all images only).
        """
        images = self._shown_images()
        if index is not None:
            if not 0 <= index < len(images):
                raise CnnvizError(
                    f"index {index} is out of range: the run has {len(images)} "
                    f"images, 0..{len(images) - 1}"
                )
            picture = zoom_nearest(opaque_rgba(images[index]), zoom or 1)
        else:
            picture = compose(images, self.shown.labels if labels else None, zoom)
        return write_file(png_bytes(picture), path)

    def to_gif(
        self,
        path: str | os.PathLike | None = None,
        *,
        duration: int = 100,
        zoom: int | None = None,
        labels: bool = True,
    ) -> bytes:
        """The shown run as an animated GIF: its preview frames, then the result held for
        a second.  ``duration`` is milliseconds per frame.  Returns the bytes; also writes
        ``path`` when given."""
        record = self.shown
        if record is None or not record.frames:
            raise CnnvizError("nothing to animate yet: press Run and let it draw a few frames")
        names = record.labels if labels else None
        frames = list(record.frames)
        final = record.images
        if final is not None and (not frames or not np.array_equal(frames[-1], final)):
            frames.append(final)
        pictures = [Image.fromarray(compose(f, names, zoom)[..., :3]) for f in frames]
        durations = [int(duration)] * (len(pictures) - 1) + [1000]
        buffer = io.BytesIO()
        pictures[0].save(
            buffer,
            "GIF",
            save_all=True,
            append_images=pictures[1:],
            duration=durations,
            loop=0,
            optimize=False,
        )
        return write_file(buffer.getvalue(), path)

    def close(self) -> None:
        """Stop the run (if any), then close the panel and its widgets."""
        runner = getattr(self, "runner", None)
        if runner is not None and not runner.closed:
            runner.close()
            self.history.close()
            self.preview.close()
        super().close()

    # --- the run (worker and painter threads) -----------------------------------------

    def _work(self, task: Any, run: Run, record: RunRecord) -> None:
        """Step the engine; hand frames to the painter, never wait on it."""
        task.on_stop = run.stop
        for frame in run:
            record.add_values(frame.step, frame.values)
            if task.stopping:
                run.stop()
            elif not frame.final:  # the final frame is drawn by _finish
                task.offer(frame, frame.step)

    def _paint(self, frame: Frame, run: Run, record: RunRecord, rate: float, text: bool) -> None:
        """Draw one live frame; with ``text``, also the progress read-out and the curve
        (these change slowly: redrawn less often)."""
        record.keep_frame(frame.step, frame.images)
        if text:
            self.run_bar.show_step(frame.step, run.steps, rate, frame.seconds, "step", "steps")
        if self.config.live_preview:
            self._draw_images(frame.images)
            if text:
                steps, values = record.curve()
                self.curve.value = curve_svg(steps, values, run.steps)

    def _finish(self, run: Run, record: RunRecord, error: BaseException | None) -> None:
        record.result = run.result
        self._run = None
        if error is not None:  # the run is over; the panel and the kernel go on
            record.error = f"{type(error).__name__}: {error}"
            self.messages.show_error(error)
        result = record.result
        if result is None:
            self.run_bar.end(0, "danger", "failed: see the message below")
            return
        record.keep_frame(result.steps, result.images)
        self.records.append(record)
        for old in self.history.add(record):
            if old in self.records:
                self.records.remove(old)
        self._show_record(record)
        done = result.steps
        rate = done / result.seconds if result.seconds > 0 else 0.0
        if result.error:
            self.messages.show_error(CnnvizError(result.error))
            style, what = "danger", f"NaN stop at step {done + 1}"
        elif result.stopped:
            style, what = "warning", f"stopped at step {done} of {run.steps}; last image kept"
        else:
            style, what = "success", f"done: {done} steps"
        # the precision the run used (auto may pick bfloat16 on one machine, float32 on
        # another), and why in its tooltip
        precision = f'<span title="{esc(result.precision_reason)}">{result.precision}</span>'
        text = f"{what} · {duration(result.seconds)} · {rate:.1f} steps/s · {precision}"
        self.run_bar.end(done, style, text)

    # --- drawing ----------------------------------------------------------------------

    def _show_record(self, record: RunRecord) -> None:
        with self._lock:
            self.shown = record
            self.set_trait("result", record.result)
            self.preview.prepare(record.labels)
            images = self._display_images(record)
            if images is not None:
                self._draw_images(images, self._final_values(record))
            steps, values = record.curve()
            self.curve.value = curve_svg(steps, values, record.settings["steps"])
            self.result_info.value = self._result_text(record)
            self.history.select(record)
            self.save_png.disabled = images is None
            self.save_gif.disabled = not record.frames

    def _draw_images(self, images: np.ndarray, values: np.ndarray | None = None) -> None:
        self.preview.draw(images, values)

    @staticmethod
    def _final_values(record: RunRecord) -> np.ndarray | None:
        result = record.result
        if result is not None and len(result.history):
            return result.history[-1]
        return record.last_values

    def _result_text(self, record: RunRecord) -> str:
        s = record.settings
        result = record.result
        names = ", ".join(record.labels) if len(record.labels) <= 6 else record.title
        lines = [f"<b>{esc(names)}</b>"]
        if result is not None:
            state = "finished"
            if result.error:
                state = "stopped by NaN gradients"
            elif result.stopped:
                state = "stopped early"
            lines.append(
                f"{state} · {result.steps} of {s['steps']} steps · {duration(result.seconds)}"
            )
        lines.append(
            f"preset {esc(s['preset'])} · lr {s['lr']:g} · seed {s['seed']}<br>"
            f"penalties: tv {s['tv']:g} · lp {s['lp']:g} · blur {s['blur']:g}"
        )
        lines.append(f'<span class="cnnviz-muted">{esc(s.get("objective", ""))}</span>')
        return "<br>".join(lines)

    def _shown_images(self) -> np.ndarray:
        if self.shown is None or self.shown.images is None:
            raise CnnvizError("nothing to export yet: press Run and wait for the result")
        return self._display_images(self.shown)

    def _display_images(self, record: RunRecord) -> np.ndarray | None:
        """The record's images as shown: over the checkerboard when ``transparency`` is on
        and the run has a transparency map."""
        images = record.images
        result = record.result
        if (
            images is None
            or not self.config.transparency
            or result is None
            or result.alpha is None
            or result.alpha.shape != images.shape[:3]
        ):
            return images
        return over_checkerboard(images, result.alpha)

    # --- callbacks --------------------------------------------------------------------

    def _on_mode(self, change: Any) -> None:
        is_class = self.mode.value == "class"
        self.class_objective.layout.display = None if is_class else "none"

    def _on_transparency(self, change: dict) -> None:
        with self._lock:
            if self.running or self.shown is None:
                return  # a live preview has no map yet: the finished run is drawn with it
            self._show_record(self.shown)

    def _on_history_click(self, item: HistoryItem) -> None:
        self.show_record(item.record)

    def _file_stem(self) -> str:
        title = self.shown.title if self.shown is not None else "run"
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", title).strip("_") or "run"
        return f"optimized_{stem}"

    def _on_save_png(self, _button: Any) -> None:
        name = self._file_stem() + ".png"
        self.export_status.value = download_link(name, self.to_png(name), "image/png")

    def _on_save_gif(self, _button: Any) -> None:
        name = self._file_stem() + ".gif"
        self.export_status.value = download_link(name, self.to_gif(name), "image/gif")
