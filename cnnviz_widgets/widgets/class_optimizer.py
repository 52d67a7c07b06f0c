"""ClassOptimizer: activation maximization as a panel, with a live preview and a history.

Layout and wiring only: the target column is :mod:`.optimizer_target`, the run goes in the
background through :mod:`.runner` (the engine's ``Run`` as a job: a worker thread steps it,
a painter redraws at most ~10 times a second), the preview is :mod:`.preview`, the curve
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

from .. import objectives as obj
from ..engine import (
    PRESETS,
    Frame,
    Result,
    Run,
    choose_recipe,
    long_runs_to,
    optimize,
    warm_up,
)
from ..errors import CnnvizError
from .canvas import zoom_nearest
from .common import Panel, download_link, esc, style_sheet, wrapping_row, write_file
from .objective_curve import curve_svg
from .optimizer_readouts import Readouts
from .optimizer_settings import CLASS_OBJECTIVES, RunSettings, SettingsColumn
from .optimizer_target import MAX_BATCH, TargetChooser
from .pictures import compose, opaque_rgba, png_bytes
from .preview import BatchPreview, PreviewLayout, over_checkerboard
from .run_history import HistoryItem, HistoryStrip, RunRecord
from .runner import RunBar, Runner, duration, long_run_note, run_button
from .save_figure import SaveFigure, optimizer_figures

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
        preset: ``"auto"`` (default: the model's own recipe, shown under the menu with
            the reason), ``"lucid"``, ``"robust"``, ``"tf-keras-vis"``, ``"keras-vis"`` or
            ``"maco"``: fills in steps, learning rate and regularizer weights.
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
        config: the :class:`RunSettings` (traits) the settings controls are linked to:
            ``panel.config.steps = 300`` is the same as typing 300 in the steps box.
        target: the target column (:class:`.optimizer_target.TargetChooser`: ``mode``,
            ``picker.search``, ``picker.select``, ``layer_select``, ``channel_index``,
            ``channel_count``, ``summary``).
        settings_column: the settings controls (:class:`.optimizer_settings.SettingsColumn`:
            ``preset``, ``steps``, ``lr``, ``seed``, ``tv``, ``lp``, ``blur``,
            ``class_objective``, ``live_preview``, ``transparency``: show the finished
            images over a checkerboard, transparent where the model took little evidence,
            the result's ``alpha``; PNG export follows it).
        run_bar: Run (``run_bar.run_button``), Stop, the progress bar and the status line
            (:class:`.runner.RunBar`); ``runner`` runs the optimization as a job.
        preview: the live preview (:class:`.preview.BatchPreview`): one
            :class:`PixelCanvas` (``preview.pixels``, CSS class
            ``cnnviz-optimizer-canvas``) with every image of the batch side by side,
            enlarged; ``preview_layout.box(k)`` is where image ``k`` is, ``labels`` the
            captions (``preview.captions`` the HTML laid over it).
        readouts: the objective curve, the shown run's summary and the PNG/GIF export
            (:class:`.optimizer_readouts.Readouts`).
        history: the finished runs' strip (:class:`.run_history.HistoryStrip`).
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
        preset: str = "auto",
        steps: int | None = None,
        lr: float | None = None,
        tv: float | None = None,
        lp: float | None = None,
        blur: float | None = None,
        seed: int = 0,
        **load_kwargs: Any,
    ) -> None:
        super().__init__(model_or_session, css_class="cnnviz-class-optimizer", **load_kwargs)
        if preset != "auto" and preset not in PRESETS:
            raise CnnvizError(
                f"unknown preset {preset!r}: use 'auto' or one of {', '.join(PRESETS)}"
            )
        self._lock = threading.RLock()  # this panel's run widgets, across threads
        self.extra: obj.Objective | None = None
        self.records: list[RunRecord] = []
        self.shown: RunRecord | None = None
        auto, why = choose_recipe("auto", self.session.loaded)  # shown under the preset
        self.config = RunSettings(preset=preset, seed=int(seed), auto_preset=auto, auto_reason=why)
        self.config.apply_preset(preset, steps=steps, lr=lr, tv=tv, lp=lp, blur=blur)
        # the parts, each with its own box
        self.target = TargetChooser(self.session, self.guarded, self.messages)
        self.settings_column = SettingsColumn(self.config)
        self.run_bar = RunBar(
            run_button("Run", "start the optimization (the notebook stays usable)")
        )
        self.runner = Runner("cnnviz-class-optimizer", self.messages, self.run_bar, self._lock)
        self.preview = BatchPreview()
        self.readouts = Readouts()
        self.history = HistoryStrip(self.guarded(self._on_history_click))
        self.children = [
            style_sheet(),
            style_sheet("class_optimizer"),
            self._title(),
            wrapping_row([self.target.box, self.settings_column.box], grid_gap="18px"),
            self.run_bar,
            self.messages,
            wrapping_row([self.preview.box, self.readouts.box]),
            SaveFigure(optimizer_figures(self), "optimized.pdf"),
            self.history.section,
        ]
        self._wire()
        if not self.session.conv_layers and not self.target.n_classes:
            self.messages.show_note(
                "This model has no convolution layer and no known number of classes: there "
                "is nothing to optimize here."
            )
            self.run_bar.run_button.disabled = True
        else:
            self._warm_up()

    def _title(self) -> widgets.HTML:
        title = widgets.HTML(
            f'Class optimization <span class="cnnviz-sub">of {esc(self.session.loaded.name)}: '
            "the input a class or a channel responds to most</span>"
        )
        title.add_class("cnnviz-title")
        return title

    def _wire(self) -> None:
        """Connect the parts' controls and the session to the panel."""
        t, readouts = self.target, self.readouts
        t.mode.observe(self.guarded(self._on_mode), names="value")
        self.config.observe(self.guarded(self._on_transparency), names="transparency")
        self.run_bar.run_button.on_click(self.guarded(lambda _: self.run()))
        readouts.save_png.on_click(self.guarded(self._on_save_png))
        readouts.save_gif.on_click(self.guarded(self._on_save_gif))
        self.observe_session(t.on_session_class, names=["class_index"])
        self.observe_session(t.on_session_output, names=["output"])
        self.observe_session(t.on_session_layer, names=["layer"])
        self.observe_session(t.on_session_channel, names=["channel"])
        self._on_mode(None)

    def _warm_up(self) -> None:
        """Trace and optimize the step the Run button will use, in the background, so
        that the first run starts at full speed (``cw.warm_up``; an unusable
        selection is left for Run to report)."""
        try:
            objective, _, _ = self.targets()
            warm_up(
                self.session.loaded,
                objective,
                background=True,
                output=self.session.output,
                **self.settings(),
            )
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
            if self.extra is not None:
                objective = objective + self.extra
            arguments = self.config.arguments()
            long_run: list[str] = []  # the engine's estimate, shown here, not in stderr
            with long_runs_to(long_run.append):  # optimize checks the settings, once
                run = optimize(
                    self.session.loaded,
                    objective,
                    every=1,
                    min_steps=1,
                    output=self.session.output,
                    **arguments,
                )
            settings = {"preset": arguments["preset"], **run.settings, "seed": run.seed}
            settings["objective"] = repr(objective)
            record = RunRecord(labels=labels, title=title, settings=settings)
            self._run = run
            self.messages.clear()
            if long_run:
                self.messages.show_note(long_run_note(long_run[0]))
            self.history.select(None)
            self.preview.prepare(labels)
            self.run_bar.start(
                settings["steps"], "compiling the step… (once per target kind and batch size)"
            )
            self.readouts.clear(settings["steps"])
            self.runner.run_job(
                run.job(),
                take=lambda p: (
                    record.add_values(p.item.step, p.item.values)
                    if p.item and not p.item.preview
                    else None
                ),
                paint=lambda p, _rate, text: self._paint(p.item, record, text),
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

    def _paint(self, frame: Frame, record: RunRecord, text: bool) -> None:
        """Draw one live frame (the runner has moved the progress bar); with ``text``,
        also the curve (it changes slowly: redrawn less often)."""
        if frame.preview:  # one eager step while the step compiles: shown, not kept
            self.run_bar.status.value = "first step shown; compiling the step…"
        else:
            record.keep_frame(frame.step, frame.images)
        if self.config.live_preview:
            self._draw_images(frame.images)
            if text:
                self.readouts.show_curve(*record.curve(), frame.steps)

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
        recipe = f'<span title="{esc(result.recipe_reason)}">{esc(result.recipe)}</span>'
        text = (
            f"{what} · {duration(result.seconds)} · {rate:.1f} steps/s · {precision} · "
            f"recipe {recipe}"
        )
        if result.stuck:
            text += f" · {esc(result.stuck_message())}"
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
            self.readouts.show_curve(*record.curve(), record.settings["steps"])
            self.readouts.result_info.value = self._result_text(record)
            self.history.select(record)
            self.readouts.save_png.disabled = images is None
            self.readouts.save_gif.disabled = not record.frames

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
            f"preset {esc(s['preset'])}"
            + (f" ({esc(result.recipe)})" if result is not None and result.recipe else "")
            + f" · lr {s['lr']:g} · seed {s['seed']}<br>"
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
        is_class = self.target.mode.value == "class"
        self.settings_column.class_objective.layout.display = None if is_class else "none"

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
        self.readouts.export_status.value = download_link(name, self.to_png(name), "image/png")

    def _on_save_gif(self, _button: Any) -> None:
        name = self._file_stem() + ".gif"
        self.readouts.export_status.value = download_link(name, self.to_gif(name), "image/gif")
