"""Data sets as streams of batches fitted to a model: what dataset examples are ranked on.

:func:`data_source` accepts what a user holds: a numpy array of images, a
:class:`~cnnviz_widgets.engine.model.shapes.ShapesBatch` or a :class:`ShapesStream`, a list of
image paths, a folder of image files, a ``tf.data.Dataset`` or any Python iterable of
batches.  Whatever it is, :meth:`DataSource.batches` yields :class:`Batch` objects of
display images (RGB floats in ``[0, 1]``, the model's input size and channels): the model's
own preprocessing is applied later, inside the compiled pass, as everywhere in the engine.

Only one batch is held at a time: a generator of any length streams through in bounded
memory.  Sources that can be indexed (arrays, paths, folders, shapes streams) can also be
read from any image onwards (``start``/``stop``), which is how the Ray backend shares them out.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import CnnvizError
from ..model.imageio import as_image_batch, fit_image, load_image
from ..model.internals import image_input
from ..model.loading import as_loaded
from ..model.shapes import CLASS_NAMES, DEFAULT_SIZE, ShapesBatch, generate_shapes

__all__ = [
    "IMAGE_EXTENSIONS",
    "Batch",
    "DataSource",
    "ShapesStream",
    "data_source",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings a folder source reads (case-insensitive)."""


@dataclass
class Batch:
    """A batch of display images fitted to a model.

    Attributes:
        images: ``(B, H, W, C)`` float32 in ``[0, 1]``, the model's input size and channels.
        labels: ``(B,)`` int64 class labels when the source has them, else ``None``.
        sources: the file of each image (path sources), else ``None``.
    """

    images: np.ndarray
    labels: np.ndarray | None = None
    sources: list[str] | None = None

    def __len__(self) -> int:
        return len(self.images)


class ShapesStream:
    """``n`` generated shapes images (see :func:`generate_shapes`), made chunk by chunk as
    they are read, so a stream of any length never sits in memory as a whole.

    Chunk ``i`` (images ``i*chunk .. (i+1)*chunk``) is ``generate_shapes(chunk, seed=(seed,
    i))``: the same stream every time, and any part of it can be read on its own.

    Args:
        n: number of images.
        seed: the stream's seed.
        chunk: images generated at a time.
        size: image side in pixels.
    """

    def __init__(self, n: int, seed: int = 0, chunk: int = 256, size: int = DEFAULT_SIZE):
        if int(n) < 0 or int(chunk) < 1:
            raise CnnvizError(f"ShapesStream needs n >= 0 and chunk >= 1, got n={n}, chunk={chunk}")
        self.n, self.seed, self.chunk, self.size = int(n), int(seed), int(chunk), int(size)

    def __len__(self) -> int:
        return self.n

    def chunk_at(self, i: int) -> ShapesBatch:
        """Chunk ``i`` of the stream."""
        count = min(self.chunk, self.n - i * self.chunk)
        rng_seed = np.random.SeedSequence([self.seed, i]).generate_state(1)[0]
        return generate_shapes(max(count, 0), seed=int(rng_seed), size=self.size)

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[ShapesBatch]:
        """The images ``start..stop`` as ShapesBatch pieces (at most one chunk each)."""
        stop = self.n if stop is None else min(stop, self.n)
        i = start // self.chunk
        while i * self.chunk < stop:
            part = self.chunk_at(i)
            lo = max(start - i * self.chunk, 0)
            hi = min(stop - i * self.chunk, len(part))
            yield ShapesBatch(part.images[lo:hi], part.labels[lo:hi], part.masks[lo:hi])
            i += 1

    def __iter__(self) -> Iterator[ShapesBatch]:
        return self.read()

    def __repr__(self) -> str:
        return f"ShapesStream(n={self.n}, seed={self.seed}, chunk={self.chunk}, size={self.size})"


