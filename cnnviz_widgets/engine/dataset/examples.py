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
from any thread, like :func:`optimize`); :func:`top_examples` runs it to the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError
from ..layers.filters import select_indices
from ..model.internals import Tap, image_input, last_layer, output_shape
from ..model.introspect import get_layer, tap_shape
from ..model.loading import LoadedModel, as_loaded
from ..model.scoring import AttributionFns, Net, cached_fns
from .sources import Batch, DataSource, data_source

__all__ = [
    "SCORES",
    "ExampleSearch",
    "Progress",
    "TopExamples",
    "log_odds",
    "rank_examples",
    "top_examples",
]

SCORES = ("mean", "max")
"""How a unit's activation map becomes one score per image."""

_LAST = np.iinfo(np.int64).max  # sort key of an empty slot: after every real image


# ----------------------------------------------------------------------------- result
@dataclass
class TopExamples:
    """The images of a data set that excite each unit of a layer most.

    Row ``i`` of every array is unit ``units[i]``; column ``j`` its ``j``-th best image.
    A unit that saw fewer than ``k`` images has empty slots: index ``-1``, score ``-inf``.

    Attributes:
        layer: the layer's path.
        kind: ``"channel"`` (a layer's channels or units) or ``"class"`` (the output's
            classes, ranked by the log-odds of their probability).
        units: ``(n,)`` the channel (or class) index of each row.
        unit_names: the class names (``kind="class"``), else ``None``.
        score: ``"mean"`` or ``"max"`` over the activation map.
        k: images kept per unit.
        scores: ``(n, k)`` float32, best first.
        indices: ``(n, k)`` int64, each image's position in the data stream.
        labels: ``(n, k)`` int64, the image's label from the data (``-1`` when unknown).
        positions: ``(n, k, 2)`` int32 ``(row, column)`` of the map's maximum, or ``None``
            for a layer without spatial axes.
        maps: ``(n, k, h, w)`` float32, the unit's activation map on each image, or
            ``None`` (no spatial axes, or ``keep_maps=False``).
        pool: ``(P, H, W, C)`` uint8, the distinct images kept (several units can share one).
        slots: ``(n, k)`` int, each image's row in ``pool`` (``-1`` empty).
        sources: the file of each pooled image (path sources), else ``None``.
        label_names: names of the data's labels (a folder's sub-folders), when known.
        seen: images read.
        total: images in the data, when known before reading.
        stopped: the search was stopped before the end of the data.
        seconds: wall time.
        notes: what was changed to fit the images to the model, and caveats.
    """

    layer: str
    kind: str
    units: np.ndarray
    unit_names: list[str] | None
    score: str
    k: int
    scores: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    positions: np.ndarray | None
    maps: np.ndarray | None
    pool: np.ndarray
    slots: np.ndarray
    sources: list[str | None] | None = None
    label_names: list[str] | None = None
    seen: int = 0
    total: int | None = None
    stopped: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def row(self, unit: int) -> int:
        """The row of channel (or class) ``unit`` in the arrays."""
        hits = np.flatnonzero(self.units == int(unit))
        if not len(hits):
            shown = _span(self.units)
            raise CnnvizError(
                f"unit {unit} was not ranked: this result holds {self.kind}s {shown} of "
                f"{self.layer!r}; rank it with channels=[{unit}, ...]"
            )
        return int(hits[0])

    def images(self, unit: int) -> np.ndarray:
        """The top images of ``unit``, best first: ``(m, H, W, C)`` uint8 (``m <= k``)."""
        slots = self.slots[self.row(unit)]
        return self.pool[slots[slots >= 0]]

    def box(self, unit: int, rank: int = 0) -> tuple[int, int, int, int] | None:
        """``(x0, y0, x1, y1)`` in image pixels of the map cell where ``unit`` peaks on its
        ``rank``-th image (the cell's share of the image; its receptive field is larger),
        or ``None`` for a layer without spatial axes or an empty slot."""
        if self.positions is None or self.maps is None:
            return None
        r = self.row(unit)
        if self.slots[r, rank] < 0:
            return None
        h, w = self.maps.shape[2:]
        height, width = self.pool.shape[1:3]
        y, x = (int(v) for v in self.positions[r, rank])
        return (
            x * width // w,
            y * height // h,
            -(-(x + 1) * width // w),
            -(-(y + 1) * height // h),
        )

    def name(self, unit: int) -> str:
        """``"channel 7"`` or the class name."""
        if self.unit_names and 0 <= unit < len(self.unit_names):
            return self.unit_names[unit]
        return f"{self.kind} {unit}"


def _span(units: np.ndarray) -> str:
    if len(units) and np.array_equal(units, np.arange(units[0], units[0] + len(units))):
        return f"{units[0]}..{units[-1]}"
    return ", ".join(map(str, units[:8])) + (" ..." if len(units) > 8 else "")


@dataclass
class Progress:
    """A snapshot of a search.

    Attributes:
        seen: images read so far.
        total: images in the data, when known.
        seconds: time since the search started.
        final: the last snapshot (finished or stopped).
    """

    seen: int
    total: int | None
    seconds: float
    final: bool = False

    @property
    def fraction(self) -> float | None:
        """``seen / total``, or ``None`` when the total is unknown."""
        return self.seen / self.total if self.total else None

    @property
    def images_per_second(self) -> float:
        return self.seen / self.seconds if self.seconds > 0 else 0.0


# ----------------------------------------------------------------------- streaming top-k
class TopK:
    """The streaming top-k state: per unit, the k best images seen so far.

    Memory: units x k scores, maps and (shared) images, whatever the data's size.
    """

    def __init__(self, n: int, k: int, spatial: bool, map_shape: tuple | None = None):
        self.n, self.k = n, k
        self.scores = np.full((n, k), -np.inf, np.float32)
        self.indices = np.full((n, k), -1, np.int64)
        self.labels = np.full((n, k), -1, np.int64)
        self.slots = np.full((n, k), -1, np.int64)
        self.positions = np.zeros((n, k, 2), np.int32) if spatial else None
        self.maps = np.zeros((n, k, *map_shape), np.float32) if map_shape else None
        # the pooled images: one per distinct image held by some unit
        self.pool: list[np.ndarray | None] = []
        self.refs: list[int] = []
        self.free: list[int] = []
        self.where: dict[int, int] = {}  # stream index -> pool slot
        self.index_of: list[int] = []  # pool slot -> stream index
        self.pool_sources: list[str | None] = []
        self.seen = 0

    def _incref(self, index: int, image: np.ndarray, source) -> int:
        slot = self.where.get(index)
        if slot is None:
            if self.free:
                slot = self.free.pop()
                self.pool[slot] = image
                self.pool_sources[slot] = source
                self.refs[slot] = 0
                self.index_of[slot] = index
            else:
                slot = len(self.pool)
                self.pool.append(image)
                self.pool_sources.append(source)
                self.refs.append(0)
                self.index_of.append(index)
            self.where[index] = slot
        self.refs[slot] += 1
        return slot

    def _decref(self, slot: int) -> None:
        self.refs[slot] -= 1
        if self.refs[slot] == 0:
            self.pool[slot] = None
            self.pool_sources[slot] = None
            del self.where[self.index_of[slot]]
            self.free.append(slot)

    def held_images(self) -> int:
        """How many images the state holds (at most units x k)."""
        return len(self.where)

    def offer(
        self,
        scores: np.ndarray,
        base: int,
        *,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        positions: np.ndarray | None = None,
        fetch_maps: Callable | None = None,
        sources: list | None = None,
        indices: np.ndarray | None = None,
    ) -> int:
        """Merge a batch: ``scores`` ``(B, n)``; the images are stream items ``base..base+B``
        (or ``indices``).  ``images`` ``(B, H, W, C)`` uint8 (or a function of a batch row
        giving one); ``positions`` ``(B, n, 2)``; ``fetch_maps(rows, units)`` gives the maps
        of the newcomers ``(m, h, w)``.  Returns how many (unit, image) entries came in."""
        b = scores.shape[0]
        s = np.where(np.isnan(scores), -np.inf, scores).T.astype(np.float32)  # (n, B)
        idx = np.arange(base, base + b, dtype=np.int64) if indices is None else indices
        self.seen += b
        if b == 0:
            return 0
        # a unit takes part only if the batch can beat its k-th image (ties go to the
        # earlier image, which is the one already held)
        full = self.indices[:, -1] >= 0
        rows = np.flatnonzero(~full | (s.max(axis=1) > self.scores[:, -1]))
        if not len(rows):
            return 0
        k = self.k
        cand_s = np.concatenate([self.scores[rows], s[rows]], axis=1)
        cand_i = np.concatenate([self.indices[rows], np.broadcast_to(idx, (len(rows), b))], axis=1)
        key = np.where(cand_i < 0, _LAST, cand_i)
        order = np.lexsort((key, -cand_s), axis=-1)[:, :k]  # best score, then earliest
        new = order >= k
        if not new.any():
            return 0
        # entries pushed out release their images
        old_slots = self.slots[rows]
        kept = np.zeros(old_slots.shape, bool)
        rr, cc = np.nonzero(~new)
        kept[rr, order[rr, cc]] = True
        for slot in old_slots[~kept & (old_slots >= 0)]:
            self._decref(int(slot))
        src = np.where(new, 0, order)
        self.scores[rows] = np.take_along_axis(cand_s, order, axis=1)
        self.indices[rows] = np.take_along_axis(cand_i, order, axis=1)
        self.labels[rows] = np.take_along_axis(self.labels[rows], src, axis=1)
        self.slots[rows] = np.take_along_axis(old_slots, src, axis=1)
        if self.positions is not None:
            self.positions[rows] = np.take_along_axis(self.positions[rows], src[..., None], axis=1)
        if self.maps is not None:
            self.maps[rows] = np.take_along_axis(self.maps[rows], src[..., None, None], axis=1)
        # the newcomers
        nr, nc = np.nonzero(new)
        units = rows[nr]
        brow = order[nr, nc] - k
        if labels is not None:
            self.labels[units, nc] = labels[brow]
        if self.positions is not None and positions is not None:
            self.positions[units, nc] = positions[brow, units]
        if self.maps is not None and fetch_maps is not None:
            self.maps[units, nc] = fetch_maps(brow, units)
        for u, c, r in zip(units, nc, brow):
            image = images(int(r)) if callable(images) else images[r]
            source = sources[r] if sources is not None else None
            self.slots[u, c] = self._incref(int(idx[r]), image, source)
        return len(units)

    def merge(self, other: TopExamples) -> None:
        """Merge a result computed on another part of the same stream (its ``indices`` are
        positions in the whole stream, none shared with what this state saw)."""
        if other.k != self.k or other.scores.shape[0] != self.n:
            raise CnnvizError("cannot merge rankings of different units or k")
        for j in range(other.k):  # column by column: each is a batch of n images
            valid = other.indices[:, j] >= 0
            if not valid.any():
                continue
            # one "batch" per column: every unit offers its own image; other units skip it
            for u in np.flatnonzero(valid):
                self._offer_one(other, int(u), j)
        self.seen += other.seen

    def _offer_one(self, other: TopExamples, u: int, j: int) -> None:
        score = float(other.scores[u, j])
        index = int(other.indices[u, j])
        k = self.k
        cand_s = np.append(self.scores[u], score)
        cand_i = np.append(self.indices[u], index)
        key = np.where(cand_i < 0, _LAST, cand_i)
        order = np.lexsort((key, -cand_s))[:k]
        if k not in order:
            return
        out = [c for c in range(k) if c not in order]
        for c in out:
            if self.slots[u, c] >= 0:
                self._decref(int(self.slots[u, c]))
        src = np.where(order == k, 0, order)
        pos = int(np.flatnonzero(order == k)[0])
        for name in ("scores", "indices", "labels", "slots"):
            arr = getattr(self, name)
            arr[u] = arr[u][src]
        self.scores[u, pos], self.indices[u, pos] = score, index
        self.labels[u, pos] = other.labels[u, j]
        if self.positions is not None:
            self.positions[u] = self.positions[u][src]
            if other.positions is not None:
                self.positions[u, pos] = other.positions[u, j]
        if self.maps is not None:
            self.maps[u] = self.maps[u][src]
            if other.maps is not None:
                self.maps[u, pos] = other.maps[u, j]
        slot = int(other.slots[u, j])
        source = other.sources[slot] if other.sources else None
        self.slots[u, pos] = self._incref(index, other.pool[slot], source)

    def result(self, **info) -> TopExamples:
        """The state as a :class:`TopExamples` (the pool compacted; arrays copied)."""
        live = sorted(self.where.values())
        remap = np.full(max(len(self.pool), 1), -1, np.int64)
        remap[live] = np.arange(len(live))
        slots = np.where(self.slots >= 0, remap[np.maximum(self.slots, 0)], -1)
        if live:
            shapes = {self.pool[s].shape for s in live}
            if len(shapes) > 1:
                raise CnnvizError(
                    f"the top images have different sizes {sorted(shapes)} (the model takes "
                    "any size): resize the data to one size first"
                )
            pool = np.stack([self.pool[s] for s in live])
        else:
            shape = info.pop("image_shape", (1, 1, 3))
            pool = np.zeros((0, *shape), np.uint8)
        info.pop("image_shape", None)
        sources = [self.pool_sources[s] for s in live]
        return TopExamples(
            k=self.k,
            scores=self.scores.copy(),
            indices=self.indices.copy(),
            labels=self.labels.copy(),
            positions=None if self.positions is None else self.positions.copy(),
            maps=None if self.maps is None else self.maps.copy(),
            pool=pool,
            slots=slots,
            sources=sources if any(s is not None for s in sources) else None,
            seen=self.seen,
            **info,
        )


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


def _rank_fns(loaded: LoadedModel, path: str, kind: str, score: str) -> AttributionFns:
    def build():
        if kind == "class":
            net = Net(loaded, [], scores=True)
        else:
            net = Net(loaded, [Tap(path)], scores=False)
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
                value = tf.reduce_mean(flat, 1) if score == "mean" else tf.reduce_max(flat, 1)
                where = tf.argmax(flat, axis=1, output_type=tf.int32)  # (B, C)
                pos = tf.stack([where // shape[2], where % shape[2]], axis=-1)
                return value, pos, a
            return a, tf.zeros((tf.shape(a)[0], tf.shape(a)[1], 2), tf.int32), a

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

        return AttributionFns(net, rank=rank, pick=pick)

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
    ):
        self.loaded = loaded
        self.layer = path
        self.kind = kind
        self.source = source
        self.k = k
        self.score = score
        self.units = units
        self.batch_size = batch_size
        self.keep_maps = keep_maps
        self._range = (start, stop)
        self._fns = _rank_fns(loaded, path, kind, score)
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
        value, pos, acts = self._fns.rank(tf.constant(batch.images))
        if tf_units is not None:
            value = tf.gather(value, tf_units, axis=1)
            pos = tf.gather(pos, tf_units, axis=1)
        scores = value.numpy()
        positions = pos.numpy() if self.state.positions is not None else None
        units = self.units

        def fetch_maps(rows, which):
            # only the newcomers' maps leave the compiled pass
            rows = tf.constant(np.asarray(rows, np.int32))
            return self._fns.pick(acts, rows, tf.constant(units[which].astype(np.int32))).numpy()

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
) -> ExampleSearch:
    """Prepare a dataset-example search and return it as an :class:`ExampleSearch`
    (nothing runs until you iterate it).  Arguments as :func:`top_examples`."""
    loaded = as_loaded(model)
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
    )


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
    backend: str = "local",
    workers: int | None = None,
    keep_workers: bool = False,
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
        score: ``"mean"`` (default) or ``"max"`` of the unit's activation map.
        channels: a slice or list of the units to rank (default: all).
        batch_size: images per compiled pass.
        keep_maps: keep each top image's activation map (``result.maps``).
        key: names the content of a generator or ``tf.data`` stream (see
            :func:`data_source`).
        progress: called with a :class:`Progress` after every batch.
        stop: a ``threading.Event``; setting it ends the search after the current batch
            (the result holds what was seen, ``stopped=True``).
        backend: ``"local"`` or ``"ray"`` (the data shared out among Ray actors, see
            :mod:`cnnviz_widgets.engine.dataset.distributed`); Ray needs
            ``pip install 'cnnviz-widgets[ray]'``.
        workers: Ray actors (default: the cluster's CPUs, at most 8).
        keep_workers: keep the Ray actors for the next call (see :func:`atlas`).

    Returns:
        :class:`TopExamples`.  Exact: the same as sorting every image of the data by score
        (ties: the earlier image first).
    """
    if backend not in ("local", "ray"):
        raise CnnvizError(f"unknown backend {backend!r}: use 'local' or 'ray'")
    if backend == "ray":
        from .distributed import require_ray

        require_ray()  # before any work: a clear message when Ray is missing
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
    )
    if backend == "ray":
        from .distributed import ray_top_examples

        return ray_top_examples(
            search, progress=progress, stop=stop, workers=workers, keep_workers=keep_workers
        )
    return drive(search, progress, stop)


def drive(search: ExampleSearch, progress=None, stop: threading.Event | None = None):
    """Run a search to its end, reporting progress and honouring a stop event."""
    if stop is not None and stop.is_set():
        search.stop()
    for p in search:
        if progress is not None:
            progress(p)
        if stop is not None and stop.is_set():
            search.stop()
    return search.result
