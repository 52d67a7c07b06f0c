"""What a dataset-example search returns: :class:`TopExamples`, and its :class:`Progress`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import CnnvizError
from ..results_io import Keepable
from .unit_health import UnitHealth


# ----------------------------------------------------------------------------- result
@dataclass
class TopExamples(Keepable, UnitHealth):
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
        precision: what the ranking passes ran in (``"float32"``, ``"bfloat16"`` or
            ``"float16"``); ``precision_reason`` says why.  The scores are float32 numbers
            computed in that precision: images whose float32 scores are closer than the
            precision's resolution may swap places.
        notes: what was changed to fit the images to the model, and caveats (dead and
            near-dead units among them).
        fired: ``(n,)`` int64, how many of the images seen each unit fired on (its map's
            maximum above 0), or ``None`` (class rankings); see :meth:`health`,
            :meth:`dead_units` and :mod:`.unit_health`.
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
    precision: str = "float32"
    precision_reason: str = ""
    fired: np.ndarray | None = None

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
