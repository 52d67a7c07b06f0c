"""Image parameterizations: what the optimizer actually changes.

Each maps a variable to an image batch ``(B, H, W, C)`` in ``[0, 1]`` (display space); the
model's own preprocessing is applied after that.  ``fourier`` (the default) optimizes a 1/f
scaled spectrum with decorrelated colour, which gives natural-looking images; ``pixels``
optimizes each pixel directly, as keras-vis and tf-keras-vis do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

# Square root of the colour covariance of natural (ImageNet) images, as measured for Lucid:
# mixing three decorrelated channels through it gives natural colour statistics.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


def _decorrelate(x: tf.Tensor) -> tf.Tensor:
    if x.shape[-1] != 3:
        return x
    return tf.tensordot(x, tf.constant(_COLOR_SQRT.T), axes=1)


@dataclass(frozen=True)
class Pixels:
    """Each pixel a free variable, squashed to [0, 1] by a sigmoid.

    Attributes:
        decorrelate: mix colours through the natural-image colour basis.
        init_std: the spread of the random start (around mid-gray).
    """

    decorrelate: bool = False
    init_std: float = 0.1

    name = "pixels"

    def shape(self, batch: int, h: int, w: int, c: int) -> tuple[int, ...]:
        return (batch, h, w, c)

    def init(self, rng: np.random.Generator, batch: int, h: int, w: int, c: int) -> np.ndarray:
        return (rng.standard_normal(self.shape(batch, h, w, c)) * self.init_std).astype(np.float32)

    def image(self, var: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
        x = _decorrelate(var) if self.decorrelate else var
        return tf.sigmoid(x)


@dataclass(frozen=True)
class Fourier:
    """The image's 2-D spectrum as the variable, scaled by 1/frequency^decay.

    Large, smooth structures then get most of each gradient step and high-frequency noise
    little, which is what makes feature visualizations look natural.

    Attributes:
        decay: the power of the 1/f scaling (1 for natural-image statistics).
        decorrelate: mix colours through the natural-image colour basis.
        init_std: the spread of the random start.
    """

    decay: float = 1.0
    decorrelate: bool = True
    init_std: float = 0.01

    name = "fourier"

    def shape(self, batch: int, h: int, w: int, c: int) -> tuple[int, ...]:
        return (2, batch, c, h, w // 2 + 1)

    def init(self, rng: np.random.Generator, batch: int, h: int, w: int, c: int) -> np.ndarray:
        return (rng.standard_normal(self.shape(batch, h, w, c)) * self.init_std).astype(np.float32)

    def _scale(self, h: int, w: int) -> np.ndarray:
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freq = np.sqrt(fx * fx + fy * fy)
        scale = 1.0 / np.maximum(freq, 1.0 / max(h, w)) ** self.decay
        return (scale * np.sqrt(h * w)).astype(np.float32)

    def image(self, var: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
        scale = tf.constant(self._scale(h, w))
        spectrum = tf.complex(var[0] * scale, var[1] * scale)  # (B, C, H, W//2+1)
        x = tf.signal.irfft2d(spectrum, fft_length=[h, w])  # (B, C, H, W)
        x = tf.transpose(x, (0, 2, 3, 1)) / 4.0
        x = _decorrelate(x) if self.decorrelate else x
        return tf.sigmoid(x)


PARAMETERIZATIONS = {"pixels": Pixels, "fourier": Fourier}


def get_param(spec) -> Pixels | Fourier:
    """``"fourier"``, ``"pixels"`` or a parameterization object."""
    if isinstance(spec, (Pixels, Fourier)):
        return spec
    if spec in PARAMETERIZATIONS:
        return PARAMETERIZATIONS[spec]()
    from ..errors import CnnvizError

    raise CnnvizError(f"unknown parameterization {spec!r}: use 'fourier' or 'pixels'")
