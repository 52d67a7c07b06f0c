"""The Ray backend: the same atlas and dataset-example work on a pool of Ray actors.

Each actor rebuilds the model once from its architecture (JSON) and weights, shipped
through Ray's object store once for the whole pool (not the ``LoadedModel`` object: a
Keras model pickles through a temporary file, and a JSON + weights pair travels to a
machine without the user's file system), then serves many work items:

- visualizations: the chunks of :class:`~cnnviz_widgets.engine.dataset.atlas.AtlasPlan` (the
  same chunks and seeds as the local backend, so the same images);
- dataset examples: ranges of an indexable source (arrays, paths, folders, shapes
  streams), aligned to whole batches so that every batch is the one the local backend
  computes; a generator or ``tf.data`` stream is read by the caller and its batches are
  shipped.  The partial rankings are merged exactly (:meth:`TopK.merge`).

The caller writes the results to the store as they arrive.  :class:`~.backends.RayBackend`
calls these; Ray itself is imported only inside :mod:`.ray_pool` and only when a pool is
started: it is an optional extra (``pip install 'cnnviz-widgets[ray]'``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .atlas_plan import AtlasPlan
from .atlas_units import Atlas, AtlasProgress
from .ray_pool import (
    Pool,
    kept_pool,
    loaded_from_spec,
    model_spec,
    release_pool,
    require_ray,
    shutdown_workers,
    start_local_ray,
)
from .search import ExampleSearch
from .sources import DataSource
from .top_examples import Progress, TopExamples
from .top_k import TopK
from .unit_health import health_notes

__all__ = [
    "loaded_from_spec",
    "model_spec",
    "ray_atlas",
    "ray_top_examples",
    "require_ray",
    "shutdown_workers",
    "start_local_ray",
]


# ---------------------------------------------------------------------------- examples
def _shards(source: DataSource, batch_size: int, workers: int):
    """``(start, stop)`` ranges of whole batches, about four per worker."""
    total = source.total or 0
    batches = math.ceil(total / batch_size)
    per = max(1, math.ceil(batches / (4 * workers)))
    step = per * batch_size
    return [(lo, min(lo + step, total)) for lo in range(0, total, step)]


def _about(source: DataSource) -> dict:
    return {"kind": source.kind, "total": source.total, "label_names": source.label_names}


def _rank_on_pool(pool: Pool, layer, source: DataSource, settings: dict, stopping, report):
    """Rank a source on the pool; returns the merged :class:`TopExamples` (or ``None``
    when stopped)."""
    ray = pool.ray
    n_units = None
    state: TopK | None = None
    first: TopExamples | None = None
    seen = 0
    batch_size = settings["batch_size"]

    def take(result: TopExamples):
        nonlocal state, first, seen, n_units
        if state is None:
            first = result
            n_units = len(result.units)
            spatial = result.positions is not None
            maps = result.maps.shape[2:] if result.maps is not None else None
            state = TopK(n_units, result.k, spatial, maps)
        state.merge(result)
        seen = state.seen
        report(seen)

    if source.indexable:
        data, about = ray.put(source.data), _about(source)  # shipped once for every range
        todo = _shards(source, batch_size, len(pool.actors))
        while todo or pool.pending:
            if stopping():
                return None, seen
            while todo and pool.free:
                lo, hi = todo.pop(0)
                pool.submit("rank", (lo, hi), layer, data, about, lo, hi, settings)
            for _, result in pool.wait():
                take(result)
    else:
        batches = source.batches(batch_size)
        base = 0
        exhausted = False
        group = 4  # batches per task
        while not exhausted or pool.pending:
            if stopping():
                return None, seen
            while not exhausted and pool.free:
                items = []
                for b in batches:
                    items.append((b.images, b.labels) if b.labels is not None else b.images)
                    if len(items) == group:
                        break
                if not items:
                    exhausted = True
                    break
                count = sum(len(x[0] if isinstance(x, tuple) else x) for x in items)
                pool.submit("rank", (base, base + count), layer, items, None, base, None, settings)
                base += count
                if len(items) < group:
                    exhausted = True
            for _, result in pool.wait():
                take(result)
    if state is None:
        return None, 0
    out = state.result(
        layer=first.layer,
        kind=first.kind,
        units=first.units,
        unit_names=first.unit_names,
        score=first.score,
        label_names=source.label_names,
        total=source.total,
        notes=[n for n in first.notes if n not in health_notes(first)],  # a part's counts
        image_shape=first.pool.shape[1:] if len(first.pool) else (1, 1, 3),
    )
    out.notes.extend(health_notes(out))
    return out, seen


def ray_top_examples(
    proto: ExampleSearch,
    *,
    progress: Callable[[Progress], None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
    workers: int | None = None,
    keep_workers: bool = False,
) -> TopExamples:
    """:func:`top_examples` on a Ray pool: the search ``proto`` (from
    :func:`rank_examples`, not iterated) shared out among the actors; the same result as
    the local backend; ``stopping()`` true ends it after the shards in flight."""
    require_ray()
    loaded, source, batch_size = proto.loaded, proto.source, proto.batch_size
    settings = {
        "k": proto.k,
        "score": proto.score,
        "channels": proto.units.tolist(),
        "batch_size": batch_size,
        "keep_maps": proto.keep_maps,
        # the precision decided here (one measurement), not "auto" in every worker
        "precision": proto.precision.precision,
    }
    t0 = time.perf_counter()
    tasks = len(_shards(source, batch_size, 1)) if source.indexable else 8
    pool = kept_pool(loaded, workers, tasks, keep_workers)

    def report(seen):
        if progress is not None:
            progress(Progress(seen, source.total, time.perf_counter() - t0))

    try:
        out, _ = _rank_on_pool(pool, proto.layer, source, settings, stopping, report)
    finally:
        release_pool(pool)
    if out is None:  # stopped: what the search had before the first shard came back
        out = proto.snapshot()
        out.stopped = True
    out.precision, out.precision_reason = proto.precision.precision, proto.precision.reason
    out.seconds = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------- atlas
def ray_atlas(
    plan: AtlasPlan,
    result: Atlas,
    *,
    progress: Callable[[AtlasProgress], None] | None = None,
    stopping: Callable[[], bool] = lambda: False,
    workers: int | None = None,
    keep_workers: bool = False,
) -> None:
    """Run an :class:`AtlasPlan` on a Ray pool, writing to the plan's store and noting what
    was done in ``result``; ``stopping()`` true ends it after the chunks in flight."""
    t0 = time.perf_counter()
    total = len(plan.units)
    asked = set(plan.units)
    chunks = plan.missing_chunks()
    missing_ex = plan.missing_examples()
    tasks = len(chunks) + (8 if missing_ex else 0)

    def say(**kw):
        if progress is not None:
            progress(AtlasProgress(total=total, seconds=time.perf_counter() - t0, **kw))

    if not tasks:
        result.seconds = time.perf_counter() - t0
        return
    pool = kept_pool(plan.loaded, workers, tasks, keep_workers)
    try:
        todo = list(chunks)
        done = len(asked & plan.vis_store.done())
        while todo or pool.pending:
            if stopping():
                break
            while todo and pool.free:
                chunk = todo.pop(0)
                pool.submit(
                    "visualize",
                    chunk,
                    plan.layer,
                    plan.chunk_channels(chunk),
                    plan.spatial,
                    plan.preset,
                    plan.steps,
                    plan.chunk_seed(chunk),
                    plan.vis_precision().precision,
                )
            for _, (channels, images, values, finished) in pool.wait():
                if not finished:
                    continue
                plan.write_vis(channels, images, values)
                new = [c for c in channels if c in asked]
                result.computed.extend(new)
                done = len(asked & plan.vis_store.done())
                say(phase="visualization", done=done, new=new)
        if missing_ex and not stopping():
            settings = {
                "k": plan.k,
                "score": plan.score,
                "channels": missing_ex,
                "batch_size": plan.examples_batch,
                "keep_maps": True,
                "precision": plan.rank_precision().precision,
            }

            def report(seen):
                say(
                    phase="examples",
                    done=total - len(missing_ex),
                    seen=seen,
                    images=plan.source.total,
                )

            top, _ = _rank_on_pool(pool, plan.layer, plan.source, settings, stopping, report)
            if top is not None:
                plan.write_examples(top)
                if plan.examples_store is None:
                    result.examples_in_memory = top
                say(phase="examples", done=total, new=missing_ex, seen=top.seen, images=top.total)
    finally:
        release_pool(pool)
    result.stopped = stopping() and not result.complete
    result.seconds = time.perf_counter() - t0
