"""Honest unit reports: which units of a ranking never (or hardly ever) fired on the data.

A unit *fires* on an image when the maximum of its activation map is above zero.  A unit
that never fires still gets "top" images (its scores all tie at zero, so the earliest
images win, with the peak box at the map's corner): they say nothing about the unit, and
a report must say so.  A *near-dead* unit fired on fewer than :data:`NEAR_DEAD` of the
images: its few real examples come first, then ties.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NEAR_DEAD", "UnitHealth", "health_notes", "health_of"]

NEAR_DEAD = 0.01
"""A unit that fired on fewer than this fraction of the images seen is near-dead."""


def health_of(fired: int | None, seen: int, near: float = NEAR_DEAD) -> str:
    """``"dead"`` (fired on no image), ``"near-dead"`` (fired on fewer than ``near`` of
    the ``seen`` images), ``"alive"``, or ``"unknown"`` (not counted, or no image seen)."""
    if fired is None or seen <= 0:
        return "unknown"
    if fired == 0:
        return "dead"
    return "near-dead" if fired < near * seen else "alive"


class UnitHealth:
    """Per-unit firing counts and file paths for :class:`~.top_examples.TopExamples`
    (which holds ``fired``: ``(n,)`` images each unit fired on, or ``None``)."""

    def fired_on(self, unit: int) -> int | None:
        """How many of the images seen ``unit`` fired on (its map's maximum > 0), or
        ``None`` when not counted (class rankings, results from older versions)."""
        if self.fired is None:
            return None
        return int(self.fired[self.row(unit)])

    def health(self, unit: int, near: float = NEAR_DEAD) -> str:
        """``"dead"``, ``"near-dead"``, ``"alive"`` or ``"unknown"``: see
        :func:`health_of`."""
        return health_of(self.fired_on(unit), self.seen, near)

    def dead_units(self) -> np.ndarray:
        """The units that fired on none of the images seen (their top images are ties at
        zero and show nothing about the unit)."""
        if self.fired is None:
            return np.zeros(0, self.units.dtype)
        return self.units[self.fired == 0]

    def near_dead_units(self, near: float = NEAR_DEAD) -> np.ndarray:
        """The units that fired, but on fewer than ``near`` of the images seen."""
        if self.fired is None:
            return np.zeros(0, self.units.dtype)
        f = self.fired
        return self.units[(f > 0) & (f < near * self.seen)]

    def paths(self, unit: int) -> list[str | None]:
        """The files of ``unit``'s top images, best first (``None`` for an image that did
        not come from a file; empty slots left out)."""
        slots = self.slots[self.row(unit)]
        slots = slots[slots >= 0]
        if self.sources is None:
            return [None] * len(slots)
        return [self.sources[int(s)] for s in slots]


def _listed(units: np.ndarray) -> str:
    shown = ", ".join(str(int(u)) for u in units[:12])
    return shown + (f" and {len(units) - 12} more" if len(units) > 12 else "")


def health_notes(top) -> list[str]:
    """The notes a ranking carries about its dead and near-dead units."""
    if top.fired is None or top.seen <= 0:
        return []
    notes = []
    dead, near = top.dead_units(), top.near_dead_units()
    n = len(top.units)
    if len(dead):
        notes.append(
            f"{len(dead)} of {n} {top.kind}s never fired on the {top.seen} images (dead): "
            f"{_listed(dead)}; their top images are ties at zero and say nothing about them"
        )
    if len(near):
        notes.append(
            f"{len(near)} of {n} {top.kind}s fired on fewer than {NEAR_DEAD:.0%} of the "
            f"images (near-dead): {_listed(near)}; only their first few images are real "
            "examples (see top.fired_on(unit))"
        )
    return notes
