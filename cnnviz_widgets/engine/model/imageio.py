"""Images in: files and bytes, arrays of any usual dtype, fitted to a model's input.

The engine works on *display images*: RGB floats in ``[0, 1]``, channels last.
:func:`load_image` reads a file (or its bytes) into one; :func:`as_image` turns whatever a
user holds (a uint8 array, a PIL image, a batch of one, a grayscale array, a tensor) into
one, and :func:`fit_image` adapts it to a model's input size and channel count.  Every
change that the user did not ask for is recorded as a *note* (and warned about with
:class:`ImageAdjustedWarning`); input that cannot be an image raises ``CnnvizError``.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np

from ...errors import CnnvizError
from .images import resize

__all__ = ["ImageAdjustedWarning", "as_image", "as_image_batch", "fit_image", "load_image"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as PIL's "L" mode


class ImageAdjustedWarning(UserWarning):
    """An image was resized or converted to fit the model (the result's ``notes`` say how)."""


def _warn(notes: list[str], note: str, warn: bool) -> None:
    notes.append(note)
    if warn:
        warnings.warn(note, ImageAdjustedWarning, stacklevel=4)


def load_image(source, *, mode: str | None = "RGB") -> np.ndarray:
    """Read an image file into a float32 array in ``[0, 1]``.

    Args:
        source: a path (``str`` or ``os.PathLike``), the file's bytes, or a binary file
            object. Any format PIL reads (PNG, JPEG, GIF, BMP, TIFF, WebP, ...).
        mode: ``"RGB"`` (default: ``(H, W, 3)``), ``"L"`` (grayscale, ``(H, W, 1)``) or
            ``None`` (as stored: 1, 3 or 4 channels; RGBA keeps its alpha).

    Raises:
        CnnvizError: no such file, or data that is not an image.
    """
    from PIL import Image, UnidentifiedImageError  # a dependency of matplotlib

    if mode not in ("RGB", "L", None):
        raise CnnvizError(f"mode must be 'RGB', 'L' or None, got {mode!r}")
    what = "the bytes given"
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source)).expanduser()
        what = repr(str(path))
        if not path.is_file():
            raise CnnvizError(
                f"no image file at {what}"
                + (" (it is a directory)" if path.is_dir() else "")
                + f" (working directory: {os.getcwd()}): check the path"
            )
        data = path.read_bytes()
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read()
        what = "the file object given"
        if not isinstance(data, (bytes, bytearray)):
            raise CnnvizError("the file object gave text, not bytes: open it with mode 'rb'")
    else:
        raise CnnvizError(
            f"load_image takes a path, bytes or a binary file object, got "
            f"{type(source).__name__}; for an array, pass it to the method directly"
        )
    if not data:
        raise CnnvizError(f"{what} is empty (0 bytes): not an image")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            pil = img.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        head = bytes(data[:16])
        raise CnnvizError(
            f"{what} is not an image PIL can read ({type(err).__name__}; {len(data)} bytes "
            f"starting {head!r}). Give a PNG, JPEG, GIF, BMP, TIFF or WebP file, or an "
            "array of shape (H, W, 3)"
        ) from None
    return _from_pil(pil, mode)


def _pil_array(pil, mode: str | None) -> np.ndarray:
    """The pixels of a PIL image as stored (``mode=None``: 1, 3 or 4 channels) or converted
    to ``mode``; their dtype says their range (uint8, 16/32-bit integers or floats)."""
    if mode is None:
        if pil.mode == "1":
            pil = pil.convert("L")
        elif pil.mode == "P":
            pil = pil.convert("RGBA" if "transparency" in pil.info else "RGB")
        elif pil.mode == "LA":
            pil = pil.convert("L")
        elif pil.mode not in ("L", "I", "I;16", "F", "RGB", "RGBA"):  # CMYK, YCbCr, HSV, ...
            pil = pil.convert("RGB")
    elif pil.mode != mode:
        pil = pil.convert(mode)
    return np.asarray(pil)


def _from_pil(pil, mode: str | None, notes: list[str] | None = None) -> np.ndarray:
    """A PIL image as ``(H, W, C)`` float32 in ``[0, 1]``, by the same range rules as an
    array (a float "F" image by the float-range rule, never divided by its maximum)."""
    arr = _pil_array(pil, mode)
    if arr.ndim == 2:
        arr = arr[..., None]
    return _unit_range(arr, [] if notes is None else notes, warn=True)


