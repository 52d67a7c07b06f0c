"""Dataset examples: for every unit of a layer, the images of a data set that excite it most.

A data set streams through one compiled pass from display images to the layer (the model's
preprocessing included); each batch is reduced, inside the pass, to one score per image and
unit (the mean or the max of the unit's activation map) and the position of the map's
maximum.  A streaming top-k merge keeps, per unit, the k best images seen so far with their
activation maps: memory grows with units x k, never with the data.  Ties are broken by
stream order (the earlier image wins), so the result is exactly a full sort of the data set.

For the model's output layer the units are the classes, ranked by the log-odds of their
probability, ``log(p / (1 - p))``, computed from the logits when they can be read: the
probability's order without its saturation at 1 (raw logits would favour images that score
high for every class).

:func:`rank_examples` returns the search as an iterator (progress every batch, stoppable
from any thread, like :func:`optimize`; ``.job()`` makes it a
:class:`~cnnviz_widgets.engine.jobs.Job`); :func:`top_examples` runs it to the end on a
backend (:mod:`.backends`), and :func:`top_examples_job` is the same as a job.  The search
itself is in :mod:`.search`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..jobs import Job
from .backends import LocalBackend, RayBackend, get_backend, stopping_of
from .search import SCORES, ExampleSearch, log_odds, rank_examples
from .top_examples import Progress, TopExamples

__all__ = [
    "SCORES",
    "ExampleSearch",
    "Progress",
    "TopExamples",
    "log_odds",
    "rank_examples",
    "top_examples",
    "top_examples_job",
]


def top_examples(
    model,
    layer,
    data,
    k: int = 9,
    *,
    score: str = "mean",
    channels=None,
    batch_size: int = 64,
    keep_maps: bool = True,
    key: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    stop: threading.Event | None = None,
    backend: str | LocalBackend | RayBackend = "local",
    workers: int | None = None,
    keep_workers: bool = False,
    precision: str = "auto",
    output=None,
) -> TopExamples:
    """The ``k`` images of ``data`` that excite each unit of ``layer`` most.

    Example::

        m = cw.load_model("shapes")
        top = cw.top_examples(m, "conv4", cw.generate_shapes(2000), k=9)
        top.images(7)      # (9, 64, 64, 3) uint8: channel 7's best images, best first
        top.box(7, 0)      # where channel 7 peaks on its best image
        classes = cw.top_examples(m, None, cw.generate_shapes(2000))  # per class

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        layer: the layer (index, name, path or object); ``None`` (or the output layer)
            ranks per class, by the log-odds of the class's probability.
        data: an array ``(N, H, W, C)``, a ``ShapesBatch`` or ``ShapesStream``, a list of
            image paths, a folder, a ``tf.data.Dataset`` or an iterable of batches (see
            :func:`data_source`); images are display images (uint8, or floats in
            ``[0, 1]``), the model's preprocessing is applied for you.
        k: images kept per unit.
        score: ``"mean"`` (default) or ``"max"`` of the unit's activation map.  The max,
            and the peak each result outlines (``positions``, :meth:`TopExamples.box`), are
            taken where the unit sees the image: map positions whose receptive field is
            more than a quarter zero padding (the border of a first layer, where a filter
            answers the edge between the image and the padding) are left out
            (``INSIDE_SHARE`` and ``image_share`` in :mod:`.search`).
        channels: a slice or list of the units to rank (default: all).
        batch_size: images per compiled pass.
        keep_maps: keep each top image's activation map (``result.maps``).
        key: names the content of a generator or ``tf.data`` stream (see
            :func:`data_source`).
        progress: called with a :class:`Progress` after every batch.
        stop: a ``threading.Event``; setting it ends the search after the current batch
            (the result holds what was seen, ``stopped=True``).
        backend: ``"local"``, ``"ray"`` (the data shared out among Ray actors, see
            :mod:`cnnviz_widgets.engine.dataset.distributed`) or a backend object (see
            :func:`~.backends.get_backend`); Ray needs ``pip install 'cnnviz-widgets[ray]'``.
        workers: Ray actors (default: the cluster's CPUs, at most 8).
        keep_workers: keep the Ray actors for the next call (see :func:`atlas`).
        precision: what the ranking passes run in: ``"auto"`` (default: reduced precision
            only where measured faster on this hardware with outputs within 5 % of
            float32's), ``"float32"``, ``"bfloat16"`` or ``"float16"``.  Ray workers run in
            the precision decided here (``"auto"`` is measured once, in this process).
        output: for a model with several outputs, the output whose classes a class
            ranking (``layer`` ``None``) reads: its name or index (see
            :func:`~cnnviz_widgets.select_output`); naming an output's layer as ``layer``
            ranks that output's classes.  Layer units need no output.

    Returns:
        :class:`TopExamples`.  Exact: the same as sorting every image of the data by score
        (ties: the earlier image first), scores computed in ``result.precision``; in a
        reduced precision, images whose float32 scores are closer than its resolution may
        swap places (``precision_reason`` says what was chosen and why).
    """
    chosen = get_backend(backend, workers, keep_workers)  # before any work
    search = rank_examples(
        model,
        layer,
        data,
        k=k,
        score=score,
        channels=channels,
        batch_size=batch_size,
        keep_maps=keep_maps,
        key=key,
        precision=precision,
        output=output,
    )
    return chosen.rank(search, progress, stopping_of(stop))


def top_examples_job(
    model,
    layer,
    data,
    k: int = 9,
    *,
    backend: str | LocalBackend | RayBackend = "local",
    workers: int | None = None,
    keep_workers: bool = False,
    **options,
) -> Job[TopExamples]:
    """:func:`top_examples` as a :class:`~cnnviz_widgets.engine.jobs.Job`: the same
    arguments (``options``: ``score``, ``channels``, ``batch_size``, ``keep_maps``,
    ``key``, ``precision``, ``output``, checked here), but nothing runs until the job is
    iterated or run.

    Example::

        job = cw.top_examples_job(m, "conv4", cw.generate_shapes(2000))
        for p in job:                # JobProgress: p.done images of p.total, p.item the
            ...                      # search's Progress; job.stop() from anywhere
        top = job.result             # TopExamples (what was seen, when stopped)
    """
    chosen = get_backend(backend, workers, keep_workers)
    search = rank_examples(model, layer, data, k=k, **options)

    def work(report, stopping) -> TopExamples:
        def progress(p: Progress) -> None:
            if not p.final:
                report(p.seen, p.total, item=p)

        return chosen.rank(search, progress, stopping)

    return Job(work, f"dataset examples of {search.layer}")
