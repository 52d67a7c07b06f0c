"""Long work in the background for any panel: a worker thread, a painter, a progress bar
and a Stop button.

Panels hand the engine's long calls to :meth:`Runner.run_job` as
:class:`~cnnviz_widgets.engine.jobs.Job` objects (``run.job()``, ``cw.atlas_job(...)``,
``cw.top_examples_job(...)``, or a ``cw.Job`` of the panel's own steps), and every job runs
the same way: its progress fills the bar, Stop calls ``job.stop()``, and each progress
(with the item the work offered) goes to the painter.  :meth:`Runner.start` is the older,
lower-level form (a ``work(task)`` function).

The worker thread runs the job and only hands what it wants drawn to a painter thread
(:meth:`Task.offer`); the painter draws the newest item at most every
``redraw_interval`` seconds and stays busy at most 1/20 of the time, so encoding and
sending pictures never delays the work.  Stop sets a flag the job reads between its
steps; what was drawn last stays on screen.  An exception ends the job and shows in the
panel's message area; the kernel and the panel go on.

Why threads rather than an asyncio task on the kernel's loop: a task there only runs
while no cell does, and outside a kernel (scripts, tests) there is no loop to drive it
(the measurements: ``bench/bench_widgets.py``).  ipykernel sends widget messages from any
thread; canvas drawing goes through :func:`~cnnviz_widgets.widgets.canvas.safe_hold`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..engine import Job, JobProgress
from ..errors import CnnvizError
from .common import MessageArea, esc

REDRAW_INTERVAL = 0.1  # seconds between redraws (at most ~10 per second)
TEXT_INTERVAL = 0.25  # seconds between updates of slow read-outs (progress text, curve)
MAX_PAUSE = 1.0  # a redraw comes at least this often, however slow the last one was
LARGE_INPUT = 128  # pixels: panels pass larger inputs through the model in the background

__all__ = [
    "LARGE_INPUT",
    "RunBar",
    "Runner",
    "Stopped",
    "Task",
    "duration",
    "long_run_note",
    "run_button",
]


class Stopped(Exception):
    """Raised inside a job (by :meth:`Task.check`) when Stop was pressed."""


def duration(seconds: float) -> str:
    """``"4.2 s"``, ``"37 s"``, ``"2 min 05 s"``; ``"?"`` when not finite."""
    if not np.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def long_run_note(text: str, stoppable: bool = True) -> str:
    """The HTML note a panel shows for the engine's long-run estimate ``text`` (see
    :func:`cnnviz_widgets.engine.model.budget.long_runs_to`)."""
    tail = " It has started; Stop ends it and keeps what is shown." if stoppable else ""
    return f'<span class="cnnviz-long-run"><b>A long run</b>: {esc(text)}.{tail}</span>'


def run_button(description: str, tooltip: str) -> widgets.Button:
    """A green Run button (CSS class ``cnnviz-run-button``) for a :class:`RunBar`."""
    button = widgets.Button(
        description=description,
        icon="play",
        button_style="success",
        tooltip=tooltip,
        layout=widgets.Layout(width="96px"),
    )
    button.add_class("cnnviz-run-button")
    return button


class RunBar(widgets.HBox):
    """Stop button, progress bar and status line of a background job (CSS classes
    ``cnnviz-stop-button``, ``cnnviz-progress``, ``cnnviz-status``).  ``run_button``, when
    given, goes first and is disabled while a job runs; with ``hide_idle`` the bar and Stop
    show only from the first job on (a panel whose work is mostly quick)."""

    def __init__(
        self,
        run_button: widgets.Button | None = None,
        progress_width: str = "260px",
        hide_idle: bool = False,
    ):
        self.run_button = run_button
        self.stop_button = widgets.Button(
            description="Stop",
            icon="stop",
            button_style="danger",
            disabled=True,
            tooltip="end the work after the current step, keeping what is shown",
            layout=widgets.Layout(width="90px"),
        )
        self.stop_button.add_class("cnnviz-stop-button")
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, layout=widgets.Layout(width=progress_width)
        )
        self.progress.add_class("cnnviz-progress")
        self.status = widgets.HTML('<span class="cnnviz-muted">ready</span>')
        self.status.add_class("cnnviz-status")
        first = [run_button] if run_button is not None else []
        super().__init__([*first, self.stop_button, self.progress, self.status])
        if hide_idle:
            self.stop_button.layout.display = self.progress.layout.display = "none"
        self.add_class("cnnviz-controls")
        self.add_class("cnnviz-run-row")

    def set_running(self, running: bool) -> None:
        """Buttons for a job that starts (``True``) or has ended."""
        if self.run_button is not None:
            self.run_button.disabled = running
        self.stop_button.disabled = not running

    def start(self, total: int, text: str) -> None:
        """A new job of ``total`` steps: an empty bar and a first status line."""
        self.stop_button.layout.display = self.progress.layout.display = None
        with self.progress.hold_sync():
            self.progress.max = max(1, int(total))
            self.progress.value = 0
            self.progress.bar_style = "info"
        self.status.value = text

    def show_step(
        self, step: int, total: int, rate: float, seconds: float, unit: str, units: str
    ) -> None:
        """The bar at ``step`` of ``total`` (``unit``: "step"), with the rate in ``units``
        per second and the time left."""
        self.progress.value = min(int(step), self.progress.max)
        if rate > 0:
            eta = (total - step) / rate
            self.status.value = (
                f"{unit} <b>{step}</b> / {total} · {rate:.1f} {units}/s · "
                f"about {duration(eta)} left"
            )
        else:
            self.status.value = f"{unit} <b>{step}</b> / {total} · {duration(seconds)}"

    def end(self, done: int, style: str, text: str) -> None:
        """A finished job: the bar at ``done`` in ``style`` (success/warning/danger)."""
        with self.progress.hold_sync():
            self.progress.value = min(int(done), self.progress.max)
            self.progress.bar_style = style
        self.status.value = text


class Task:
    """What a job sees of the runner: hand items to the painter, read the stop flag."""

    def __init__(self, painter: _Painter, stop_event: threading.Event) -> None:
        self._painter = painter
        self._stop = stop_event
        self.on_stop: Callable[[], None] | None = None  # e.g. the engine run's own stop()

    @property
    def stopping(self) -> bool:
        """Stop was pressed (or the panel closed)."""
        return self._stop.is_set()

    def check(self) -> None:
        """Raise :class:`Stopped` when Stop was pressed (call it between steps)."""
        if self._stop.is_set():
            raise Stopped()

    def offer(self, item: Any, step: int) -> None:
        """Hand ``item`` (the state after ``step`` steps) to the painter; never waits.
        Items that arrive between two redraws are skipped."""
        self._painter.offer(item, step)

    def progress(self, done: int, total: int) -> None:
        """A progress callback for engine functions: offers ``(done, total)`` and raises
        :class:`Stopped` when Stop was pressed."""
        self.offer((done, total), done)
        self.check()


class _Painter(threading.Thread):
    """Draws the newest offered item at most every ``runner.redraw_interval`` seconds."""

    def __init__(self, runner: Runner, paint: Callable[[Any, float, bool], None]) -> None:
        super().__init__(name=f"{runner.name}-painter", daemon=True)
        self.runner, self.paint = runner, paint
        self._cond = threading.Condition()
        self._item: Any = None
        self._step = 0
        self._has_item = False
        self._done = False
        self._first: tuple[int, float] | None = None  # (step, time) of the first item
        self._last_text = -math.inf
        self._typical: float | None = None  # running mean of a redraw's cost

    def offer(self, item: Any, step: int) -> None:
        with self._cond:
            if self._first is None:
                self._first = (step, time.perf_counter())
            self._item, self._step, self._has_item = item, step, True
            self._cond.notify()

    def finish(self) -> None:
        """Stop painting (the redraw in progress completes) and wait for the thread."""
        with self._cond:
            self._done = True
            self._cond.notify()
        if self.is_alive() and self is not threading.current_thread():
            self.join()

    def run(self) -> None:
        runner = self.runner
        while True:
            with self._cond:
                while not self._has_item and not self._done:
                    self._cond.wait()
                if self._done:
                    return
                item, step, self._has_item = self._item, self._step, False
                first = self._first
            now = time.perf_counter()
            rate = (step - first[0]) / (now - first[1]) if now > first[1] else 0.0
            text = now - self._last_text >= max(TEXT_INTERVAL, runner.redraw_interval)
            if text:
                self._last_text = now
            try:
                self.paint(item, rate, text)
            except Exception as err:
                runner.messages.show_error(err)
                runner.stop()  # a panel that cannot draw should not work on unseen
                return
            # at most one redraw per interval, and busy <= 1/20 of the time judged on the
            # typical redraw (the first of a job can cost far more than the others)
            spent = time.perf_counter() - now
            runner.paint_seconds += spent
            typical = spent if self._typical is None else (self._typical + spent) / 2
            self._typical = typical
            busy = min(19 * typical, MAX_PAUSE) if runner.redraw_interval else 0
            pause = max(runner.redraw_interval - spent, busy)
            if pause > 0:
                with self._cond:
                    self._cond.wait_for(lambda: self._done, timeout=pause)


class Runner:
    """One background job at a time for a panel.

    Args:
        name: the threads' name.
        messages: the panel's message area (errors of the job show there).
        bar: the :class:`RunBar` whose buttons follow the job.
        lock: the panel's lock; ``finish`` runs under it.

    :meth:`start` takes ``work(task)`` (runs in the worker thread, returns the result),
    ``paint(item, rate, text)`` (the painter thread; ``text`` is true when slow read-outs
    are due) and ``finish(result, error)`` (the worker thread, under the lock, after the
    painter has stopped; ``error`` is the exception, :class:`Stopped` included, or
    ``None``).  Stop presses call :meth:`stop`.

    Attributes:
        redraw_interval: seconds between redraws (0: every item is drawn, for tests).
        draw_count: redraws of the current or last job.
        paint_seconds: time spent drawing in the current or last job.
    """

    def __init__(
        self, name: str, messages: MessageArea, bar: RunBar, lock: threading.RLock
    ) -> None:
        self.name, self.messages, self.bar, self.lock = name, messages, bar, lock
        self.redraw_interval = REDRAW_INTERVAL
        self.draw_count = 0
        self.paint_seconds = 0.0
        self.closed = False
        self.thread: threading.Thread | None = None
        self._active = False
        self._stop = threading.Event()
        self._task: Task | None = None
        bar.stop_button.on_click(lambda _: self._on_stop_click())

    @property
    def running(self) -> bool:
        """A job is going on (or finishing its last update)."""
        return self._active

    def start(
        self,
        work: Callable[[Task], Any],
        *,
        paint: Callable[[Any, float, bool], None],
        finish: Callable[[Any, BaseException | None], None],
        after: Callable[[], None] | None = None,
    ) -> None:
        """Start ``work`` in a new thread (see the class docstring); ``after()`` runs in
        that thread once the job is over (a new job may start there)."""
        with self.lock:
            if self.closed:
                raise CnnvizError("this panel is closed: make a new one")
            if self._active:
                raise CnnvizError(
                    "a run is already going in this panel: press Stop (or wait for it to "
                    "end) before starting another"
                )
            self._stop = threading.Event()
            self.draw_count = 0
            self.paint_seconds = 0.0
            self._active = True
            self.bar.set_running(True)

            def counted(item: Any, rate: float, text: bool) -> None:
                with self.lock:
                    if self.closed:
                        return
                    paint(item, rate, text)
                    self.draw_count += 1

            painter = _Painter(self, counted)
            self._task = Task(painter, self._stop)
            self.thread = threading.Thread(
                target=self._work, args=(work, painter, finish, after), name=self.name, daemon=True
            )
            self.thread.start()

    def run_job(
        self,
        job: Job,
        *,
        paint: Callable[[JobProgress, float, bool], None] | None = None,
        finish: Callable[[Any, BaseException | None], None],
        take: Callable[[JobProgress], None] | None = None,
        after: Callable[[], None] | None = None,
        unit: tuple[str, str] = ("step", "steps"),
    ) -> None:
        """Run ``job`` in the background, the same way for every panel.

        Every :class:`~cnnviz_widgets.engine.jobs.JobProgress` is first given to ``take``
        (the worker thread, each one: for what must not be skipped, e.g. a curve's values),
        then offered to the painter, which (at most every ``redraw_interval``) moves the
        bar to ``done`` of ``total`` with the rate and time left (``unit``: singular and
        plural, for the status line) and then calls ``paint(progress, rate, text)``.  Stop
        calls ``job.stop()``; ``finish(job.result, error)`` runs at the end (under the lock,
        after the painter stopped; ``error`` is the job's exception or ``None``; a stopped
        job's result keeps what was done).  ``after`` as in :meth:`start`.
        """

        def work(task: Task) -> Any:
            task.on_stop = job.stop
            if task.stopping:
                job.stop()
            for p in job:  # the job's error is raised here, after its final progress
                if take is not None:
                    take(p)
                if task.stopping:
                    job.stop()
                elif not p.final:  # the final state is drawn by finish
                    task.offer(p, p.done)
            return job.result

        def draw(p: JobProgress, rate: float, text: bool) -> None:
            if text and p.total:
                if self.bar.progress.max != p.total:
                    self.bar.progress.max = p.total
                self.bar.show_step(p.done, p.total, rate, p.seconds, *unit)
            if paint is not None:
                paint(p, rate, text)

        self.start(work, paint=draw, finish=finish, after=after)

    def _work(self, work, painter: _Painter, finish, after) -> None:
        painter.start()
        result, error = None, None
        try:
            result = work(self._task)
        except Exception as err:  # the job is over; the panel and the kernel go on
            error = err
        finally:
            painter.finish()
            with self.lock:
                try:
                    if not self.closed:
                        finish(result, error)
                except Exception as err:
                    self.messages.show_error(err)
                finally:
                    self._active = False
                    if not self.closed:
                        self.bar.set_running(False)
        if after is not None and not self.closed:
            try:
                after()
            except Exception as err:
                self.messages.show_error(err)

    def stop(self) -> None:
        """End the job after the step in progress; what is shown stays."""
        task = self._task
        if task is None or not self._active:
            return
        self._stop.set()
        if task.on_stop is not None:
            task.on_stop()
        with self.lock:
            if self._active and not self.closed:
                self.bar.status.value = "stopping after this step…"
                self.bar.stop_button.disabled = True

    def _on_stop_click(self) -> None:
        try:
            self.stop()
        except Exception as err:
            self.messages.show_error(err)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end, and for any job its ``after`` started; ``True`` if none
        is going any more."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            thread = self.thread
            if thread is None or thread is threading.current_thread():
                break
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(left)
            if thread is self.thread or (left is not None and left <= 0):
                break
        return not self._active

    def close(self) -> None:
        """Stop the job (waiting up to 5 s for it) and draw nothing more."""
        with self.lock:
            self.closed = True
        self.stop()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
