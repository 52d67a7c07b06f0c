"""Errors raised for bad input.  Each message names the problem and the way out."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CnnvizError(ValueError):
    """Base class of every error cnnviz_widgets raises for bad input."""


class ModelSourceError(CnnvizError):
    """The model could not be loaded from the given source."""


class ModelNotBuiltError(CnnvizError):
    """The model has no weights or shapes yet."""


class LayerNotFoundError(CnnvizError, KeyError):
    """No layer matches the given name, path or index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoKernelError(CnnvizError):
    """Filters were asked of a layer that has no convolution kernel."""


def closest(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    """The candidates closest to ``word`` (for "did you mean" hints)."""
    candidates = list(dict.fromkeys(candidates))
    found = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if not found:
        lowered = word.lower()
        found = [c for c in candidates if lowered in c.lower()][:n]
    return found
