"""Where long dataset work runs: :class:`LocalBackend` (this process) or :class:`RayBackend`
(a pool of Ray actors, see :mod:`.distributed`).

:func:`get_backend` is the one place a ``backend=`` argument (``"local"``, ``"ray"`` or a
backend object) becomes a backend: :func:`~.examples.top_examples` and :func:`~.atlas.atlas`
and their jobs all go through it.  A backend has two methods, both run in the calling
thread and both ending after the step in progress once ``stopping()`` is true:

- ``rank(search, progress, stopping) -> TopExamples``: run an
  :class:`~.search.ExampleSearch` (made by :func:`~.search.rank_examples`, not iterated);
- ``atlas(plan, result, progress, stopping)``: compute an
  :class:`~.atlas_plan.AtlasPlan`'s missing units into its store, noting what was done in
  the :class:`~.atlas_units.Atlas` ``result``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ...errors import CnnvizError
from .atlas_plan import AtlasPlan, visualize_chunk
from .atlas_units import Atlas, AtlasProgress
from .distributed import ray_atlas, ray_top_examples
from .ray_pool import require_ray
from .search import ExampleSearch, drive, rank_examples
from .top_examples import Progress, TopExamples

__all__ = ["BACKENDS", "LocalBackend", "RayBackend", "get_backend", "stopping_of"]

BACKENDS = ("local", "ray")
"""The names ``backend=`` accepts."""

Stopping = Callable[[], bool]


class LocalBackend:
    """Runs dataset work in this process (the default)."""

    name = "local"

    def rank(
        self,
        search: ExampleSearch,
        progress: Callable[[Progress], None] | None,
        stopping: Stopping,
    ) -> TopExamples:
        """Run ``search`` batch by batch; ``progress`` gets every :class:`Progress`."""
        return drive(search, progress, stopping)

    def atlas(
        self,
        plan: AtlasPlan,
        result: Atlas,
        progress: Callable[[AtlasProgress], None] | None,
        stopping: Stopping,
    ) -> None:
        """Optimize the missing chunks one after the other, then rank the data once for
        the units without examples."""
        t0 = time.perf_counter()
        total = len(plan.units)
        asked = set(plan.units)

        def say(**kw):
            if progress is not None:
                progress(AtlasProgress(total=total, seconds=time.perf_counter() - t0, **kw))

        done = len(asked & plan.vis_store.done())
        for chunk in plan.missing_chunks():
            if stopping():
                break
            channels = plan.chunk_channels(chunk)
            if all(plan.vis_store.has(c) for c in channels):  # another writer finished it
                continue

            def live(step, images, channels=channels, done=done):
                shown = {c: img for c, img in zip(channels, images) if c in asked}
                say(phase="visualization", done=done, live=shown, step=step)

            images, values, finished = visualize_chunk(
                plan.loaded,
                plan.layer,
                channels,
                spatial=plan.spatial,
                preset=plan.preset,
                steps=plan.steps,
                seed=plan.chunk_seed(chunk),
                stopping=stopping,
                report=live,
                precision=plan.vis_precision().precision,
            )
            if not finished:
                live(-1, images)
                break
            plan.write_vis(channels, images, values)
            new = [c for c in channels if c in asked]
            result.computed.extend(new)
            done = len(asked & plan.vis_store.done())
            say(phase="visualization", done=done, new=new)
        missing = plan.missing_examples()
        if missing and not stopping():
            search = rank_examples(
                plan.loaded,
                plan.layer,
                plan.source,
                k=plan.k,
                score=plan.score,
                channels=missing,
                batch_size=plan.examples_batch,
                precision=plan.rank_precision().precision,
            )

            def examples(p: Progress) -> None:
                if not p.final:
                    say(phase="examples", done=total - len(missing), seen=p.seen, images=p.total)

            top = drive(search, examples, stopping)
            if not top.stopped:
                plan.write_examples(top)
                if plan.examples_store is None:
                    result.examples_in_memory = top
                say(phase="examples", done=total, new=missing, seen=top.seen, images=top.total)
            result.notes.extend(n for n in top.notes if n not in result.notes)
        result.stopped = stopping() and not result.complete
        result.seconds = time.perf_counter() - t0


class RayBackend:
    """Runs dataset work on a pool of Ray actors, each compiling the model once (the
    caller's ``ray.init(address=...)``, or a local Ray started for it).

    Args:
        workers: actors (default: the cluster's CPUs, at most 8).
        keep_workers: keep the actors (and their compiled model) for the next call on the
            same model; release them with
            ``cnnviz_widgets.engine.dataset.distributed.shutdown_workers()``.

    Raises:
        CnnvizError: Ray is not installed (``pip install 'cnnviz-widgets[ray]'``), when
            the backend is made: before any work.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, keep_workers: bool = False):
        require_ray()
        self.workers = workers
        self.keep_workers = keep_workers

    def rank(
        self,
        search: ExampleSearch,
        progress: Callable[[Progress], None] | None,
        stopping: Stopping,
    ) -> TopExamples:
        """Share the search's data out among the actors; the same result as the local
        backend (``progress`` as shards come back)."""
        return ray_top_examples(
            search,
            progress=progress,
            stopping=stopping,
            workers=self.workers,
            keep_workers=self.keep_workers,
        )

    def atlas(
        self,
        plan: AtlasPlan,
        result: Atlas,
        progress: Callable[[AtlasProgress], None] | None,
        stopping: Stopping,
    ) -> None:
        """The plan's chunks (the same chunks and seeds as locally) on the actors."""
        ray_atlas(
            plan,
            result,
            progress=progress,
            stopping=stopping,
            workers=self.workers,
            keep_workers=self.keep_workers,
        )


def get_backend(
    backend: str | LocalBackend | RayBackend = "local",
    workers: int | None = None,
    keep_workers: bool = False,
) -> LocalBackend | RayBackend:
    """The backend a ``backend=`` argument names: ``"local"``, ``"ray"`` (with
    ``workers`` and ``keep_workers``, see :class:`RayBackend`) or a backend object, which
    is returned as it is.

    Raises:
        CnnvizError: an unknown name, or ``"ray"`` without Ray installed.
    """
    if isinstance(backend, (LocalBackend, RayBackend)):
        return backend
    if backend == "local":
        return LocalBackend()
    if backend == "ray":
        return RayBackend(workers, keep_workers)
    raise CnnvizError(f"unknown backend {backend!r}: use 'local' or 'ray'")


def stopping_of(stop) -> Stopping:
    """``stopping()`` for a ``stop=`` argument: a ``threading.Event`` (or ``None``)."""
    if stop is None:
        return lambda: False
    return stop.is_set