def _to_array(image):
    """A numpy array from an array-like, a PIL image or a tensor; file sources read."""
    if isinstance(image, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(
        image, "read"
    ):
        return load_image(image, mode=None)
    try:
        from PIL import Image

        if isinstance(image, Image.Image):
            return _pil_array(image, None)  # its values: by the rules for arrays
    except ImportError:  # pragma: no cover - PIL ships with matplotlib
        pass
    if hasattr(image, "numpy") and callable(image.numpy):  # tf tensors
        image = image.numpy()
    try:
        return np.asarray(image)
    except Exception as err:
        raise CnnvizError(
            f"cannot read an image from a {type(image).__name__}: pass an array (H, W, 3), "
            f"a path or the bytes of an image file ({err})"
        ) from None


def as_image(image, *, warn: bool = True) -> tuple[np.ndarray, list[str]]:
    """Any image-like value as a display image: ``(H, W, C)`` float32 in ``[0, 1]``.

    Accepts ``(H, W)``, ``(H, W, C)`` or a batch of one ``(1, H, W, C)``, as uint8 (0..255),
    another integer type, bool, or floats; a PIL image, a TensorFlow tensor, a path or the
    bytes of an image file.  A channels-first ``(C, H, W)`` array is transposed (with a note).

    The range of a float image is decided by the bulk of its values, not its extremes: when
    the 0.1th percentile is >= -0.5 and the 99.9th <= 1.5 it is a [0, 1] image, clipped to
    [0, 1] and never rescaled (with a note when values lay more than 0.02 outside); else when
    they lie within -0.1*255..1.1*255 it is a 0..255 image, divided by 255 and clipped
    (with a note); anything else is refused.

    Returns:
        ``(image, notes)``: notes say what was changed.

    Raises:
        CnnvizError: not an image (wrong rank, text, NaN values, a batch of several, values
            far outside any image range).
    """
    notes: list[str] = []
    arr = _to_array(image)
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise CnnvizError(
            f"cannot read an image from an array of {arr.dtype} values: pass numbers, "
            "shaped (H, W, 3)"
        )
    if arr.dtype.kind == "c":
        raise CnnvizError("the image holds complex numbers: pass real values (H, W, 3)")
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise CnnvizError(
                f"got a batch of {arr.shape[0]} images {arr.shape}: this method explains one "
                "image at a time; pass images[i], or explain them all at once with "
                "cw.explain_batch(model, images, method)"
            )
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise CnnvizError(
            f"an image has shape (H, W), (H, W, C) or (1, H, W, C); got shape {arr.shape} "
            f"(rank {arr.ndim}). For a vector or a sequence there is no image to explain"
        )
    if arr.shape[-1] not in (1, 2, 3, 4) and arr.shape[0] in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)
        _warn(notes, f"channels-first image transposed to channels-last {arr.shape}", warn)
    h, w, c = arr.shape
    if c not in (1, 2, 3, 4):
        raise CnnvizError(
            f"an image has 1 (gray), 3 (RGB) or 4 (RGBA) channels, last; got shape "
            f"{arr.shape} with {c} channels"
        )
    if h < 2 or w < 2:
        raise CnnvizError(f"the image is {h}x{w} pixels: too small to explain")
    arr = _unit_range(arr, notes, warn)
    if c == 2:  # gray + alpha
        arr = arr[..., :1]
        _warn(notes, "alpha channel dropped (gray + alpha image)", warn)
    return np.ascontiguousarray(arr, np.float32), notes


def _unit_range(arr: np.ndarray, notes: list[str], warn: bool) -> np.ndarray:
    """Image values of any real dtype as float32 in ``[0, 1]``: bool as 0/1, uint8 / 255,
    other integers / 255 or / 65535, floats by :func:`_float_range`."""
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 65535:
            raise CnnvizError(
                f"integer image values span {lo}..{hi}: expected 0..255 (or 0..65535)"
            )
        top = 255.0 if hi <= 255 else 65535.0
        notes.append(f"{arr.dtype} values read as 0..{int(top)}")
        return arr.astype(np.float32) / top
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise CnnvizError("the image holds NaN or infinite values")
    return _float_range(arr, notes, warn)


def as_image_batch(images) -> tuple[np.ndarray, list[str]]:
    """A batch of images ``(N, H, W, C)`` (or ``(N, H, W)``) as display images: float32 in
    ``[0, 1]``, channels last, gray + alpha reduced to gray.

    The same value rules as :func:`as_image`, decided once for the whole batch (so one
    image cannot read differently from its neighbours): uint8 is divided by 255, other
    integers by 255 or 65535, floats by the bulk of their values.  Nothing is warned; the
    notes say what changed.

    Raises:
        CnnvizError: not a batch of images (wrong rank or channels, text, NaN values).
    """
    notes: list[str] = []
    arr = _to_array(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 2, 3, 4):
        raise CnnvizError(
            f"a batch of images has shape (N, H, W, C) with 1, 3 or 4 channels last, or "
            f"(N, H, W); got shape {arr.shape}"
        )
    if arr.dtype == object or arr.dtype.kind in "USVc":
        raise CnnvizError(f"cannot read images from an array of {arr.dtype} values")
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) * np.float32(1.0 / 255.0)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min(initial=0)), int(arr.max(initial=0))
        if lo < 0 or hi > 65535:
            raise CnnvizError(f"integer image values span {lo}..{hi}: expected 0..255")
        top = 255.0 if hi <= 255 else 65535.0
        notes.append(f"{arr.dtype} values read as 0..{int(top)}")
        arr = arr.astype(np.float32) / np.float32(top)
    else:
        arr = arr.astype(np.float32, copy=False)
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 1.0)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise CnnvizError("the images hold NaN or infinite values")
        if not (-_QUIET <= lo and hi <= 1.0 + _QUIET):  # the common case costs one min/max
            arr = _float_range(arr, notes, False)
        elif lo < 0.0 or hi > 1.0:
            arr = np.clip(arr, 0.0, 1.0)
    if arr.shape[-1] == 2:
        arr = arr[..., :1]
        notes.append("alpha channel dropped (gray + alpha images)")
    return np.ascontiguousarray(arr, np.float32), notes


