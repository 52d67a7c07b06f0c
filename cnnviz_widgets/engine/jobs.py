"""One protocol for long work: a :class:`Job`.

Every long engine call (an optimization, a dataset-example search, an atlas, an attribution
with many passes) can be had as a job: an object you drive by iterating it (each item a
:class:`JobProgress`), or by :meth:`Job.run` with an optional callback, that can be stopped
from any thread between steps (:meth:`Job.stop`), and that keeps its outcome in
:attr:`Job.result` (what was done so far, when stopped) or its exception in
:attr:`Job.error`.  Panels run any job through one runner the same way::

    job = cw.attribution_job(model, image, method="rise")   # any long call's job
    for p in job:                                           # or job.run(print)
        print(p.done, p.total)
    job.result

A job wraps a *work function* ``work(report, stopping) -> result``: ``report(done, total,
item=None)`` says how far it is (``item``: a partial result worth drawing), and
``stopping()`` is true once :meth:`Job.stop` was called; the work returns what it has when
it sees it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import CnnvizError

__all__ = ["Job", "JobProgress"]

T = TypeVar("T")

_DONE = object()


@dataclass(frozen=True)
class JobProgress:
    """How far a job is: ``done`` of ``total`` steps (``total`` ``None`` when unknown),
    ``seconds`` since it started, ``item`` a partial result the work offered (or ``None``),
    and ``final`` on the last progress a job yields."""

    done: int
    total: int | None
    seconds: float
    item: Any = None
    final: bool = False

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], or ``None`` when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class Job(Generic[T]):
    """Long work that reports progress, can be stopped and keeps its result.

    Args:
        work: ``work(report, stopping) -> result`` (see the module docstring).
        name: what the work is, for messages (``"Score-CAM"``, ``"atlas of conv4"``).
    """

    def __init__(self, work: Callable[[Callable[..., None], Callable[[], bool]], T], name: str):
        self.name = name
        self._work = work
        self._stop = threading.Event()
        self._started = False
        self._t0 = 0.0
        self._last = JobProgress(0, None, 0.0)
        self.result: T | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """End the work after its current step (from any thread); the result keeps what
        was done."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        """Whether the work has ended (finished, stopped or failed)."""
        return self._last.final

    # ---------------------------------------------------------------- driving it
    def __iter__(self) -> Iterator[JobProgress]:
        """Run the work in this thread's stead (a worker thread), yielding its progress;
        the last item has ``final=True``.  An error of the work is raised here after the
        final progress (and kept in :attr:`error`)."""
        if self._started:
            raise CnnvizError(f"the job {self.name!r} was already run: start a new one")
        self._started = True
        self._t0 = time.perf_counter()
        events: queue.Queue = queue.Queue()

        def report(done: int, total: int | None = None, item: Any = None) -> None:
            events.put(JobProgress(int(done), total, time.perf_counter() - self._t0, item))

        def target() -> None:
            try:
                self.result = self._work(report, self._stop.is_set)
            except BaseException as e:  # handed to the caller's thread below
                self.error = e
            events.put(_DONE)

        worker = threading.Thread(target=target, name=f"cnnviz job: {self.name}", daemon=True)
        worker.start()
        try:
            while True:
                event = events.get()
                if event is _DONE:
                    break
                self._last = event
                yield event
        finally:
            # a caller that leaves the loop early stops the work and waits for it
            if worker.is_alive():
                self._stop.set()
                worker.join()
        self._last = JobProgress(
            self._last.done, self._last.total, time.perf_counter() - self._t0, final=True
        )
        yield self._last
        if self.error is not None:
            raise self.error

    def run(self, on_progress: Callable[[JobProgress], None] | None = None) -> T | None:
        """Drive the job to its end in the calling thread and return :attr:`result`;
        ``on_progress`` (optional) is called with each :class:`JobProgress`."""
        for p in self:
            if on_progress is not None:
                on_progress(p)
        return self.result

    def __repr__(self) -> str:
        state = "done" if self.done else ("running" if self._started else "not started")
        return f"Job({self.name!r}, {state}, {self._last.done}/{self._last.total})"