# ------------------------------------------------------------------------------ fitting
class _Fitter:
    """Turns raw image batches into display images of the model's size and channels; the
    first change of each kind is remembered as a note (once per stream, not per image)."""

    def __init__(self, loaded):
        self.h, self.w, self.c = image_input(loaded.model)
        self.notes: list[str] = []

    def _note(self, notes):
        for note in notes:
            if note not in self.notes:
                self.notes.append(note)

    def __call__(self, raw) -> np.ndarray:
        images, notes = as_image_batch(raw)
        self._note(notes)
        if (
            images.shape[-1] == self.c
            and (self.h in (None, images.shape[1]))
            and (self.w in (None, images.shape[2]))
        ):
            return images
        out = []
        for img in images:
            fitted, notes = fit_image(img, self.h, self.w, self.c, warn=False)
            self._note(notes)
            out.append(fitted)
        return np.stack(out) if out else np.zeros((0, self.h or 1, self.w or 1, self.c), np.float32)


def _labels(y, n: int) -> np.ndarray | None:
    """Integer labels from ints or one-hot rows; ``None`` when they are neither."""
    if y is None:
        return None
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    if y.ndim == 2 and y.shape[0] == n and y.shape[1] > 1:
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(y) != n or not np.issubdtype(y.dtype, np.number):
        return None
    return y.astype(np.int64)


def _split(item):
    """``(images, labels)`` from a batch item: an array, ``(x, y)``, a dict or a ShapesBatch."""
    if isinstance(item, ShapesBatch):
        return item.images, item.labels
    if isinstance(item, dict):
        x = next((item[k] for k in ("image", "images", "x") if k in item), None)
        y = next((item[k] for k in ("label", "labels", "y") if k in item), None)
        if x is None:
            raise CnnvizError(
                f"a batch given as a dict needs an 'image' (or 'images', 'x') entry; it has "
                f"{', '.join(map(repr, item))}"
            )
        return x, y
    if isinstance(item, (tuple, list)) and len(item) in (2, 3) and np.ndim(item[0]) >= 3:
        return item[0], item[1]  # (x, y) or (x, y, sample_weight)
    return item, None


def _hash_update(h, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))


# ------------------------------------------------------------------------------ sources
class DataSource:
    """A data set, read batch by batch and fitted to one model.

    Attributes:
        kind: ``"array"``, ``"shapes"``, ``"shapes-stream"``, ``"paths"``, ``"folder"``,
            ``"dataset"`` or ``"iterable"``.
        total: the number of images, when known before reading.
        key: a fingerprint of the content (hash of the arrays, paths with sizes and
            modification times, or the stream's parameters), or the ``key`` the caller
            gave; ``None`` for a stream that cannot be fingerprinted without reading it.
        indexable: any range of images can be read on its own (``start``/``stop``).
        label_names: names of the labels (a folder's sub-folders, the shapes classes),
            when known.
        notes: what was changed to fit the model (filled while reading).
    """

    def __init__(self, data, loaded, kind, total, key, indexable, label_names=None):
        self.data = data
        self.loaded = loaded
        self.kind = kind
        self.total = total
        self._key = key  # a string, None, or a function computing it (on first use)
        self.indexable = indexable
        self.label_names = label_names
        self._fit = _Fitter(loaded)

    @property
    def key(self) -> str | None:
        """The content's fingerprint (computed on first use: hashing a large array takes
        time, and only a store needs it)."""
        if callable(self._key):
            self._key = self._key()
        return self._key

    @property
    def notes(self) -> list[str]:
        return self._fit.notes

    def __repr__(self) -> str:
        total = "?" if self.total is None else self.total
        return f"DataSource({self.kind}, {total} images)"

    def batches(self, batch_size: int = 64, start: int = 0, stop: int | None = None):
        """Yield :class:`Batch` objects of at most ``batch_size`` images, from image
        ``start`` up to ``stop`` (a range needs an indexable source)."""
        if batch_size < 1:
            raise CnnvizError(f"batch_size must be >= 1, got {batch_size}")
        if (start or stop is not None) and not self.indexable:
            raise CnnvizError(
                f"a {self.kind} source is read from the start only; give an array, a list of "
                "paths or a folder to read a part of it"
            )
        raw = self._raw(batch_size, start, stop)
        for x, y, src in _rebatch(raw, batch_size):
            images = self._fit(x)
            yield Batch(images, _labels(y, len(images)), src)

    def _raw(self, batch_size, start, stop) -> Iterator[tuple]:
        """``(images, labels or None, sources or None)`` pieces of any size."""
        data = self.data
        if self.kind in ("array", "shapes"):
            x, y = (data.images, data.labels) if self.kind == "shapes" else data
            stop = len(x) if stop is None else min(stop, len(x))
            for i in range(start, stop, batch_size):
                j = min(i + batch_size, stop)
                yield x[i:j], (None if y is None else y[i:j]), None
        elif self.kind == "shapes-stream":
            for part in data.read(start, stop):
                yield part.images, part.labels, None
        elif self.kind in ("paths", "folder"):
            paths, labels = data
            stop = len(paths) if stop is None else min(stop, len(paths))
            mode = "L" if self._fit.c == 1 else "RGB"
            for i in range(start, stop, batch_size):
                j = min(i + batch_size, stop)
                imgs = [self._read(p, mode) for p in paths[i:j]]
                yield (
                    _stack(imgs, paths[i:j]),
                    (None if labels is None else labels[i:j]),
                    list(paths[i:j]),
                )
        elif self.kind == "dataset":
            for item in data.as_numpy_iterator():
                x, y = _split(item)
                yield x, y, None
        else:
            for item in data:
                x, y = _split(item)
                yield x, y, None

    def _read(self, path: str, mode: str) -> np.ndarray:
        img = load_image(path, mode=mode)
        fitted, notes = fit_image(img, self._fit.h, self._fit.w, self._fit.c, warn=False)
        self._fit._note(notes)
        return fitted


