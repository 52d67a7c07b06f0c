"""Streaming top-k: the best images of every unit of a layer, merged batch by batch (and
part by part, for a data set split across workers)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import CnnvizError
from .top_examples import TopExamples

EMPTY_SLOT = np.iinfo(np.int64).max  # sort key of an empty slot: after every real image


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
        self.fired = np.zeros(n, np.int64)  # images each unit fired on (see unit_health)
        self.fired_known = True

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
        fired: np.ndarray | None = None,
    ) -> int:
        """Merge a batch: ``scores`` ``(B, n)``; the images are stream items ``base..base+B``
        (or ``indices``).  ``images`` ``(B, H, W, C)`` uint8 (or a function of a batch row
        giving one); ``positions`` ``(B, n, 2)``; ``fetch_maps(rows, units)`` gives the maps
        of the newcomers ``(m, h, w)``; ``fired`` ``(B, n)`` bool, the units that fired on
        each image.  Returns how many (unit, image) entries came in."""
        b = scores.shape[0]
        if fired is None:
            self.fired_known = False
        else:
            self.fired += np.asarray(fired, bool).sum(axis=0)
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
        key = np.where(cand_i < 0, EMPTY_SLOT, cand_i)
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
        if other.fired is None:
            self.fired_known = False
        else:
            self.fired += other.fired

    def _offer_one(self, other: TopExamples, u: int, j: int) -> None:
        score = float(other.scores[u, j])
        index = int(other.indices[u, j])
        k = self.k
        cand_s = np.append(self.scores[u], score)
        cand_i = np.append(self.indices[u], index)
        key = np.where(cand_i < 0, EMPTY_SLOT, cand_i)
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
            fired=self.fired.copy() if self.fired_known and self.seen else None,
            **info,
        )
