"""The unit atlas: every unit of a layer with its feature visualization, its dataset examples
and its kernel, computed once into a durable store and read back from there.

Olah et al. ("Feature Visualization", Distill 2017) show a unit's visualization beside the
dataset images that excite it most, since either alone misleads; OpenAI Microscope does it
for a fixed list of models.  :func:`atlas` does it for the user's model and data:

- visualizations are optimized ``batch`` channels at a time in one compiled step (one
  image per channel), in a fixed plan of chunks (channels ``0..batch-1``, ``batch..``) with
  a seed per chunk, so a unit's image does not depend on which units were asked for, on
  resuming, or on the backend;
- dataset examples come from one pass over the data for all units (:func:`top_examples`);
- each unit's results go to a :class:`~cnnviz_widgets.engine.dataset.store.UnitStore` file as soon
  as they are finished: a restarted kernel, a stopped run or another process finds them
  there, keyed by the model's weights and the settings.

``backend="ray"`` runs the same plan on a Ray cluster (see :mod:`.distributed`; the
backend is chosen in :mod:`.backends`).  :func:`atlas_job` is :func:`atlas` as a
:class:`~cnnviz_widgets.engine.jobs.Job`; the atlas' types are in :mod:`.atlas_units`.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable

from ..jobs import Job
from ..model.loading import as_loaded
from ..model.outputs import select_output
from ..optvis.presets import Preset
from .atlas_plan import AtlasPlan, class_weights
from .atlas_units import Atlas, AtlasProgress, AtlasUnit
from .backends import LocalBackend, RayBackend, get_backend, stopping_of

__all__ = [
    "Atlas",
    "AtlasPlan",
    "AtlasProgress",
    "AtlasUnit",
    "atlas",
    "atlas_job",
    "class_weights",
    "open_atlas",
]


def open_atlas(
    model,
    layer,
    data=None,
    *,
    channels=None,
    store=None,
    preset: str | Preset = "auto",
    steps: int | None = None,
    batch: int = 16,
    seed: int = 0,
    k: int = 9,
    score: str = "mean",
    examples_batch: int = 64,
    key: str | None = None,
    precision: str = "auto",
    output=None,
) -> Atlas:
    """The atlas of a layer as stored so far, computing nothing (arguments as
    :func:`atlas`: the same settings find the same store)."""
    loaded = as_loaded(model)
    if output is not None:  # the units' classes are this output's
        loaded = select_output(loaded, output, call="cw.atlas(model, layer, data, output={output})")
    plan = AtlasPlan(
        loaded,
        layer,
        data,
        channels=channels,
        store=store,
        preset=preset,
        steps=steps,
        batch=batch,
        seed=seed,
        k=k,
        score=score,
        examples_batch=examples_batch,
        key=key,
        precision=precision,
    )
    out = Atlas(plan)
    out.reused = sorted(out.done())
    _note_unkeyed(plan, out)
    return out


def _note_unkeyed(plan: AtlasPlan, out: Atlas) -> None:
    if plan.source is not None and plan.examples_store is None:
        out.notes.append(
            f"the data is a {plan.source.kind} stream with no key, so its dataset examples "
            "are kept in memory, not stored: pass key='a name for this data' to store them"
        )


def atlas(
    model,
    layer,
    data=None,
    *,
    channels=None,
    store=None,
    backend: str | LocalBackend | RayBackend = "local",
    preset: str | Preset = "auto",
    steps: int | None = None,
    batch: int = 16,
    seed: int = 0,
    k: int = 9,
    score: str = "mean",
    examples_batch: int = 64,
    key: str | None = None,
    progress: Callable[[AtlasProgress], None] | None = None,
    stop: threading.Event | None = None,
    workers: int | None = None,
    keep_workers: bool = False,
    precision: str = "auto",
    output=None,
) -> Atlas:
    """Compute the atlas of a layer: for every channel (or ``channels``), its feature
    visualization, its top dataset examples (when ``data`` is given) and its kernel, into a
    durable store.  Units already in the store are not computed again.

    Example::

        m = cw.load_model("shapes")
        at = cw.atlas(m, "conv4", cw.generate_shapes(2000), store="atlas-store", steps=128)
        unit = at.unit(7)
        unit.image, unit.examples, unit.kernel, unit.classes

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes.
        layer: the layer (index, name, path or object).
        data: a data set for the dataset examples (anything :func:`top_examples` takes),
            or ``None`` for none.
        channels: a slice or list of channels (default: all).
        store: the store's root directory (default ``$CNNVIZ_STORE/atlas`` or
            ``~/.cache/cnnviz_widgets/atlas``); put it on shared storage for a cluster.
        backend: ``"local"`` (this process) or ``"ray"`` (a pool of Ray actors, each
            compiling the model once; the caller's ``ray.init(address=...)`` or a local
            Ray).  Ray needs ``pip install 'cnnviz-widgets[ray]'``.
        preset, steps, seed: as :func:`optimize` (``preset="auto"``: the model's own recipe,
            see ``optvis.register_recipe``; ``steps`` default: the preset's).
        batch: channels optimized together in one compiled step (one image each).
        k, score: dataset examples per unit and how they are scored (see
            :func:`top_examples`).
        examples_batch: images per compiled pass when ranking the data.
        key: a name for a generator or ``tf.data`` stream's content, so that its
            examples can be stored (without one they are kept in memory only).
        progress: called with an :class:`AtlasProgress` as units finish (and, while a
            chunk is optimized, with its current images).
        stop: a ``threading.Event``; setting it ends the run after the current step (the
            finished units stay in the store; the chunk in progress is not stored).
        workers: Ray actors (default: the cluster's CPUs, at most 8).
        keep_workers: keep the Ray actors (and their compiled model) for the next call on
            the same model, instead of killing them at the end; release them with
            ``cnnviz_widgets.engine.dataset.distributed.shutdown_workers()``.
        precision: what the visualizations and the ranking run in: ``"auto"`` (default:
            each decided once per model and batch on this machine, the visualizations by a
            short optimization probe, the ranking by its outputs; see
            :func:`~cnnviz_widgets.choose_precision`), ``"float32"``, ``"bfloat16"`` or
            ``"float16"``.  Ray workers run in the precision decided here.  Each stored
            unit records the precision it was made in (the store is shared by every
            precision: a unit already stored is not made again in another).
        output: for a model with several outputs, the output whose classes each unit's
            ``classes`` are read from (its name or index, see
            :func:`~cnnviz_widgets.select_output`; the layer must lead to it).  The unit
            pictures and examples read the layer only: without it they work on any
            model, and the units of a model with several outputs have no ``classes``.

    Returns:
        An :class:`Atlas` reading the store; its ``notes`` say what each part ran in.
    """
    settings = dict(
        channels=channels,
        store=store,
        preset=preset,
        steps=steps,
        batch=batch,
        seed=seed,
        k=k,
        score=score,
        examples_batch=examples_batch,
        key=key,
        precision=precision,
        output=output,
    )
    chosen = get_backend(backend, workers, keep_workers)  # before any work
    out = open_atlas(model, layer, data, **settings)
    _compute(out, chosen, progress, stopping_of(stop))
    return out


def _compute(out: Atlas, backend, progress, stopping) -> None:
    """Compute what ``out``'s store lacks on ``backend``, then report the final progress."""
    backend.atlas(out._plan, out, progress, stopping)
    plan = out._plan
    if out.computed:
        out.notes.append(f"visualizations: {plan.vis_precision().reason}")
    if "rank" in plan._choices:
        out.notes.append(f"dataset examples: {plan.rank_precision().reason}")
    if progress is not None:
        progress(
            AtlasProgress(
                phase="done",
                done=len(out.done()),
                total=len(out.units),
                seconds=out.seconds,
                final=True,
            )
        )


def atlas_job(
    model,
    layer,
    data=None,
    *,
    backend: str | LocalBackend | RayBackend = "local",
    workers: int | None = None,
    keep_workers: bool = False,
    **settings,
) -> Job[Atlas]:
    """:func:`atlas` as a :class:`~cnnviz_widgets.engine.jobs.Job`: the same arguments
    (``settings``: ``channels``, ``store``, ``preset``, ``steps``, ``batch``, ``seed``,
    ``k``, ``score``, ``examples_batch``, ``key``, ``precision``, ``output``, as
    :func:`open_atlas` takes them; an
    unknown one is refused here), but nothing runs, and the store is not opened, until
    the job is iterated or run.

    Its progress: ``done`` units of ``total``, ``item`` the :class:`AtlasProgress`; the
    first one has ``phase="open"`` and the :class:`Atlas` as found in the store (its
    ``atlas``), so that a viewer can show the stored units while the others are computed.
    ``job.stop()`` ends the run after the current step (finished units stay stored);
    ``job.result`` is the :class:`Atlas`.

    Example::

        job = cw.atlas_job(m, "conv4", cw.generate_shapes(2000), store="atlas-store")
        for p in job:
            print(p.done, p.total, p.item.phase)
        job.result.unit(7)
    """
    inspect.signature(open_atlas).bind(model, layer, data, **settings)  # TypeError now
    chosen = get_backend(backend, workers, keep_workers)  # before any work

    def work(report, stopping) -> Atlas:
        out = open_atlas(model, layer, data, **settings)
        total = len(out.units)
        done = len(out.done())
        report(done, total, item=AtlasProgress(phase="open", done=done, total=total, atlas=out))

        def progress(p: AtlasProgress) -> None:
            if not p.final:
                report(p.done, p.total, item=p)

        _compute(out, chosen, progress, stopping)
        return out

    name = layer if isinstance(layer, str) else "a layer"
    return Job(work, f"atlas of {name}")
