"""Timing that a shared machine cannot fool: variants measured in interleaved blocks.

Every comparison in bench/ goes through :func:`compare`: each round times one block of
every variant, in order A B C ... then reversed in the next round (C B A ...), so a load
change hits them alike; the figure printed is the median over rounds, and a ratio is the
median of the per-round ratios (not the ratio of medians).  The 1-minute load average
seen while a variant ran is printed beside it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

MIN_ROUNDS = 3


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def block(fn: Callable[[], object], calls: int = 1) -> Callable[[], float]:
    """A block of ``calls`` calls of ``fn``: returns the mean seconds per call."""

    def run() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    return run


class Timings:
    """Per-round seconds and load averages of each variant of one comparison."""

    def __init__(self, names: list[str]):
        self.names = names
        self.seconds: dict[str, list[float]] = {n: [] for n in names}
        self.loads: dict[str, list[float]] = {n: [] for n in names}

    def median(self, name: str) -> float:
        return statistics.median(self.seconds[name])

    def ratio(self, a: str, b: str) -> float:
        """Median over rounds of ``a`` / ``b`` (> 1: ``a`` is slower)."""
        return statistics.median(x / y for x, y in zip(self.seconds[a], self.seconds[b]))

    def load_text(self, name: str) -> str:
        lo, hi = min(self.loads[name]), max(self.loads[name])
        return f"load {lo:.1f}" if hi - lo < 0.05 else f"load {lo:.1f}-{hi:.1f}"

    def line(
        self,
        name: str,
        *,
        per: str = "call",
        scale: float = 1e3,
        unit: str = "ms",
        against: str | None = None,
        label: str | None = None,
    ) -> str:
        text = f"  {label or name:<44} {self.median(name) * scale:9.1f} {unit}/{per}"
        if against is not None and against != name:
            text += f"   {self.ratio(name, against):6.2f}x {against}"
        return text + f"   ({self.load_text(name)}, {len(self.seconds[name])} rounds)"


def compare(
    variants: dict[str, Callable[[], float]], rounds: int = MIN_ROUNDS, warm: bool = True
) -> Timings:
    """Time the variants interleaved: ``rounds`` rounds (at least 3), the order reversed
    every round; each variant is a block returning seconds per unit.  ``warm`` runs
    every block once first (tracing, caches), untimed."""
    names = list(variants)
    if warm:
        for name in names:
            variants[name]()
    out = Timings(names)
    for r in range(max(MIN_ROUNDS, rounds)):
        for name in names if r % 2 == 0 else names[::-1]:
            out.seconds[name].append(variants[name]())
            out.loads[name].append(load())
    return out
