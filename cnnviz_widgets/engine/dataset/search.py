"""The dataset-example search itself: one compiled pass from display images to a layer's
scores per image and unit, and :class:`ExampleSearch`, the streaming top-k over a data
source (see :mod:`.examples` for what it computes and the calls that run it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..jobs import Job
from ..layers.filters import select_indices
from ..layers.receptive_field import receptive_field
from ..model.internals import Tap, image_input, last_layer, output_shape
from ..model.introspect import get_layer, tap_shape
from ..model.loading import LoadedModel, as_loaded
from ..model.outputs import model_outputs, select_output
from ..model.precision import PrecisionChoice, model_in, resolve
from ..model.scoring import AttributionFns, Net, cached_fns
from .sources import Batch, DataSource, data_source
from .top_examples import Progress, TopExamples
from .top_k import TopK
from .unit_health import health_notes

__all__ = ["SCORES", "ExampleSearch", "drive", "log_odds", "rank_examples"]

SCORES = ("mean", "max")
"""How a unit's activation map becomes one score per image."""


# ---------------------------------------------------------------------- compiled pass
def _target(loaded: LoadedModel, layer) -> tuple[str, str]:
    """``(path, kind)``: the layer's path, and ``"class"`` for the model's output layer."""
    model = loaded.model
    if layer is None:
        return last_layer(model)[1], "class"
    found, path = get_layer(model, layer)
    if found is model or path == last_layer(model)[1]:
        shape = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else ()
        if len(shape) == 2:
            return path, "class"
    shape = tap_shape(found, path)
    if len(shape) not in (2, 4):
        raise CnnvizError(
            f"layer {path!r} outputs shape {shape}: dataset examples rank the channels of "
            "(batch, height, width, channels) or the units of (batch, units) outputs"
        )
    return path, "channel"


def ranked_model(model, layer, output=None) -> LoadedModel:
    """The model a ranking reads: for a class ranking on a model with several outputs
    (``layer`` ``None`` or an output's layer), the view of its one output (``output=``,
    or the output ``layer`` names); else the model itself (``output`` checked if given)."""
    loaded = as_loaded(model)
    call = "cw.top_examples(model, None, data, output={output})"
    infos = model_outputs(loaded)
    if len(infos) == 1 or layer is None:
        return select_output(loaded, output, call=call, what="class rankings")
    name = layer if isinstance(layer, str) else getattr(layer, "name", None)
    if output is None:
        hit = [o.index for o in infos if name in (o.name, o.layer)]
        return select_output(loaded, hit[0]) if hit else loaded
    chosen = select_output(loaded, output, call=call, what="class rankings")
    its_layer = next(o.layer for o in infos if o.name == chosen.output)
    return chosen if name in (chosen.output, its_layer) else loaded


INSIDE_SHARE = 0.75
"""A map position counts for a unit's peak when at least this share of its receptive
field lies on the image, not on the zero padding around it (or, in a layer where no
position reaches it, when its share is the largest there is)."""


def image_share(loaded: LoadedModel, path: str) -> np.ndarray | None:
    """``(h, w)``: for each position of ``path``'s output map, the share of its receptive
    field that lies on the image (1 inside, down to 0.33 at a corner of a 7x7 first layer
    with ``padding="same"``).  ``None`` when it cannot be worked out (no spatial map, a layer the
    receptive field cannot follow): then every position counts."""
    try:
        shape = tap_shape(get_layer(loaded.model, path)[0], path)
        if len(shape) != 4 or shape[1] is None or shape[2] is None:
            return None
        h, w = int(shape[1]), int(shape[2])

        def share(axis: int, i: int) -> float:
            field = receptive_field(loaded, path, *((i, 0) if axis == 0 else (0, i)))
            lo, hi = (0, 2) if axis == 0 else (1, 3)
            full = field.full_box[hi] - field.full_box[lo]
            seen = field.box[hi] - field.box[lo]
            return 1.0 if full <= 0 else min(1.0, seen / full)

        rows = np.array([share(0, y) for y in range(h)])
        cols = np.array([share(1, x) for x in range(w)])
    except (CnnvizError, ValueError, TypeError, AttributeError):
        return None
    return np.outer(rows, cols).astype(np.float32)


