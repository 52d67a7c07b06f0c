"""Class-conditional seeds: where a robust model's picture of a class starts.

Santurkar et al. (2019, "Image Synthesis with a Single (Robust) Classifier") start
gradient ascent on a class from a sample of a multivariate Gaussian fitted to that class's
training images at low resolution, upsampled to the model's size: a blurry blob with the
class's colours and rough layout, which a robust model's gradient then turns into the
class.  :class:`SeedStatistics` holds those Gaussians (a mean and a low-rank covariance per
class, small enough for a model's JSON metadata); :func:`seed_statistics` measures them on
training images; :meth:`SeedStatistics.sample` draws seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError


def _downsample(images: np.ndarray, resolution: int) -> np.ndarray:
    """``(N, H, W, C)`` in [0, 1] to ``(N, r, r, C)`` by block means (area resize)."""
    x = tf.image.resize(images, (resolution, resolution), method="area", antialias=True)
    return x.numpy().astype(np.float64)


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

    # ------------------------------------------------------------------ JSON metadata
    def to_json(self) -> dict:
        """A JSON-ready dict (3 decimals: the seeds are blurry blobs, not measurements)."""

        def rounded(a):
            return np.round(np.asarray(a, np.float64), 3).tolist()

        return {
            "resolution": self.resolution,
            "channels": self.channels,
            "means": rounded(self.means),
            "components": rounded(self.components),
            "residual": rounded(self.residual),
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict) -> SeedStatistics:
        """The inverse of :meth:`to_json` (checked: a clear message for a broken file)."""
        try:
            r, c = int(data["resolution"]), int(data["channels"])
            means = np.asarray(data["means"], np.float64)
            comps = np.asarray(data["components"], np.float64)
            resid = np.asarray(data["residual"], np.float64)
        except (KeyError, TypeError, ValueError) as err:
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
) -> SeedStatistics:
    """Fit the per-class Gaussians of :class:`SeedStatistics` to training images.

    Args:
        images: ``(N, H, W, C)`` float in [0, 1] (the model's training distribution).
        labels: ``(N,)`` class indices.
        n_classes: the number of classes (each needs at least ``rank + 1`` images).
        resolution: the low resolution the Gaussians live at.
        rank: principal directions kept per class (the rest is isotropic noise).
        source: a note on where the images came from.
    """
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels, int)
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
