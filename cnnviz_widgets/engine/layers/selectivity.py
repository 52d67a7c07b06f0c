"""What a first-layer kernel prefers: an orientation, a colour, or nothing clear.

A kernel ``k`` (kh, kw, channels) is compared with a bank of unit-energy templates: oriented
gratings and Gabor patches (12 orientations, 3 wavelengths, 4 phases) in luminance and in
two colour-opponent directions, and colour blobs (Gaussians and flat patches in seven colour
directions).  Its *selectivity* is its strongest template response divided by its typical
response to noise of the same energy (``||k|| / sqrt(k.size)``, the RMS of ``<k, n>`` over
random unit-energy ``n``): a kernel equal to a template scores ``sqrt(k.size)`` (12.1 for
7x7x3), a random kernel about 3.5.  A kernel is *clear* when its best template explains at
least half of its energy (``selectivity**2 / k.size >= 0.5``); random Gaussian 7x7x3 kernels explain
0.11 at their 99th percentile, so a clear kernel is one pattern plus a little noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import CnnvizError

__all__ = ["CLEAR_ENERGY", "COLOURS", "KernelPreference", "kernel_selectivity", "v1_bank"]

CLEAR_ENERGY = 0.5

_ORIENTATIONS = np.arange(0, 180, 15)
_PHASES = np.deg2rad([0, 45, 90, 135])
_LUMA = np.ones(3) / math.sqrt(3)
COLOURS: dict[str, np.ndarray] = {  # unit colour directions of the templates
    "luminance": _LUMA,
    "red": np.array([1.0, 0, 0]),
    "green": np.array([0, 1.0, 0]),
    "blue": np.array([0, 0, 1.0]),
    "red-green": np.array([1.0, -1.0, 0]) / math.sqrt(2),
    "yellow-blue": np.array([1.0, 1.0, -2.0]) / math.sqrt(6),
    "red-cyan": np.array([2.0, -1.0, -1.0]) / math.sqrt(6),
}


@dataclass(frozen=True)
class KernelPreference:
    """One kernel's best template.

    Attributes:
        index: the filter's index in the layer.
        selectivity: best template response / RMS response to equal-energy noise.
        energy: the share of the kernel's energy its best template explains (0..1).
        clear: ``energy >= CLEAR_ENERGY``.
        kind: ``"orientation"`` (a grating or Gabor) or ``"colour"`` (a blob or flat patch).
        orientation: the grating's stripe direction in degrees (0 = horizontal stripes, a
            horizontal edge; 90 = vertical), ``None`` for a colour blob.
        wavelength: the grating's period in pixels, ``None`` for a colour blob.
        colour: the template's colour direction (``"luminance"``, ``"red-green"``, ...).
        dead: all weights zero (a kernel that cannot respond to anything).
    """

    index: int
    selectivity: float
    energy: float
    clear: bool
    kind: str
    orientation: float | None
    wavelength: float | None
    colour: str
    dead: bool = False


def _unit(t: np.ndarray) -> np.ndarray:
    t = t - t.mean() if t.ndim == 2 else t
    n = np.linalg.norm(t)
    return t / n if n > 0 else t


@lru_cache(maxsize=8)
def _bank(kh: int, kw: int, c: int) -> tuple[np.ndarray, tuple]:
    """Unit-energy templates ``(T, kh*kw*c)`` and what each one is."""
    y, x = np.mgrid[0:kh, 0:kw].astype(np.float64)
    y -= (kh - 1) / 2
    x -= (kw - 1) / 2
    size = max(kh, kw)
    colours = COLOURS if c == 3 else {"luminance": np.ones(c) / math.sqrt(c)}
    if c != 3:
        opponents = []
    else:
        opponents = ["red-green", "yellow-blue"]
    spatial, labels = [], []
    for theta in _ORIENTATIONS:
        # stripes run along theta: the grating varies across them
        across = -x * math.sin(math.radians(theta)) + y * math.cos(math.radians(theta))
        for wavelength in (2.0 * size, float(size), size / 2.0):
            for phase in _PHASES:
                wave = np.cos(2 * math.pi * across / wavelength + phase)
                for envelope in (None, size / 3.0):
                    pattern = (
                        wave
                        if envelope is None
                        else wave * np.exp(-(x * x + y * y) / (2 * envelope**2))
                    )
                    spatial.append(_unit(pattern))
                    labels.append(("orientation", float(theta), wavelength))
    templates, meta = [], []
    for pattern, (kind, theta, wavelength) in zip(spatial, labels):
        for name in ["luminance", *opponents]:
            templates.append(pattern[..., None] * colours[name])
            meta.append((kind, theta, wavelength, name))
    for sigma in (size / 6.0, size / 3.0, None):
        blob = np.ones((kh, kw)) if sigma is None else np.exp(-(x * x + y * y) / (2 * sigma**2))
        blob = blob / np.linalg.norm(blob)
        for name, colour in colours.items():
            templates.append(blob[..., None] * colour)
            meta.append(("colour", None, None, name))
    flat = np.stack([t.reshape(-1) for t in templates])
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    return flat, tuple(meta)


def kernel_selectivity(kernels: np.ndarray) -> list[KernelPreference]:
    """Each kernel's preferred orientation or colour, and how clearly it prefers it.

    Args:
        kernels: ``(kh, kw, in_channels, n_filters)``, as ``filters.kernel_array`` gives
            for a Conv2D layer (use the first layer: the measure compares kernels with
            image-space patterns).

    Returns:
        One :class:`KernelPreference` per filter.
    """
    k = np.asarray(kernels, np.float64)
    if k.ndim != 4 or min(k.shape) < 1:
        raise CnnvizError(
            f"kernel_selectivity needs a Conv2D kernel (kh, kw, in_channels, n_filters), got "
            f"shape {k.shape}; pass filters.kernel_array(layer)"
        )
    kh, kw, c, n = k.shape
    bank, meta = _bank(kh, kw, c)
    flat = k.reshape(-1, n).T  # (n, D)
    norms = np.linalg.norm(flat, axis=1)
    responses = np.abs(flat @ bank.T)  # (n, T)
    out = []
    for i in range(n):
        if norms[i] == 0 or not np.isfinite(norms[i]):
            out.append(KernelPreference(i, 0.0, 0.0, False, "colour", None, None, "none", True))
            continue
        best = int(responses[i].argmax())
        cos = float(responses[i, best] / norms[i])
        kind, theta, wavelength, colour = meta[best]
        out.append(
            KernelPreference(
                i,
                cos * math.sqrt(flat.shape[1]),
                cos * cos,
                cos * cos >= CLEAR_ENERGY,
                kind,
                theta,
                wavelength,
                colour,
            )
        )
    return out


def v1_bank(kh: int, kw: int, n: int, norm: float = float(np.sqrt(2.0))) -> np.ndarray:
    """``(kh, kw, 3, n)`` first-layer kernels a teacher can name: where the robust model's
    ``conv1`` started (``scripts/train_shapes_model.py --conv1-init bank``).

    Sixteen patterns (repeated if ``n`` is larger): luminance edges (odd phase) and bars
    (even phase) at 0, 45, 90 and 135 degrees and red-green and yellow-blue edges at 0 and
    90 degrees, each one period across the kernel under a Gaussian envelope of width
    ``size / 3``; and four colour blobs (red-green, yellow-blue, red-cyan, luminance), a
    Gaussian of width ``size / 4``.  Each is scaled to
    ``norm``, the expected norm of a He-normal kernel (sqrt 2), so that the layers above see
    the signal level they would with Keras' default start.  No random draw: the bank is the
    same on every run.
    """
    y, x = np.mgrid[0:kh, 0:kw].astype(np.float64)
    y -= (kh - 1) / 2
    x -= (kw - 1) / 2
    size = max(kh, kw)
    envelope = np.exp(-(x * x + y * y) / (2 * (size / 3.0) ** 2))
    # the colour directions kernel_selectivity's templates use
    luminance, red_green = COLOURS["luminance"], COLOURS["red-green"]
    yellow_blue, red_cyan = COLOURS["yellow-blue"], COLOURS["red-cyan"]

    def grating(theta: float, phase: float) -> np.ndarray:
        t = np.radians(theta)
        across = -x * np.sin(t) + y * np.cos(t)
        return envelope * np.sin(2 * np.pi * across / size + phase)

    patterns = [(grating(t, 0.0), luminance) for t in (0, 45, 90, 135)]
    patterns += [(grating(t, np.pi / 2), luminance) for t in (0, 45, 90, 135)]
    patterns += [(grating(t, 0.0), c) for t in (0, 90) for c in (red_green, yellow_blue)]
    blob = np.exp(-(x * x + y * y) / (2 * (size / 4.0) ** 2))
    patterns += [(blob, c) for c in (red_green, yellow_blue, red_cyan, luminance)]
    out = np.zeros((kh, kw, 3, n))
    for i in range(n):
        pattern, colour = patterns[i % len(patterns)]
        k = pattern[..., None] * colour
        out[..., i] = k / np.linalg.norm(k) * norm
    return out.astype(np.float32)
