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

``backend="ray"`` runs the same plan on a Ray cluster (see :mod:`.distributed`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...errors import CnnvizError
from ..layers.filters import filter_montage, kernel_array
from ..model.introspect import has_kernel
from ..model.loading import as_loaded
from ..optvis.presets import Preset
from .atlas_plan import AtlasPlan, class_weights, unit_examples, visualize_chunk
from .examples import rank_examples
from .top_examples import TopExamples

__all__ = [
    "Atlas",
    "AtlasProgress",
    "AtlasUnit",
    "atlas",
    "class_weights",
    "open_atlas",
]

"""Bumped when what a stored unit means changes (its key includes it)."""


@dataclass
class AtlasProgress:
    """What an atlas run reports.

    Attributes:
        phase: ``"visualization"`` or ``"examples"``.
        done: units of this phase finished (including those found in the store).
        total: units asked for.
        new: the units finished since the last report (now readable from the store).
        seconds: time since the run started.
        live: ``{channel: (H, W, C) uint8}`` the images of the chunk being optimized, at
            its current step (visualization phase), else empty.
        step: the current chunk's step (visualization phase).
        seen: images read so far (examples phase).
        images: images in the data, when known (examples phase).
        final: the last report of the run.
    """

    phase: str
    done: int
    total: int
    new: list[int] = field(default_factory=list)
    seconds: float = 0.0
    live: dict = field(default_factory=dict)
    step: int = 0
    seen: int = 0
    images: int | None = None
    final: bool = False


@dataclass
class AtlasUnit:
    """One unit of an atlas.

    Attributes:
        layer: the layer's path.
        channel: the unit's index.
        image: its feature visualization ``(H, W, C)`` uint8, or ``None`` (not computed).
        value: the objective the visualization reached (mean activation of the unit).
        kernel: its filter as an RGBA thumbnail ``(kh, kw, 4)`` uint8, for convolutions.
        kernel_view: what the thumbnail shows, e.g. ``"7x7, RGB"`` or ``"3x3, mean of 32
            inputs"`` (a kernel over many input channels is drawn as their mean, in grey).
        examples: its top dataset images ``(m, H, W, C)`` uint8, best first, or ``None``.
        example_scores, example_indices, example_labels: per example image.
        example_boxes: ``(m, 4)`` ``x0, y0, x1, y1`` of the map cell where it peaks.
        example_maps: ``(m, h, w)`` its activation map on each example.
        example_sources: the file of each example (path sources).
        label_names: the names of the data's labels, when known.
        classes: for a layer that feeds the classifier through global pooling, the classes
            it feeds most: ``[(class index, name, weight), ...]``, largest weight first.
    """

    layer: str
    channel: int
    image: np.ndarray | None = None
    value: float | None = None
    kernel: np.ndarray | None = None
    kernel_view: str | None = None
    examples: np.ndarray | None = None
    example_scores: np.ndarray | None = None
    example_indices: np.ndarray | None = None
    example_labels: np.ndarray | None = None
    example_boxes: np.ndarray | None = None
    example_maps: np.ndarray | None = None
    example_sources: list | None = None
    label_names: list | None = None
    classes: list | None = None


# ------------------------------------------------------------------------------ view
class Atlas:
    """The units of an atlas, read from its store (what :func:`atlas` and
    :func:`open_atlas` return).

    Attributes:
        layer: the layer's path.
        units: the channels asked for.
        vis_store, examples_store: the stores (``examples_store`` is ``None`` without
            data, or for a stream with no ``key``: its examples stay in memory).
        computed: units computed by this run (visualization phase).
        reused: asked-for units found in the store already.
        stopped: the run was stopped before the end.
        seconds: wall time of the run.
        notes: caveats (data fitted to the model, examples not stored...).
    """

    def __init__(self, plan: AtlasPlan):
        self._plan = plan
        self.loaded = plan.loaded
        self.layer = plan.layer
        self.units = list(plan.units)
        self.vis_store = plan.vis_store
        self.examples_store = plan.examples_store
        self.computed: list[int] = []
        self.reused: list[int] = []
        self.stopped = False
        self.seconds = 0.0
        self.notes: list[str] = []
        self.examples_in_memory: TopExamples | None = None
        self._kernels = None
        self._classes = class_weights(plan.loaded, plan.layer)

    def __repr__(self) -> str:
        return (
            f"Atlas({self.layer!r}, {len(self.done())}/{len(self.units)} units done, "
            f"store={str(self.vis_store.path)!r})"
        )

    @property
    def has_data(self) -> bool:
        return self._plan.source is not None

    def done(self) -> set[int]:
        """Asked-for units whose visualization (and examples, with data) are stored."""
        vis = self.vis_store.done()
        out = {c for c in self.units if c in vis}
        if self.examples_store is not None:
            ex = self.examples_store.done()
            out = {c for c in out if c in ex}
        elif self.has_data and self.examples_in_memory is None:
            out = set()
        return out

    @property
    def complete(self) -> bool:
        return len(self.done()) == len(self.units)

    def kernel(self, channel: int) -> np.ndarray | None:
        """The unit's filter as an RGBA thumbnail, for convolution layers."""
        if not has_kernel(self._plan.found):
            return None
        if self._kernels is None:
            n = kernel_array(self._plan.found).shape[3]
            self._kernels = n == self._plan.n
        if not self._kernels:
            return None
        return filter_montage(self.loaded, self.layer, filters=[int(channel)], padding=0).image

    def kernel_view(self) -> str | None:
        """What :meth:`kernel` draws: ``"KxK, RGB"`` for a layer that sees three channels,
        else ``"KxK, mean of N inputs"`` (``filter_montage``'s automatic view)."""
        if not has_kernel(self._plan.found):
            return None
        kh, kw, n_in = kernel_array(self._plan.found).shape[:3]
        return f"{kh}x{kw}, " + ("RGB" if n_in == 3 else f"mean of {n_in} inputs")

    def classes(self, channel: int, top: int = 3) -> list | None:
        """The classes the unit feeds most (see :func:`class_weights`), or ``None``."""
        if self._classes is None:
            return None
        w = self._classes[int(channel)]
        names = self.loaded.class_names
        order = np.argsort(-w, kind="stable")[:top]
        return [(int(j), names[j] if names else str(j), float(w[j])) for j in order]

    def image(self, channel: int) -> np.ndarray | None:
        """The unit's visualization, or ``None`` when not computed yet."""
        got = self.vis_store.load(channel)
        return None if got is None else got["image"]

    def unit(self, channel: int) -> AtlasUnit:
        """Everything known about one unit (what is not computed yet is ``None``)."""
        c = int(channel)
        if not 0 <= c < self._plan.n:
            raise CnnvizError(
                f"channel {c} is out of range: {self.layer!r} has channels 0..{self._plan.n - 1}"
            )
        kernel = self.kernel(c)
        out = AtlasUnit(
            self.layer,
            c,
            kernel=kernel,
            kernel_view=None if kernel is None else self.kernel_view(),
            classes=self.classes(c),
        )
        vis = self.vis_store.load(c)
        if vis is not None:
            out.image = vis["image"]
            out.value = vis["meta"].get("value")
        ex = None
        if self.examples_store is not None:
            ex = self.examples_store.load(c)
        elif self.examples_in_memory is not None and c in self.examples_in_memory.units:
            arrays, meta = unit_examples(self.examples_in_memory, c)
            ex = {**arrays, "meta": meta}
        if ex is not None:
            out.examples = ex["examples"]
            out.example_scores = ex["scores"]
            out.example_indices = ex["indices"]
            out.example_labels = ex["labels"]
            out.example_boxes = ex.get("boxes")
            out.example_maps = ex.get("maps")
            out.example_sources = ex["meta"].get("sources")
            out.label_names = ex["meta"].get("label_names")
        return out


# ------------------------------------------------------------------------------- runs
def _run_local(plan: AtlasPlan, result: Atlas, progress, stop) -> None:
    t0 = time.perf_counter()
    stop = stop or threading.Event()
    total = len(plan.units)
    asked = set(plan.units)

    def say(**kw):
        if progress is not None:
            progress(AtlasProgress(total=total, seconds=time.perf_counter() - t0, **kw))

    done = len(asked & plan.vis_store.done())
    for chunk in plan.missing_chunks():
        if stop.is_set():
            break
        channels = plan.chunk_channels(chunk)
        if all(plan.vis_store.has(c) for c in channels):  # another writer finished it
            continue

        def live(step, images, channels=channels, done=done):
            say(
                phase="visualization",
                done=done,
                live={c: img for c, img in zip(channels, images) if c in asked},
                step=step,
            )

        images, values, finished = visualize_chunk(
            plan.loaded,
            plan.layer,
            channels,
            spatial=plan.spatial,
            preset=plan.preset,
            steps=plan.steps,
            seed=plan.chunk_seed(chunk),
            stop=stop,
            report=live,
            precision=plan.vis_precision().precision,
        )
        if not finished:
            say(
                phase="visualization",
                done=done,
                live={c: img for c, img in zip(channels, images) if c in asked},
                step=-1,
            )
            break
        plan.write_vis(channels, images, values)
        new = [c for c in channels if c in asked]
        result.computed.extend(new)
        done = len(asked & plan.vis_store.done())
        say(phase="visualization", done=done, new=new)
    missing = plan.missing_examples()
    if missing and not stop.is_set():
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
        for p in search:
            if stop.is_set():
                search.stop()
            if not p.final:
                say(phase="examples", done=total - len(missing), seen=p.seen, images=p.total)
        top = search.result
        if not top.stopped:
            plan.write_examples(top)
            if plan.examples_store is None:
                result.examples_in_memory = top
            say(phase="examples", done=total, new=missing, seen=top.seen, images=top.total)
        result.notes.extend(n for n in top.notes if n not in result.notes)
    result.stopped = stop.is_set() and not result.complete
    result.seconds = time.perf_counter() - t0


def open_atlas(
    model,
    layer,
    data=None,
    *,
    channels=None,
    store=None,
    preset: str | Preset = "lucid",
    steps: int | None = None,
    batch: int = 16,
    seed: int = 0,
    k: int = 9,
    score: str = "mean",
    examples_batch: int = 64,
    key: str | None = None,
    precision: str = "auto",
) -> Atlas:
    """The atlas of a layer as stored so far, computing nothing (arguments as
    :func:`atlas`: the same settings find the same store)."""
    plan = AtlasPlan(
        as_loaded(model),
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
    backend: str = "local",
    preset: str | Preset = "lucid",
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
        preset, steps, seed: as :func:`optimize` (``steps`` default: the preset's).
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
    )
    if backend not in ("local", "ray"):
        raise CnnvizError(f"unknown backend {backend!r}: use 'local' or 'ray'")
    if backend == "ray":
        from .distributed import require_ray

        require_ray()  # before any work: a clear message when Ray is missing
    out = open_atlas(model, layer, data, **settings)
    plan = out._plan
    if backend == "ray":
        from .distributed import ray_atlas

        ray_atlas(
            plan, out, progress=progress, stop=stop, workers=workers, keep_workers=keep_workers
        )
    else:
        _run_local(plan, out, progress, stop)
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
    return out