def _rank_fns(loaded: LoadedModel, path: str, kind: str, score: str) -> AttributionFns:
    def build():
        if kind == "class":
            net = Net(loaded, [], scores=True)
            seen = None
        else:
            net = Net(loaded, [Tap(path)], scores=False)
            share = image_share(loaded, path)
            # the peak is looked for where the unit sees the image: positions whose field is
            # partly zero padding (a first layer's border) would outline padding effects
            seen = None
            if share is not None:
                seen = share >= min(INSIDE_SHARE, float(share.max()) - 1e-6)
                seen = None if seen.all() else seen
        mask = None if seen is None else tf.constant(seen.reshape(1, -1, 1))
        h, w, c = image_input(loaded.model)

        @tf.function(input_signature=[tf.TensorSpec((None, h, w, c), tf.float32)], autograph=False)
        def rank(images):
            acts, logits, probs = net(images)
            if kind == "class":
                a = log_odds(logits) if net.prob == "softmax" else probs
            else:
                a = tf.cast(acts[0], tf.float32)
            if a.shape.rank == 4:
                shape = tf.shape(a)
                flat = tf.reshape(a, (shape[0], shape[1] * shape[2], shape[3]))
                peak = tf.reduce_max(flat, 1)  # anywhere: does the unit fire at all
                # the peak (and the max score) among the positions that see the image
                inside = flat if mask is None else tf.where(mask, flat, float("-inf"))
                value = tf.reduce_mean(flat, 1) if score == "mean" else tf.reduce_max(inside, 1)
                where = tf.argmax(inside, axis=1, output_type=tf.int32)  # (B, C)
                pos = tf.stack([where // shape[2], where % shape[2]], axis=-1)
                return value, pos, a, peak > 0
            return a, tf.zeros((tf.shape(a)[0], tf.shape(a)[1], 2), tf.int32), a, a > 0

        @tf.function(
            input_signature=[
                tf.TensorSpec(None, tf.float32),
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((None,), tf.int32),
            ],
            autograph=False,
        )
        def pick(acts, rows, channels):
            """The maps ``acts[rows[i], :, :, channels[i]]``: ``(m, h, w)``, in one call.
            Only the newcomers' rows are copied (not a transposed copy of the whole batch:
            after the first batches few images are new)."""
            return tf.gather(tf.gather(acts, rows), channels, axis=3, batch_dims=1)

        @tf.function(input_signature=pick.input_signature, autograph=False)
        def pick_many(acts, rows, channels):
            """:func:`pick` from a channels-first copy of the whole batch: for more newcomers
            than the batch has images (the first batches, where every unit takes some),
            copying each newcomer's row (all of its channels) would copy the batch's maps
            many times over: hundreds of times for 512 channels and k=9."""
            per_channel = tf.transpose(acts, (0, 3, 1, 2))  # (B, C, h, w)
            return tf.gather_nd(per_channel, tf.stack([rows, channels], axis=1))

        return AttributionFns(net, rank=rank, pick=pick, pick_many=pick_many)

    return cached_fns(loaded, ("examples", path, kind, score), build)


def log_odds(logits: tf.Tensor) -> tf.Tensor:
    """``log(p / (1 - p))`` of every class's softmax probability, from the logits.

    It orders images as the probability does, without the probability's saturation (a
    confident image has p = 1.0 in float32, and so does its log-probability: 0.0, so
    confident images would tie).  Raw logits would favour images that score high for
    every class.  The sum over the other classes is the log-sum-exp of the logits without
    the top class for the top class, and ``lse + log1p(-p)`` for the others (``p <= 0.5``
    there, so it is accurate).
    """
    z = tf.cast(logits, tf.float32)
    n = tf.shape(z)[-1]
    is_top = tf.one_hot(tf.argmax(z, axis=-1), n, on_value=True, off_value=False)
    lse = tf.reduce_logsumexp(z, axis=-1, keepdims=True)
    rest_of_top = tf.reduce_logsumexp(tf.where(is_top, -np.inf, z), axis=-1, keepdims=True)
    logp = z - lse
    rest = tf.where(is_top, rest_of_top, lse + tf.math.log1p(-tf.exp(tf.minimum(logp, -1e-7))))
    return z - rest


def _uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------- search
class ExampleSearch:
    """A dataset-example search, as an iterator of :class:`Progress` snapshots (one per
    batch).  Call :meth:`stop` from anywhere to end it after the batch in progress; the
    last snapshot has ``final=True`` and :attr:`result` holds the :class:`TopExamples`
    (with what was seen until then, when stopped).  :meth:`snapshot` gives the ranking so
    far at any time between batches."""

    def __init__(
        self,
        loaded: LoadedModel,
        path: str,
        kind: str,
        source: DataSource,
        *,
        k: int,
        score: str,
        units: np.ndarray,
        batch_size: int,
        keep_maps: bool,
        start: int = 0,
        stop: int | None = None,
        precision: PrecisionChoice | None = None,
    ):
        self.loaded = loaded
        self.precision = precision or PrecisionChoice("float32", "float32")
        self.layer = path
        self.kind = kind
        self.source = source
        self.k = k
        self.score = score
        self.units = units
        self.batch_size = batch_size
        self.keep_maps = keep_maps
        self._range = (start, stop)
        self._fns = _rank_fns(model_in(loaded, self.precision.precision), path, kind, score)
        h, w, c = image_input(loaded.model)
        shape = (
            tuple(loaded.model.outputs[0].shape)
            if kind == "class"
            else tuple(output_shape(get_layer(loaded.model, path)[0]))
        )
        spatial = len(shape) == 4
        map_shape = tuple(shape[1:3]) if spatial else None
        if not keep_maps or (map_shape is not None and None in map_shape):
            map_shape = None  # (the maps of a model that takes any size differ per image)
        self._image_shape = (h or 1, w or 1, c)
        self.state = TopK(len(units), k, spatial, map_shape)
        self._stop = threading.Event()
        self._started = False
        self._t0 = None
        self._seconds = 0.0
        self.result: TopExamples | None = None

    def stop(self) -> None:
        """Ask the search to end after the batch in progress (thread-safe)."""
        self._stop.set()

    def job(self) -> Job[TopExamples]:
        """This search as a :class:`~cnnviz_widgets.engine.jobs.Job` (the one protocol of
        long work): one progress per batch, ``done`` the images seen, ``total`` the data's
        size when known, ``item`` the search's :class:`Progress`; ``job.stop()`` ends it
        after the batch in progress and ``job.result`` is the :class:`TopExamples`."""
        return Job(
            lambda report, stopping: drive(self, _reporter(report), stopping),
            f"dataset examples of {self.layer}",
        )

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> TopExamples:
        """The ranking so far (a copy)."""
        seconds = time.perf_counter() - self._t0 if self._t0 else 0.0
        return self._result(stopped=False, seconds=seconds)

    def _result(self, stopped: bool, seconds: float) -> TopExamples:
        notes = list(self.source.notes)
        if self.kind == "class":
            notes.extend(self._fns.notes)
        out = self.state.result(
            layer=self.layer,
            kind=self.kind,
            units=self.units.copy(),
            unit_names=self.loaded.class_names if self.kind == "class" else None,
            score=self.score,
            label_names=self.source.label_names,
            total=self.source.total,
            stopped=stopped,
            seconds=seconds,
            notes=notes,
            image_shape=self._image_shape,
        )
        out.notes.extend(health_notes(out))
        out.precision = self.precision.precision
        out.precision_reason = self.precision.reason
        return out

    def __iter__(self) -> Iterator[Progress]:
        if self._started:
            raise CnnvizError("a search can be iterated once; start a new one")
        self._started = True
        self._t0 = time.perf_counter()
        start, stop = self._range
        total = self.source.total
        if total is not None:
            total = (min(stop, total) if stop is not None else total) - start
        base = start
        units = self.units
        all_units = len(units) == int(self._n_units())
        tf_units = None if all_units else tf.constant(units, tf.int32)
        for batch in self.source.batches(self.batch_size, start, stop):
            if self._stop.is_set():
                break
            self._merge(batch, base, tf_units)
            base += len(batch)
            if not self._stop.is_set():
                yield Progress(self.state.seen, total, time.perf_counter() - self._t0)
        self._seconds = time.perf_counter() - self._t0
        stopped = self._stop.is_set() and (total is None or self.state.seen < total)
        self.result = self._result(stopped, self._seconds)
        yield Progress(self.state.seen, total, self._seconds, final=True)

    def _n_units(self) -> int:
        if self.kind == "class":
            return int(self.loaded.model.outputs[0].shape[-1])
        return int(output_shape(get_layer(self.loaded.model, self.layer)[0])[-1])

    def _merge(self, batch: Batch, base: int, tf_units) -> None:
        value, pos, acts, fired = self._fns.rank(tf.constant(batch.images))
        if tf_units is not None:
            value = tf.gather(value, tf_units, axis=1)
            pos = tf.gather(pos, tf_units, axis=1)
            fired = tf.gather(fired, tf_units, axis=1)
        scores = value.numpy()
        positions = pos.numpy() if self.state.positions is not None else None
        units = self.units

        def fetch_maps(rows, which):
            # only the newcomers' maps leave the compiled pass
            pick = self._fns.pick if len(rows) <= len(batch) else self._fns.pick_many
            rows = tf.constant(np.asarray(rows, np.int32))
            return pick(acts, rows, tf.constant(units[which].astype(np.int32))).numpy()

        cache: dict[int, np.ndarray] = {}

        def image(r: int) -> np.ndarray:
            if r not in cache:
                cache[r] = _uint8(batch.images[r])
            return cache[r]

        self.state.offer(
            scores,
            base,
            images=image,
            labels=batch.labels,
            positions=positions,
            fetch_maps=fetch_maps if self.state.maps is not None else None,
            sources=batch.sources,
            fired=fired.numpy() if self.kind == "channel" else None,
        )


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise CnnvizError(
            f"k is the number of images kept per unit, a whole number >= 1; got {k!r}"
        )
    return int(k)


def rank_examples(
    model,
    layer,
    data,
    *,
    k: int = 9,
    score: str = "mean",
    channels=None,
    batch_size: int = 64,
    keep_maps: bool = True,
    key: str | None = None,
    precision: str = "auto",
    output=None,
) -> ExampleSearch:
    """Prepare a dataset-example search and return it as an :class:`ExampleSearch`
    (nothing runs until you iterate it).  Arguments as :func:`top_examples`; the
    precision is decided here (``"auto"``: measured once per model and batch)."""
    loaded = ranked_model(model, layer, output)
    k = _check_k(k)
    if score not in SCORES:
        raise CnnvizError(f"unknown score {score!r}: use one of {', '.join(SCORES)}")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or (batch_size < 1)
    ):
        raise CnnvizError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
    path, kind = _target(loaded, layer)
    source = data_source(data, loaded, key=key)
    n = (
        int(loaded.model.outputs[0].shape[-1])
        if kind == "class"
        else int(output_shape(get_layer(loaded.model, path)[0])[-1])
    )
    units = select_indices(n, channels, "classes" if kind == "class" else "channels", path)
    choice = resolve(loaded, precision, "forward", batch=int(batch_size))
    return ExampleSearch(
        loaded,
        path,
        kind,
        source,
        k=k,
        score=score,
        units=np.asarray(units, np.int64),
        batch_size=int(batch_size),
        keep_maps=keep_maps,
        precision=choice,
    )


def drive(
    search: ExampleSearch,
    progress: Callable[[Progress], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> TopExamples:
    """Run a search to its end in this thread, reporting every :class:`Progress` and
    ending it after the batch in progress once ``stopping()`` is true."""
    if stopping is not None and stopping():
        search.stop()
    for p in search:
        if progress is not None:
            progress(p)
        if stopping is not None and stopping():
            search.stop()
    return search.result


def _reporter(report: Callable[..., None]) -> Callable[[Progress], None]:
    """A :class:`Progress` callback that feeds a job's ``report``."""

    def progress(p: Progress) -> None:
        if not p.final:  # the job makes its own final progress
            report(p.seen, p.total, item=p)

    return progress