# The range of a float image is decided by the bulk of its values, never by its extremes,
# so that a few outliers (a bicubic resize overshooting to 1.05, one pixel at -0.05) cannot
# flip a [0, 1] image into a 0..255 one (which would divide it by 255: an almost black image).
_UNIT_BULK = (-0.5, 1.5)  # 0.1th and 99.9th percentiles of a [0, 1] image lie in here
_BYTE_BULK = (-0.1 * 255.0, 1.1 * 255.0)  # ... and those of a 0..255 image in here
_QUIET = 0.02  # clipping no further than this from [0, 1] (rounding) goes without a note


def _float_range(arr: np.ndarray, notes: list[str], warn: bool) -> np.ndarray:
    """A finite float image in ``[0, 1]``: clipped if it is a [0, 1] image, else / 255."""
    lo, hi = float(arr.min()), float(arr.max())
    q_lo, q_hi = (float(q) for q in np.percentile(arr, [0.1, 99.9]))
    if _UNIT_BULK[0] <= q_lo and q_hi <= _UNIT_BULK[1]:
        if lo < -_QUIET or hi > 1.0 + _QUIET:
            out = int(np.count_nonzero((arr < 0.0) | (arr > 1.0)))
            _warn(
                notes,
                f"float values span {lo:.3g}..{hi:.3g}, read as a [0, 1] image: {out} values "
                "outside [0, 1] clipped",
                warn,
            )
        return np.clip(arr, 0.0, 1.0)
    if _BYTE_BULK[0] <= q_lo and q_hi <= _BYTE_BULK[1]:
        clipped = lo < -0.5 or hi > 255.5
        _warn(
            notes,
            f"float values span {lo:.3g}..{hi:.3g}: read as 0..255"
            + (", values outside clipped" if clipped else ""),
            warn,
        )
        return np.clip(arr / 255.0, 0.0, 1.0)
    raise CnnvizError(
        f"image values span {lo:.4g}..{hi:.4g} (99.8 % of them {q_lo:.4g}..{q_hi:.4g}): give "
        "the image as RGB floats in [0, 1] or as uint8 0..255, before any preprocessing (the "
        "model's own preprocessing, such as VGG's BGR mean subtraction, is applied for you)"
    )


def fit_image(
    image: np.ndarray,
    height: int | None,
    width: int | None,
    channels: int,
    *,
    notes: list[str] | None = None,
    warn: bool = True,
) -> tuple[np.ndarray, list[str]]:
    """Adapt a display image ``(H, W, C)`` to a model input of ``(height, width, channels)``.

    ``None`` for height or width keeps the image's own size.  Gray becomes RGB (repeated),
    RGB becomes gray (luminance), RGBA loses its alpha; another size is resized
    (bilinear).  Each change is noted and warned about (:class:`ImageAdjustedWarning`).

    Raises:
        CnnvizError: a channel count that cannot be converted.
    """
    notes = [] if notes is None else notes
    c = image.shape[-1]
    if c != channels:
        if c == 4 and channels == 3:
            image = image[..., :3]
            _warn(notes, "alpha channel dropped (RGBA image, RGB model)", warn)
        elif c == 4 and channels == 1:
            image = image[..., :3] @ _LUMA[:, None]
            _warn(notes, "RGBA image converted to gray (luminance) for a 1-channel model", warn)
        elif c == 1 and channels == 3:
            image = np.repeat(image, 3, axis=-1)
            _warn(notes, "grayscale image repeated into 3 channels for the RGB model", warn)
        elif c == 3 and channels == 1:
            image = image @ _LUMA[:, None]
            _warn(notes, "RGB image converted to gray (luminance) for a 1-channel model", warn)
        else:
            raise CnnvizError(
                f"the image has {c} channel(s) but the model takes {channels}: give an image "
                f"with {channels} channel(s)"
            )
    h, w = image.shape[:2]
    th, tw = height or h, width or w
    if (h, w) != (th, tw):
        image = resize(image, (th, tw))
        _warn(
            notes,
            f"image resized from {h}x{w} to {th}x{tw} (height x width), the model's input size",
            warn,
        )
    return np.ascontiguousarray(image, np.float32), notes
