"""Image parameterizations: what the optimizer actually changes.

Each maps a variable to an image batch ``(B, H, W, C)`` in ``[0, 1]`` (display space); the
model's own preprocessing is applied after that.  ``fourier`` (the default) optimizes a 1/f
scaled spectrum with decorrelated colour, which gives natural-looking images; ``pixels``
optimizes each pixel directly, as keras-vis and tf-keras-vis do; ``maco`` optimizes only the
phase of the spectrum under a fixed natural magnitude (Fel et al. 2023).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ...errors import CnnvizError

# Square root of the colour covariance of natural (ImageNet) images, as measured for Lucid:
# mixing three decorrelated channels through it gives natural colour statistics.
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32)
_COLOR_SQRT /= np.max(np.linalg.norm(_COLOR_SQRT, axis=0))


def _decorrelate(x: tf.Tensor) -> tf.Tensor:
    if x.shape[-1] != 3:
        return x
    # what tf.tensordot(x, M, 1) computes, without its dynamic-shape ops (and their
    # gradients) when the shape is known: fewer traced ops, the same product
    shape = x.shape if x.shape.is_fully_defined() else tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, 3]), tf.constant(_COLOR_SQRT.T))
    return tf.reshape(flat, shape)


def _scaled_irfft2d(var: tf.Tensor, scale: np.ndarray, h: int, w: int) -> tf.Tensor:
    """``irfft2d(scale * (var[0] + i var[1]))`` at ``(h, w)``, with its gradient written
    out for the shapes known here.

    TensorFlow's own gradient of this chain (irfft2d, complex, the scaling, the split)
    builds its mask from dynamic shapes: about 55 traced ops, a tenth of the optimization
    step, traced again for every new model (time to a first image).  This one is the same
    arithmetic on constants -- the rfft2d of the incoming gradient times ``mask / (h w)``
    (1 for the first column and, for an even ``w``, the last; 2 for the others, which
    stand for two conjugate bins), split into real and imaginary parts, times ``scale``
    -- and gives the same values to the bit (tests/test_first_image.py).
    """
    mask = np.full(w // 2 + 1, 2.0, np.float32)
    mask[0] = 1.0
    if w % 2 == 0:
        mask[-1] = 1.0
    weight = ((np.float32(1.0) / np.float32(h * w)) * mask).astype(np.complex64)
    scale_t = tf.constant(scale)

    @tf.custom_gradient
    def forward(v):
        real, imag = tf.unstack(v)
        x = tf.signal.irfft2d(tf.complex(real * scale_t, imag * scale_t), fft_length=[h, w])

        def backward(dx):
            g = tf.signal.rfft2d(dx, fft_length=[h, w]) * tf.constant(weight)
            return tf.stack([tf.math.real(g) * scale_t, tf.math.imag(g) * scale_t])

        return x, backward

    return forward(var)


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
    batch_axis = 0
    bounded = False

    def from_image(self, images: np.ndarray) -> np.ndarray:
        """The variable that renders ``images`` (the sigmoid's inverse; not decorrelated)."""
        if self.decorrelate:
            raise CnnvizError("Pixels(decorrelate=True) cannot start from an image")
        x = np.clip(np.asarray(images, np.float32), 0.01, 0.99)
        return np.log(x / (1.0 - x)).astype(np.float32)

    def shape(self, batch: int, h: int, w: int, c: int) -> tuple[int, ...]:
        return (batch, h, w, c)

    def init(self, rng: np.random.Generator, batch: int, h: int, w: int, c: int) -> np.ndarray:
        return (rng.standard_normal(self.shape(batch, h, w, c)) * self.init_std).astype(np.float32)

    def image(self, var: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
        x = _decorrelate(var) if self.decorrelate else var
        return tf.sigmoid(x)


@dataclass(frozen=True)
class Raw:
    """The variable IS the image, in ``[0, 1]`` (no sigmoid, no basis): after every update
    the step clips it back into ``[0, 1]``.  What Santurkar et al. (2019) optimize on a
    robust model (the ``"robust"`` preset); a run can start it from an image (a
    class-conditional seed).

    Attributes:
        init_std: the spread of the random start around mid-gray (without a seed).
    """

    init_std: float = 0.05

    name = "raw"
    batch_axis = 0
    bounded = True  # the step clips the variable into [0, 1] after each update

    def shape(self, batch: int, h: int, w: int, c: int) -> tuple[int, ...]:
        return (batch, h, w, c)

    def init(self, rng: np.random.Generator, batch: int, h: int, w: int, c: int) -> np.ndarray:
        x = 0.5 + rng.standard_normal(self.shape(batch, h, w, c)) * self.init_std
        return np.clip(x, 0.0, 1.0).astype(np.float32)

    def from_image(self, images: np.ndarray) -> np.ndarray:
        """The variable that renders ``images`` (``(B, H, W, C)`` in [0, 1])."""
        return np.clip(np.asarray(images, np.float32), 0.0, 1.0)

    def image(self, var: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
        return var


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
    batch_axis = 1
    bounded = False

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
        x = _scaled_irfft2d(var, self._scale(h, w), h, w)  # (B, C, H, W)
        x = tf.transpose(x, (0, 2, 3, 1)) / 4.0
        x = _decorrelate(x) if self.decorrelate else x
        return tf.sigmoid(x)


# ------------------------------------------------------------------------------- MaCo
class Spectrum:
    """A magnitude spectrum ``(C, H, W//2+1)`` as a hashable, read-only value.

    ``Maco`` is a frozen dataclass and the compiled steps are cached by it, so its spectrum
    must hash and compare by content: two equal arrays give equal ``Spectrum`` objects.
    ``np.asarray(spectrum)`` gives the array back.
    """

    __slots__ = ("_array", "_digest")

    def __init__(self, array) -> None:
        arr = np.array(array, dtype=np.float32)  # a copy: the caller's array may change
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise CnnvizError(
                f"a spectrum has shape (channels, height, width // 2 + 1), got {arr.shape}: "
                "make one with spectrum_from(images)"
            )
        if arr.shape[0] not in (1, 3, 4) or min(arr.shape[1:]) < 2:
            raise CnnvizError(
                f"a spectrum has shape (channels, height, width // 2 + 1) with 1, 3 or 4 "
                f"channels and at least 2x2 frequencies, got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise CnnvizError("the spectrum has NaN or infinite values")
        if (arr < 0).any():
            raise CnnvizError("a magnitude spectrum cannot be negative")
        if not (arr > 0).any():
            raise CnnvizError("the spectrum is all zeros: the image would be flat")
        arr.setflags(write=False)
        self._array = arr
        self._digest = hashlib.sha1(arr.tobytes() + repr(arr.shape).encode()).hexdigest()

    @property
    def array(self) -> np.ndarray:
        return self._array

    @property
    def shape(self) -> tuple[int, ...]:
        return self._array.shape

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)

    def __eq__(self, other) -> bool:
        return isinstance(other, Spectrum) and self._digest == other._digest

    def __hash__(self) -> int:
        return hash(self._digest)

    def __repr__(self) -> str:
        return f"Spectrum(shape={self.shape}, sha1={self._digest[:10]})"


def _hermitian_columns(m: np.ndarray, w: int) -> np.ndarray:
    """Make column 0 (and the Nyquist column, for even ``w``) of an rfft-layout magnitude
    symmetric in frequency, as the spectrum of a real image is."""
    m = m.copy()
    cols = [0, m.shape[-1] - 1] if w % 2 == 0 else [0]
    for j in cols:
        col = m[..., j]
        m[..., j] = (col + np.roll(col[..., ::-1], 1, axis=-1)) / 2.0
    return m


def _resample(m: np.ndarray, h: int, w: int) -> np.ndarray:
    """A ``(C, H0, W0//2+1)`` magnitude resampled to ``(C, h, w//2+1)`` (bilinear on the
    centred frequency grid, so frequencies in cycles per pixel keep their place)."""
    wr = w // 2 + 1
    if m.shape[1:] == (h, wr):
        return m
    shifted = np.fft.fftshift(m, axes=1).transpose(1, 2, 0)  # (H0, W0r, C), centred in y
    out = tf.image.resize(shifted, (h, wr), method="bilinear", antialias=True).numpy()
    return np.fft.ifftshift(out.transpose(2, 0, 1), axes=1)


@dataclass(frozen=True)
class Maco:
    """Only the PHASE of the image's spectrum is optimized; its MAGNITUDE stays fixed.

    MaCo (Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with
    MAgnitude Constrained Optimization"): with the magnitude held to a natural-image
    spectrum, the optimizer cannot pile energy into high frequencies, so the image keeps
    natural statistics on deep networks too.  The variable is the phase, ``(B, C, H,
    W//2+1)``; the image is ``irfft2d(magnitude * exp(i * phase))``.

    Normalisation: a fixed scale, not a per-step standardisation.  The phase of the
    frequency-0 and Nyquist columns is kept antisymmetric (as for any real image) and the
    mean (DC) bin is zero, so every image of a run has exactly the same mean (0) and the
    same variance per channel (Parseval): a scale computed once from the magnitude IS
    standardising, with no data-dependent op in the step (Xplique and Horama standardise
    every step).  The scale makes each RGB channel's standard deviation before the sigmoid
    ``contrast`` (after the decorrelated colour mix, as in ``Fourier``): 1 gives pixel
    values with a spread of about 0.2, like photos, without saturating the sigmoid.  The
    mean colour is mid-gray (a phase cannot move it).

    Attributes:
        spectrum: the magnitude, ``(C, H, W//2+1)`` from :func:`spectrum_from` (in the
            decorrelated colour basis when ``decorrelate``); resampled when the image size
            differs.  ``None``: a 1/frequency^decay spectrum made for the image size (no
            data, nothing downloaded).
        decay: the power of the default 1/f spectrum.  Textbook natural-image statistics
            give 1; photos resized to model size measure steeper (1.5-2 for
            matplotlib's grace_hopper.jpg at 64-224 px); 1.25 keeps detail without pixel
            noise on the embedded model.
        decorrelate: mix colours through the natural-image colour basis.
        contrast: the standard deviation of each colour channel before the sigmoid.
    """

    spectrum: Spectrum | np.ndarray | None = None
    decay: float = 1.25
    decorrelate: bool = True
    contrast: float = 1.0

    name = "maco"
    batch_axis = 0
    bounded = False

    def __post_init__(self):
        if self.spectrum is not None and not isinstance(self.spectrum, Spectrum):
            object.__setattr__(self, "spectrum", Spectrum(self.spectrum))
        if not (math.isfinite(self.decay) and self.decay >= 0):
            raise CnnvizError(f"maco: decay must be >= 0, got {self.decay}")
        if not (math.isfinite(self.contrast) and self.contrast > 0):
            raise CnnvizError(f"maco: contrast must be > 0, got {self.contrast}")

    def shape(self, batch: int, h: int, w: int, c: int) -> tuple[int, ...]:
        self.magnitude(h, w, c)  # a spectrum that cannot fit fails here, before compiling
        return (batch, c, h, w // 2 + 1)

    def init(self, rng: np.random.Generator, batch: int, h: int, w: int, c: int) -> np.ndarray:
        """Uniformly random phases: a random natural-looking texture."""
        shape = self.shape(batch, h, w, c)
        return rng.uniform(-np.pi, np.pi, size=shape).astype(np.float32)

    def magnitude(self, h: int, w: int, c: int) -> np.ndarray:
        """The fixed magnitude ``(C, h, w//2+1)`` for this image size, scaled so that each
        RGB channel before the sigmoid has standard deviation ``contrast`` (expected, after
        the colour mix; exact per decorrelated channel)."""
        wr = w // 2 + 1
        if self.spectrum is None:
            fy = np.fft.fftfreq(h)[:, None]
            fx = np.fft.rfftfreq(w)[None, :]
            freq = np.sqrt(fx * fx + fy * fy)
            m = 1.0 / np.maximum(freq, 1.0 / max(h, w)) ** self.decay
            m = np.broadcast_to(m, (c, h, wr)).astype(np.float64)
        else:
            m = np.asarray(self.spectrum, np.float64)
            n = m.shape[0]
            if n != c:
                if n == 1:
                    m = np.broadcast_to(m, (c, *m.shape[1:]))
                elif c == 1:
                    m = m[:1]  # the first decorrelated channel is the luminance
                else:
                    raise CnnvizError(
                        f"the MaCo spectrum has {n} channels but the model's input has {c}: "
                        "make it with spectrum_from() on images with the model's channels"
                    )
            m = _resample(np.array(m), h, w)
            m = np.maximum(m, 0.0)
        m = _hermitian_columns(np.array(m, np.float64), w)
        m[:, 0, 0] = 0.0  # no DC: zero mean, so the variances below are the exact ones
        # each channel's variance, whatever the phase (Parseval; zero phase is one phase)
        var = np.fft.irfft2(m, s=(h, w)).var(axis=(1, 2))
        if self.decorrelate and c == 3:  # expected variance of each RGB channel after mixing
            rgb = float(np.mean(np.square(_COLOR_SQRT) @ var))
        else:
            rgb = float(np.mean(var))
        if not rgb > 0:
            raise CnnvizError("the MaCo spectrum has no energy outside the mean (DC) bin")
        return (m * (self.contrast / np.sqrt(rgb))).astype(np.float32)

    def image(self, var: tf.Tensor, h: int, w: int, c: int) -> tf.Tensor:
        mag = tf.constant(self.magnitude(h, w, c))
        phase = var
        # the frequency-0 column (and the Nyquist one, for even w) holds conjugate pairs
        # (k, -k): an antisymmetric phase there, so irfft2d drops nothing and every
        # magnitude is kept exactly
        cols = [0, w // 2] if w % 2 == 0 else [0]
        fixed = {}
        for j in cols:
            col = phase[..., j]
            mirror = tf.roll(tf.reverse(col, axis=[-1]), shift=1, axis=-1)  # col[-k mod h]
            fixed[j] = (col - mirror) / 2.0
        parts = [fixed[0][..., None]]
        last = w // 2 if w % 2 == 0 else w // 2 + 1
        if last > 1:
            parts.append(phase[..., 1:last])
        if w % 2 == 0 and w // 2 > 0:
            parts.append(fixed[w // 2][..., None])
        phase = tf.concat(parts, axis=-1)
        spectrum = tf.complex(mag * tf.cos(phase), mag * tf.sin(phase))  # (B, C, H, W//2+1)
        x = tf.signal.irfft2d(spectrum, fft_length=[h, w])  # (B, C, H, W), mean 0
        x = tf.transpose(x, (0, 2, 3, 1))
        x = _decorrelate(x) if self.decorrelate else x
        return tf.sigmoid(x)


_DECORRELATED_FROM_RGB = np.linalg.inv(_COLOR_SQRT)


def spectrum_from(
    images, size: int | tuple[int, int] | None = None, *, decorrelate: bool = True
) -> np.ndarray:
    """The average magnitude spectrum of your own images, for ``Maco(spectrum=...)``.

    MaCo fixes the image's spectrum magnitude to that of natural images; this measures it
    on images you have (offline), e.g. photos of the domain your model was trained on.

    Args:
        images: ``(N, H, W, C)``, uint8 (0-255) or float; 1, 3 or 4 channels (alpha dropped).
        size: resize (centre-cropping to the aspect first) to this size, e.g. the model's
            input; ``None`` keeps the images' size (``Maco`` resamples when it differs).
        decorrelate: measure in the decorrelated colour basis (as ``Maco(decorrelate=True)``
            draws); 3-channel images only.

    Returns:
        ``(C, H, W//2+1)`` float32: the mean over images of ``|rfft2|`` of each image, each
        first centred per channel and scaled to unit standard deviation (every image
        counts the same); the mean (DC) bin is zero.
    """
    try:
        arr = np.asarray(images)
    except Exception as err:
        raise CnnvizError(f"spectrum_from: cannot read the images as an array: {err}") from err
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise CnnvizError(
            f"spectrum_from: the images must be numbers (uint8 or float), got dtype {arr.dtype}"
        )
    if arr.ndim != 4:
        hint = " (one image: pass images[None])" if arr.ndim == 3 else ""
        raise CnnvizError(
            f"spectrum_from: expected a batch of images (N, height, width, channels), got "
            f"shape {arr.shape}{hint}"
        )
    n, h0, w0, c = arr.shape
    if n == 0:
        raise CnnvizError("spectrum_from: no images (the batch is empty)")
    if c not in (1, 3, 4):
        raise CnnvizError(
            f"spectrum_from: images need 1, 3 or 4 channels (channels last), got {c} in "
            f"shape {arr.shape}"
        )
    if h0 < 4 or w0 < 4:
        raise CnnvizError(f"spectrum_from: images of {h0}x{w0} pixels are too small (>= 4x4)")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise CnnvizError("spectrum_from: the images have NaN or infinite values")
    if c == 4:
        arr, c = arr[..., :3], 3
    if size is not None:
        h, w = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
        if int(h) < 4 or int(w) < 4:
            raise CnnvizError(f"spectrum_from: size must be at least 4x4, got {size}")
        h, w = int(h), int(w)
    else:
        h, w = h0, w0
    mix = _DECORRELATED_FROM_RGB.T if (decorrelate and c == 3) else None
    total = np.zeros((h, w // 2 + 1, c), np.float64)
    used = 0
    for start in range(0, n, 32):  # in chunks: bounded memory for many images
        x = arr[start : start + 32].astype(np.float32)
        if size is not None and (h, w) != (h0, w0):
            # centre crop to the target's aspect, then resize
            if h0 * w > w0 * h:  # too tall
                ch = max(1, round(w0 * h / w))
                top = (h0 - ch) // 2
                x = x[:, top : top + ch]
            elif h0 * w < w0 * h:
                cw_ = max(1, round(h0 * w / h))
                left = (w0 - cw_) // 2
                x = x[:, :, left : left + cw_]
            x = tf.image.resize(x, (h, w), method="bilinear", antialias=True).numpy()
        if mix is not None:
            x = x @ mix
        x = x - x.mean(axis=(1, 2), keepdims=True)
        std = x.std(axis=(1, 2, 3))
        keep = std > 1e-6 * max(1.0, float(np.abs(x).max(initial=0.0)))
        if not keep.any():
            continue
        x = x[keep] / std[keep, None, None, None]
        total += np.abs(np.fft.rfft2(x, axes=(1, 2))).sum(axis=0)
        used += int(keep.sum())
    if used == 0:
        raise CnnvizError(
            "spectrum_from: every image is flat (one colour): there is no spectrum to measure"
        )
    m = (total / used).transpose(2, 0, 1)
    m = _hermitian_columns(m, w)
    m[:, 0, 0] = 0.0
    return m.astype(np.float32)


PARAMETERIZATIONS = {"pixels": Pixels, "fourier": Fourier, "maco": Maco, "raw": Raw}


def get_param(spec) -> Pixels | Fourier | Maco | Raw:
    """``"fourier"``, ``"pixels"``, ``"maco"``, ``"raw"`` or a parameterization object."""
    if isinstance(spec, (Pixels, Fourier, Maco, Raw)):
        return spec
    if isinstance(spec, str) and spec in PARAMETERIZATIONS:
        return PARAMETERIZATIONS[spec]()
    raise CnnvizError(
        f"unknown parameterization {spec!r}: use 'fourier', 'pixels', 'maco' or 'raw' (or an "
        "object)"
    )