def _stack(images: list[np.ndarray], paths) -> np.ndarray:
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise CnnvizError(
            f"the images {paths[0]!r}... have different sizes {sorted(shapes)} and the model "
            "takes any size: resize them to one size first"
        )
    return np.stack(images)


def _rebatch(pieces: Iterable[tuple], size: int) -> Iterator[tuple]:
    """Regroup ``(x, y, src)`` pieces (single images or batches of any size) into batches of
    ``size`` (the last may be smaller), holding at most one batch."""
    xs, ys, ss, have = [], [], [], 0
    labelled = sourced = None
    for x, y, src in pieces:
        x = x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else x
        x = np.asarray(x)
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] <= 4):
            x = x[None]  # one image
            y = None if y is None else np.reshape(np.asarray(y), (1, -1))
        elif x.ndim == 3:
            x = x[..., None]  # a batch of gray images (N, H, W)
        if x.ndim != 4:
            raise CnnvizError(
                f"a batch of images has shape (B, H, W, C); got an item of shape {x.shape}. "
                "Give images as arrays (B, H, W, C), (x, y) pairs or dicts with an 'image'"
            )
        if labelled is None:
            labelled, sourced = y is not None, src is not None
        while len(x):
            take = min(size - have, len(x))
            xs.append(x[:take])
            ys.append(None if y is None else np.asarray(y)[:take])
            ss.extend(src[:take] if src is not None else [])
            have += take
            x = x[take:]
            y = None if y is None else np.asarray(y)[take:]
            src = None if src is None else src[take:]
            if have == size:
                yield _join(xs, ys, ss, labelled, sourced)
                xs, ys, ss, have = [], [], [], 0
    if have:
        yield _join(xs, ys, ss, labelled, sourced)


def _join(xs, ys, ss, labelled, sourced):
    x = xs[0] if len(xs) == 1 else np.concatenate(xs)
    y = None
    if labelled and all(v is not None for v in ys):
        y = ys[0] if len(ys) == 1 else np.concatenate([np.asarray(v) for v in ys])
    return x, y, (list(ss) if sourced else None)


def _array_key(images: np.ndarray, labels: np.ndarray | None) -> str:
    h = hashlib.blake2b(digest_size=16)
    _hash_update(h, images)
    if labels is not None:
        _hash_update(h, labels)
    return h.hexdigest()


