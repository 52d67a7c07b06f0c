"""Class-conditional seeds: where a robust model's picture of a class starts.

Santurkar et al. (2019, "Image Synthesis with a Single (Robust) Classifier") start
gradient ascent on a class from a sample of a multivariate Gaussian fitted to that class's
training images at low resolution, upsampled to the model's size: a blurry blob with the
class's colours and rough layout, which a robust model's gradient then turns into the
class.  :class:`SeedStatistics` holds those Gaussians (a mean and a low-rank covariance per
class, small enough for a model's JSON metadata); :func:`seed_statistics` measures them on
training images; :meth:`SeedStatistics.sample` draws seeds.

Where the training images place their object anywhere (and turn it any way), the
Gaussian of a class is a blur of every position: its samples hold two half-objects as
often as one, and the picture grows several objects.  Given the objects' masks,
:func:`seed_statistics` first moves each object to the centre (and, for the classes asked,
turns it to a common orientation: :func:`align_objects`), so the Gaussian holds one
object's shape and a seed is one object.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError

SCORED_PIXELS = 144 * 64 * 64
"""Pixels of seed draws :meth:`SeedStatistics.best_of` scores in one call."""


def _downsample(images: np.ndarray, resolution: int) -> np.ndarray:
    """``(N, H, W, C)`` in [0, 1] to ``(N, r, r, C)`` by block means (area resize)."""
    x = tf.image.resize(images, (resolution, resolution), method="area", antialias=True)
    return x.numpy().astype(np.float64)


def _int8_encode(a: np.ndarray) -> dict:
    """``(K, R, D)`` floats as 8-bit integers with one scale per ``(K, R)`` row."""
    a = np.asarray(a, np.float64)
    scale = np.abs(a).max(axis=-1, keepdims=True) / 127.0
    q = np.round(a / np.where(scale > 0, scale, 1.0)).astype(np.int8)
    return {
        "int8_base64": base64.b64encode(q.tobytes()).decode("ascii"),
        "shape": list(a.shape),
        "scale": np.round(scale[..., 0], 8).tolist(),
    }


def _int8_decode(data: dict) -> np.ndarray:
    shape = tuple(int(n) for n in data["shape"])
    q = np.frombuffer(base64.b64decode(data["int8_base64"], validate=True), np.int8)
    scale = np.asarray(data["scale"], np.float64)
    if q.size != int(np.prod(shape)) or scale.shape != shape[:-1]:
        raise ValueError(f"components: {q.size} values and scales {scale.shape} for {shape}")
    return q.reshape(shape).astype(np.float64) * scale[..., None]


def _orientation(mask: np.ndarray, cy: float, cx: float) -> float:
    """The angle that turns ``mask``'s object to its common orientation: the phase of its
    strongest 2-, 3- or 4-fold angular moment about ``(cy, cx)``, weighted by the distance
    from it (so corners and arm ends count most), divided by the fold; 0 for an object
    without one (a disc, a ring: every moment below 0.15 of its largest possible value).
    A square then stands on a corner, a cross's arms lie along the axes and a triangle
    points right."""
    yy, xx = np.nonzero(mask)
    r = np.hypot(yy - cy, xx - cx)
    if len(yy) == 0 or r.sum() <= 0:
        return 0.0
    phi = np.arctan2(yy - cy, xx - cx)
    best, angle = 0.15, 0.0
    for fold in (2, 3, 4):
        moment = (r * np.exp(1j * fold * phi)).sum() / r.sum()
        if abs(moment) > best:
            best, angle = abs(moment), float(np.angle(moment)) / fold
    return angle


def align_objects(
    images: np.ndarray, masks: np.ndarray, turn: np.ndarray | list[bool] | bool = False
) -> np.ndarray:
    """Each image moved so its object's centre (the mask's centroid) is the image's
    centre, and, where ``turn`` is true, turned so its object has a common orientation
    (its corners or arm ends at the same angles).  The border repeats
    the edge pixels (a background continues).

    Args:
        images: ``(N, H, W, C)`` float in [0, 1].
        masks: ``(N, H, W)`` bool, true on each image's object (an empty mask: the image
            stays where it is).
        turn: one bool for all images, or one per image (turn only objects whose
            orientation says nothing of their class: a square turned any way is a square;
            stripes turned are other stripes).
    """
    images = np.asarray(images, np.float32)
    masks = np.asarray(masks, bool)
    n, h, w = masks.shape
    if images.shape[:3] != (n, h, w):
        raise CnnvizError(f"align_objects: masks {masks.shape} do not fit images {images.shape}")
    turns = np.broadcast_to(np.asarray(turn, bool), (n,))
    ch, cw_ = (h - 1) / 2.0, (w - 1) / 2.0
    matrices = np.zeros((n, 8), np.float32)
    for i in range(n):
        yy, xx = np.nonzero(masks[i])
        cy, cx = (yy.mean(), xx.mean()) if len(yy) else (ch, cw_)
        a = _orientation(masks[i], cy, cx) if turns[i] else 0.0
        cos, sin = np.cos(a), np.sin(a)
        # output pixel p samples the input at centroid + R(a) (p - centre)
        matrices[i] = [
            cos,
            -sin,
            cx - cos * cw_ + sin * ch,
            sin,
            cos,
            cy - sin * cw_ - cos * ch,
            0,
            0,
        ]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.constant(images),
        transforms=tf.constant(matrices),
        output_shape=tf.constant([h, w]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )
    return out.numpy()


@dataclass(frozen=True)
class SeedStatistics:
    """Per-class Gaussians of low-resolution training images.

    Attributes:
        resolution: side of the low-resolution image (pixels).
        channels: colour channels.
        means: ``(K, D)`` mean of each class, ``D = resolution**2 * channels``, in [0, 1].
        components: ``(K, R, D)`` the ``R`` leading principal directions of each class,
            each scaled by the square root of its variance (a sample is the mean plus
            ``z @ components`` for standard normal ``z``).
        residual: ``(K,)`` the standard deviation left in the other directions (added as
            isotropic noise).
        source: how the statistics were measured, for people.
    """

    resolution: int
    channels: int
    means: np.ndarray
    components: np.ndarray
    residual: np.ndarray
    source: str = ""

    @property
    def n_classes(self) -> int:
        return int(self.means.shape[0])

    def sample(
        self,
        rng: np.random.Generator,
        classes: np.ndarray | list[int] | None,
        batch: int,
        h: int,
        w: int,
        noise: float = 1.0,
    ) -> np.ndarray:
        """``(batch, h, w, channels)`` float32 seeds in [0, 1].

        Args:
            rng: the run's random generator.
            classes: the class of each image (``None``: no class, e.g. a channel picture:
                each image draws a class at random, so the seeds follow the mixture of the
                training images).
            batch, h, w: the images' number and size (each seed is drawn at
                ``resolution`` and resized bilinearly).
            noise: scale of the random part (0: the class mean itself).
        """
        if classes is None:
            classes = rng.integers(0, self.n_classes, size=batch)
        classes = np.asarray(classes, int).reshape(-1)
        if len(classes) == 1 and batch > 1:
            classes = np.repeat(classes, batch)
        if len(classes) != batch:
            raise CnnvizError(f"seeds: {len(classes)} classes for a batch of {batch}")
        if ((classes < 0) | (classes >= self.n_classes)).any():
            raise CnnvizError(
                f"seeds: class index out of range for statistics of {self.n_classes} classes"
            )
        r, c = self.resolution, self.channels
        rank = self.components.shape[1]
        z = rng.standard_normal((batch, rank))
        e = rng.standard_normal((batch, r * r * c))
        low = (
            self.means[classes]
            + noise * np.einsum("br,brd->bd", z, self.components[classes])
            + noise * self.residual[classes, None] * e
        )
        low = np.clip(low, 0.0, 1.0).reshape(batch, r, r, c).astype(np.float32)
        up = tf.image.resize(low, (h, w), method="bilinear").numpy()
        return np.clip(up, 0.0, 1.0).astype(np.float32)

    def best_of(
        self,
        draws: int,
        score: Callable[[np.ndarray, np.ndarray], np.ndarray],
        rng: np.random.Generator,
        classes: np.ndarray | list[int],
        batch: int,
        h: int,
        w: int,
        noise: float = 1.0,
    ) -> np.ndarray:
        """Of ``draws`` seeds per image (drawn as :meth:`sample` draws them, one batch
        after the other), the one ``score`` rates highest for the image's class (ties:
        the earlier draw).  ``score(images, classes)`` returns one value per image (a
        model's class log-probability).  Draws are scored in groups of about
        ``SCORED_PIXELS`` (all 16 draws of 9 images of 64 x 64 in one call), or one batch
        at a time if a batch is larger: memory holds the best draws and one group."""
        per_image = np.broadcast_to(np.asarray(classes, int).reshape(-1), (batch,))
        group = max(1, SCORED_PIXELS // (h * w * batch))  # draws scored together
        best, best_score, done = None, None, 0
        while done < draws:
            pool = [
                self.sample(rng, classes, batch, h, w, noise=noise)
                for _ in range(min(group, draws - done))
            ]
            scores = np.asarray(score(np.concatenate(pool), np.tile(per_image, len(pool))))
            for images, value in zip(pool, scores.reshape(len(pool), batch)):
                if best is None:
                    best, best_score = images.copy(), value.copy()
                    continue
                better = value > best_score
                best[better], best_score[better] = images[better], value[better]
            done += len(pool)
        return best

    # ------------------------------------------------------------------ JSON metadata
    def to_json(self) -> dict:
        """A JSON-ready dict (3 decimals: the seeds are blurry blobs, not measurements).

        The principal directions, most of the numbers, are stored as 8-bit integers (one
        scale per direction, base64): a quarter of the size of decimals, within 0.4 % of
        each direction's largest value."""

        def rounded(a):
            return np.round(np.asarray(a, np.float64), 3).tolist()

        return {
            "resolution": self.resolution,
            "channels": self.channels,
            "means": rounded(self.means),
            "components": _int8_encode(self.components),
            "residual": rounded(self.residual),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict) -> SeedStatistics:
        """The inverse of :meth:`to_json` (checked: a clear message for a broken file)."""
        try:
            r, c = int(data["resolution"]), int(data["channels"])
            means = np.asarray(data["means"], np.float64)
            comps = data["components"]
            comps = (
                _int8_decode(comps) if isinstance(comps, dict) else np.asarray(comps, np.float64)
            )
            resid = np.asarray(data["residual"], np.float64)
        except (KeyError, TypeError, ValueError, binascii.Error) as err:
            raise CnnvizError(f"seed statistics: unreadable ({err!r})") from None
        d = r * r * c
        k = means.shape[0] if means.ndim == 2 else -1
        if means.shape != (k, d) or comps.ndim != 3 or comps.shape[::2] != (k, d):
            raise CnnvizError(
                f"seed statistics: shapes {means.shape}, {comps.shape} do not fit "
                f"{k} classes of {r}x{r}x{c}"
            )
        if resid.shape != (k,):
            raise CnnvizError(f"seed statistics: residual has shape {resid.shape}, not ({k},)")
        return cls(r, c, means, comps, resid, str(data.get("source", "")))


def seed_statistics(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    resolution: int = 8,
    rank: int = 12,
    source: str = "",
    masks: np.ndarray | None = None,
    turn: list[int] | tuple[int, ...] = (),
) -> SeedStatistics:
    """Fit the per-class Gaussians of :class:`SeedStatistics` to training images.

    Args:
        images: ``(N, H, W, C)`` float in [0, 1] (the model's training distribution).
        labels: ``(N,)`` class indices.
        n_classes: the number of classes (each needs at least ``rank + 1`` images).
        resolution: the low resolution the Gaussians live at.
        rank: principal directions kept per class (the rest is isotropic noise).
        source: a note on where the images came from.
        masks: ``(N, H, W)`` bool, each image's object, if you have them: each image is
            then moved so its object is at the centre before fitting
            (:func:`align_objects`), and a seed is one centred object instead of a blur of
            every place an object can be.
        turn: with ``masks``, the classes whose objects are also turned to a common
            orientation (those the training images show turned any way, whose
            orientation is not part of the class).
    """
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, int)
    if masks is not None:
        images = align_objects(images, masks, np.isin(labels, list(turn)))
    elif turn:
        raise CnnvizError("seed_statistics: turn needs the objects' masks (masks=...)")
    low = _downsample(images, resolution).reshape(len(images), -1)
    d = low.shape[1]
    means, comps, resid = [], [], []
    for k in range(n_classes):
        x = low[labels == k]
        if len(x) <= rank:
            raise CnnvizError(
                f"seed statistics: class {k} has {len(x)} images; it needs more than {rank}"
            )
        mu = x.mean(axis=0)
        cov = np.cov(x - mu, rowvar=False)
        vals, vecs = np.linalg.eigh(cov)
        vals, vecs = vals[::-1].clip(0), vecs[:, ::-1]
        means.append(mu)
        comps.append((vecs[:, :rank] * np.sqrt(vals[:rank])).T)
        resid.append(np.sqrt(vals[rank:].sum() / max(1, d - rank)))
    channels = images.shape[-1]
    return SeedStatistics(
        resolution,
        channels,
        np.array(means),
        np.array(comps),
        np.array(resid),
        source,
    )
