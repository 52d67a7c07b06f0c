"""Procedural "shapes" data set: coloured shapes and textured patches on a noisy background.

Every image holds one object.  The generator is seeded and returns, with each image, the
object's mask, so attribution methods (Grad-CAM, occlusion, saliency) can be scored
against the truth.  The embedded model (``load_model("shapes")``) was trained on it; see
``scripts/train_shapes_model.py``.

Pure numpy: no TensorFlow needed to generate data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "ring",
    "cross",
    "horizontal_stripes",
    "vertical_stripes",
    "checkerboard",
    "dots",
)
"""The embedded model's classes, in output order."""

DEFAULT_SIZE = 64


@dataclass(frozen=True)
class ShapesBatch:
    """A batch of generated images.

    Attributes:
        images: ``(n, size, size, 3)`` float32 RGB in ``[0, 1]``.
        labels: ``(n,)`` int class indices into :data:`CLASS_NAMES`.
        masks: ``(n, size, size)`` bool, True on the object.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES


def class_index(name_or_index: str | int) -> int:
    """Turn a class name (or index) of the shapes data set into its index."""
    if isinstance(name_or_index, (int, np.integer)):
        if not 0 <= int(name_or_index) < len(CLASS_NAMES):
            raise ValueError(
                f"shape class index {name_or_index} is out of range: "
                f"use 0..{len(CLASS_NAMES) - 1} or one of {', '.join(CLASS_NAMES)}"
            )
        return int(name_or_index)
    try:
        return CLASS_NAMES.index(str(name_or_index))
    except ValueError:
        raise ValueError(
            f"unknown shape class {name_or_index!r}: use one of {', '.join(CLASS_NAMES)}"
        ) from None


def generate_shapes(
    n: int,
    seed: int = 0,
    size: int = DEFAULT_SIZE,
    classes: list[str | int] | None = None,
) -> ShapesBatch:
    """Generate ``n`` images, balanced over the classes, in a seeded random order.

    Args:
        n: number of images.
        seed: the random seed; the same seed always gives the same batch.
        size: side of the square images in pixels.
        classes: restrict to these classes (names or indices); default all.

    Returns:
        A :class:`ShapesBatch`.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    ids = (
        np.arange(len(CLASS_NAMES))
        if classes is None
        else np.array([class_index(c) for c in classes])
    )
    rng = np.random.default_rng(seed)
    labels = ids[np.arange(n) % len(ids)]
    rng.shuffle(labels)
    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = render(int(label), rng, size)
    return ShapesBatch(images, labels.astype(np.int64), masks)


def sample(
    name: str | int, seed: int = 0, size: int = DEFAULT_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """One image of the given class: ``(image (size, size, 3) float32, mask (size, size) bool)``."""
    return render(class_index(name), np.random.default_rng(seed), size)


def _rotate(x: np.ndarray, y: np.ndarray, theta: float) -> tuple[np.ndarray, np.ndarray]:
    c, s = np.cos(theta), np.sin(theta)
    return c * x + s * y, -s * x + c * y


def _soft(d: np.ndarray) -> np.ndarray:
    """Coverage from a signed distance (negative inside), antialiased over one pixel."""
    return np.clip(0.5 - d, 0.0, 1.0)


def _background(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, size: int):
    c0 = rng.uniform(0.1, 0.9, 3)
    c1 = np.clip(c0 + rng.normal(0, 0.25, 3), 0.05, 0.95)
    a = rng.uniform(0, 2 * np.pi)
    t = ((x * np.cos(a) + y * np.sin(a)) / size + 1.0) / 2.0
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    bg = c0 * (1 - t[..., None]) + c1 * t[..., None]
    return bg, (c0 + c1) / 2


def _object_colour(rng: np.random.Generator, bg_mean: np.ndarray) -> np.ndarray:
    colour = rng.uniform(0, 1, 3)
    for _ in range(50):
        if np.linalg.norm(colour - bg_mean) > 0.5:
            break
        colour = rng.uniform(0, 1, 3)
    return colour


def render(label: int, rng: np.random.Generator, size: int = DEFAULT_SIZE):
    """Render one image of class ``label`` with ``rng``; returns ``(image, mask)``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    bg, bg_mean = _background(rng, xx - size / 2, yy - size / 2, size)
    colour = _object_colour(rng, bg_mean)
    r = rng.uniform(0.17, 0.32) * size
    cx, cy = rng.uniform(r + 2, size - r - 2, 2)
    x, y = xx - cx, yy - cy
    theta = rng.uniform(0, np.pi / 2)
    name = CLASS_NAMES[label]
    if name == "circle":
        d = np.hypot(x, y) - r
    elif name == "ring":
        w = r * rng.uniform(0.28, 0.42)
        d = np.abs(np.hypot(x, y) - (r - w / 2)) - w / 2
    elif name == "square":
        u, v = _rotate(x, y, theta)
        d = np.maximum(np.abs(u), np.abs(v)) - 0.8 * r
    elif name == "triangle":
        u, v = _rotate(x, y, rng.uniform(0, 2 * np.pi))
        angles = np.pi / 2 + np.array([0, 2, 4]) * np.pi / 3
        d = np.max([np.cos(a) * u + np.sin(a) * v for a in angles], axis=0) - 0.5 * r
    elif name == "cross":
        u, v = _rotate(x, y, rng.uniform(-0.35, 0.35))
        a = r * rng.uniform(0.22, 0.32)
        arm1 = np.maximum(np.abs(u) - r, np.abs(v) - a)
        arm2 = np.maximum(np.abs(u) - a, np.abs(v) - r)
        d = np.minimum(arm1, arm2)
    else:
        d = None
    if d is not None:
        alpha = _soft(d)
        mask = d < 0
    else:
        # A textured patch: a disk or an axis-aligned square, filled with the pattern.
        if rng.random() < 0.5:
            patch_d = np.hypot(x, y) - r
        else:
            patch_d = np.maximum(np.abs(x), np.abs(y)) - 0.85 * r
        patch = _soft(patch_d)
        mask = patch_d < 0
        phase = rng.uniform(0, 2 * np.pi, 2)
        if name in ("horizontal_stripes", "vertical_stripes"):
            period = rng.uniform(5, 9)
            coord = y if name == "horizontal_stripes" else x
            pattern = np.clip(np.sin(2 * np.pi * coord / period + phase[0]) * 2.5 + 0.5, 0, 1)
        elif name == "checkerboard":
            cell = rng.uniform(4, 7)
            s = np.sin(np.pi * x / cell + phase[0]) * np.sin(np.pi * y / cell + phase[1])
            pattern = np.clip(s * 4 + 0.5, 0, 1)
        else:  # dots
            spacing = rng.uniform(6, 9)
            rho = rng.uniform(1.5, 2.3)
            off = phase / (2 * np.pi) * spacing
            dx = np.mod(x + off[0], spacing) - spacing / 2
            dy = np.mod(y + off[1], spacing) - spacing / 2
            pattern = _soft(np.hypot(dx, dy) - rho)
        alpha = patch * pattern
    img = bg * (1 - alpha[..., None]) + colour * alpha[..., None]
    img = img + rng.normal(0, rng.uniform(0.01, 0.05), img.shape)
    return np.clip(img, 0, 1).astype(np.float32), mask