def _file_key(paths: list[str]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _folder(path: Path) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    files = sorted(
        str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise CnnvizError(
            f"the folder {str(path)!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)}): "
            "check the path, or pass a list of paths"
        )
    subdirs = sorted({Path(f).relative_to(path).parts[0] for f in files if Path(f).parent != path})
    if subdirs and all(Path(f).parent != path for f in files):
        index = {name: i for i, name in enumerate(subdirs)}
        labels = np.array([index[Path(f).relative_to(path).parts[0]] for f in files], np.int64)
        return files, labels, subdirs
    return files, None, None


def data_source(data, model, *, key: str | None = None) -> DataSource:
    """Wrap a data set for streaming through ``model``.

    Args:
        data: one of

            - a numpy array ``(N, H, W, C)`` (or ``(N, H, W)``) of images: uint8 0..255 or
              floats in ``[0, 1]`` (or 0..255), before any preprocessing; or a pair
              ``(images, labels)`` of arrays;
            - a :class:`ShapesBatch` (``generate_shapes(n)``) or a :class:`ShapesStream`;
            - a list of image file paths, or the path of a folder of image files (read
              recursively, in sorted order; when every image sits in a sub-folder, the
              sub-folders are the labels, as in Keras' ``image_dataset_from_directory``);
            - a ``tf.data.Dataset`` of images or ``(images, labels)``, batched or not;
            - any other iterable (a generator...) of image batches ``(B, H, W, C)``,
              ``(images, labels)`` pairs, dicts with an ``"image"`` entry, or ShapesBatch.
        model: the model the images are fitted to (its input size and channels).
        key: a name for the content of a stream that cannot be fingerprinted without reading
            it (a generator, a ``tf.data.Dataset``), so that stored results can be reused;
            for other sources it replaces the computed fingerprint.

    Returns:
        A :class:`DataSource`.

    Raises:
        CnnvizError: a value that is not a data set, an empty folder, a missing file.
    """
    loaded = as_loaded(model)
    if isinstance(data, DataSource):
        return data
    if isinstance(data, ShapesBatch):
        return DataSource(
            data,
            loaded,
            "shapes",
            len(data),
            key or (lambda: _array_key(data.images, data.labels)),
            True,
            list(data.class_names),
        )
    if isinstance(data, ShapesStream):
        return DataSource(
            data, loaded, "shapes-stream", len(data), key or repr(data), True, list(CLASS_NAMES)
        )
    labels = None
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and isinstance(data[0], np.ndarray)
        and data[0].ndim in (3, 4)
    ):
        data, labels = data  # (images, labels)
        labels = np.asarray(labels)
        if len(labels) != len(data):
            raise CnnvizError(
                f"(images, labels) with {len(data)} images but {len(labels)} labels: give one "
                "label per image"
            )
    if isinstance(data, np.ndarray):
        if data.ndim not in (3, 4) or len(data) == 0:
            raise CnnvizError(
                f"an array of images has shape (N, H, W, C) or (N, H, W) with N >= 1; got "
                f"{data.shape}. For one image, pass image[None]"
            )
        images = data
        return DataSource(
            (data, labels),
            loaded,
            "array",
            len(data),
            key or (lambda: _array_key(images, labels)),
            True,
        )
    if isinstance(data, (str, os.PathLike)):
        path = Path(os.fspath(data)).expanduser()
        if path.is_dir():
            files, labels, names = _folder(path)
            return DataSource(
                (files, labels),
                loaded,
                "folder",
                len(files),
                key or (lambda: _file_key(files)),
                True,
                names,
            )
        if path.is_file():
            data = [str(path)]
        else:
            raise CnnvizError(
                f"no folder or file at {str(path)!r} (working directory: {os.getcwd()}): "
                "check the path"
            )
    if (
        isinstance(data, (list, tuple))
        and data
        and all(isinstance(p, (str, os.PathLike)) for p in data)
    ):
        files = [os.fspath(Path(os.fspath(p)).expanduser()) for p in data]
        missing = [p for p in files if not os.path.isfile(p)]
        if missing:
            raise CnnvizError(
                f"{len(missing)} of the {len(files)} paths are not files, such as "
                f"{missing[0]!r} (working directory: {os.getcwd()}): check the paths"
            )
        return DataSource(
            (files, None), loaded, "paths", len(files), key or (lambda: _file_key(files)), True
        )
    try:
        import tensorflow as tf

        if isinstance(data, tf.data.Dataset):
            return DataSource(data, loaded, "dataset", None, key, False)
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        pass
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise CnnvizError(
            f"cannot read images from a {type(data).__name__}: give an array (N, H, W, C), a "
            "list of image paths, a folder, a tf.data.Dataset or an iterable of batches"
        )
    if isinstance(data, (list, tuple)) and not data:
        raise CnnvizError("the data is empty: give at least one image")
    return DataSource(data, loaded, "iterable", None, key, False)
