"""A durable on-disk store of per-unit results: one file per unit, an index, atomic writes.

Layout (``root`` is the directory the caller names)::

    root/<model>-<weights hash>/<layer>/<part>-<settings hash>/
        index.json        what the files are: the model, the layer, the settings
        unit-00042.npz    one unit's arrays (written whole or not at all)

The directory names are hashes of the model's weights and architecture and of every
setting that shapes the results, so a changed model or a changed setting reads a different
directory and never shows stale images.  A unit's file appears only complete: it is written
to a temporary file in the same directory and renamed over the final name
(``os.replace`` is atomic), so several processes, threads or cluster nodes can write into
one store at once (two writers of one unit write the same content) and a reader never sees
half a file.  The files present are the units finished: an interrupted job resumes by
skipping them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import uuid
from pathlib import Path

import keras
import numpy as np

from ...errors import CnnvizError

# numpy reads each array's header with ast.literal_eval, and CPython 3.11's AST conversion
# keeps one recursion counter per interpreter, not per thread: two threads loading units at
# once (the atlas panel reads while its runner writes and reads) failed once in a clean-clone
# CI run with "SystemError: AST constructor recursion depth mismatch".  Parsing is serialized.
_PARSE_LOCK = threading.Lock()

__all__ = [
    "UnitStore",
    "default_root",
    "model_fingerprint",
    "settings_hash",
    "write_atomic",
]

_UNIT = re.compile(r"^unit-(\d+)\.npz$")


def default_root() -> Path:
    """``$CNNVIZ_STORE`` if set, else ``~/.cache/cnnviz_widgets``."""
    env = os.environ.get("CNNVIZ_STORE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cnnviz_widgets"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` all at once: a temporary file beside it, flushed to disk,
    then renamed over ``path``.  Readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def model_fingerprint(model) -> str:
    """A hash of a model's architecture and every weight (the values, not the names of the
    variables), so that a retrained or changed model gets another store directory."""
    h = hashlib.blake2b(digest_size=16)
    try:
        h.update(model.to_json().encode())
    except Exception:  # a subclassed model: its layers' configs instead
        for layer in model.layers:
            h.update(type(layer).__name__.encode())
            try:
                h.update(json.dumps(layer.get_config(), sort_keys=True, default=str).encode())
            except Exception:
                h.update(layer.name.encode())
    for w in model.weights:
        # the backend variable's own numpy(): one copy (keras.ops.convert_to_numpy makes
        # two: half the time of a fingerprint, which an atlas of VGG16 pays at every call)
        value = getattr(w, "value", None)
        arr = value.numpy() if hasattr(value, "numpy") else keras.ops.convert_to_numpy(w)
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def settings_hash(settings: dict) -> str:
    """A short hash of JSON-able settings (key order does not matter)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "model"


class UnitStore:
    """One directory of per-unit files for one (model, layer, settings).

    Args:
        root: the store's root directory (created when first written).
        model_name: the model's name (for people reading the directory).
        model_hash: :func:`model_fingerprint` of the model.
        layer: the layer's path.
        part: what the files hold (``"vis"``, ``"examples"``).
        settings: every setting that shapes the results (JSON-able).
    """

    def __init__(
        self, root, model_name: str, model_hash: str, layer: str, part: str, settings: dict
    ):
        self.root = Path(root).expanduser()
        self.settings = dict(settings)
        self.info = {
            "model": model_name,
            "model_hash": model_hash,
            "layer": layer,
            "part": part,
            "settings": self.settings,
        }
        self.path = (
            self.root
            / f"{_slug(model_name)}-{model_hash[:12]}"
            / _slug(layer.replace("/", "__"))
            / f"{part}-{settings_hash(self.info)}"
        )

    def __repr__(self) -> str:
        return f"UnitStore({str(self.path)!r})"

    def _file(self, unit: int) -> Path:
        return self.path / f"unit-{int(unit):05d}.npz"

    def prepare(self) -> None:
        """Create the directory and its index (the same content from every writer)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CnnvizError(
                f"cannot create the store directory {str(self.path)!r} ({err}): pass "
                "store='/a/writable/folder'"
            ) from None
        index = self.path / "index.json"
        if not index.exists():
            write_atomic(index, json.dumps(self.info, indent=1, sort_keys=True).encode())

    def index(self) -> dict | None:
        """The index (model, layer, settings), or ``None`` when nothing was written."""
        try:
            return json.loads((self.path / "index.json").read_text())
        except (OSError, ValueError):
            return None

    def done(self) -> set[int]:
        """The units whose file is present (finished)."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return set()
        return {int(m.group(1)) for m in map(_UNIT.match, names) if m}

    def has(self, unit: int) -> bool:
        return self._file(unit).exists()

    def save(self, unit: int, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        """Write one unit's arrays (and JSON-able ``meta``) atomically."""
        buf = io.BytesIO()
        payload = {k: np.asarray(v) for k, v in arrays.items() if v is not None}
        payload["meta"] = np.array(json.dumps(meta or {}, default=str))
        np.savez(buf, **payload)
        write_atomic(self._file(unit), buf.getvalue())

    def load(self, unit: int) -> dict | None:
        """One unit's arrays (and ``"meta"`` as a dict), or ``None`` when not written."""
        try:
            data = self._file(unit).read_bytes()  # the disk read, outside the lock
            with _PARSE_LOCK, np.load(io.BytesIO(data), allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as err:
            raise CnnvizError(
                f"the store file {str(self._file(unit))!r} cannot be read ({err}); delete it "
                "to compute the unit again"
            ) from None
        out["meta"] = json.loads(str(out.get("meta", "{}")))
        return out
