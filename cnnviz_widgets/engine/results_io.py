"""Results a researcher can keep: save, load, a short ``repr`` and a meaningful ``==``.

:class:`Keepable` is a mixin for the result dataclasses (attributions, top examples,
optimization results, feature maps, atlas units).  A result is saved as **one** ``.npz``
file (numpy's open zip of ``.npy`` arrays, readable without this package)::

    __meta__        a JSON text: the format, the result's class and its fields, the model's
                    fingerprint (:func:`~.dataset.store.model_fingerprint`), your settings,
                    and the versions of this package, TensorFlow, Keras, numpy and Python
    a:<field>       one array per array field (``a:stats.mean`` for a field of a field)

so ``np.load(path)["a:heatmap"]`` and ``json.loads(str(np.load(path)["__meta__"]))`` read it
in any numpy.  No pickle: loading a file runs no code from it.

``cw.load_result(path)`` returns the class that was saved; ``Class.load(path)`` insists on
that class.  The mixin also gives every result a ``repr`` that shows shapes, not arrays
(``TopExamples`` printed 54,000 characters of numbers), and an ``==`` that compares arrays
with :func:`numpy.array_equal` (NaN equal to NaN) instead of raising "the truth value of
an array is ambiguous".

How the ``repr`` and ``==`` reach a dataclass: ``@dataclass`` writes its own ``__repr__``
and ``__eq__`` only when the class body does not define them, so the mixin's
``__init_subclass__`` (which runs when the class statement ends, before the decorator)
places its own in each subclass.  A subclass that defines either keeps its own.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import math
import platform
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import CnnvizError
from .figures.base import Figured

__all__ = ["Keepable", "load_result", "result_info"]

FORMAT = "cnnviz_widgets.result"
FORMAT_VERSION = 1
META = "__meta__"
_ARRAY = "a:"

_CLASSES: dict[str, type] = {}


# ------------------------------------------------------------------------------ mixin
class Keepable(Figured):
    """Save/load, a short ``repr`` and array-aware ``==`` for a result dataclass."""

    _keep_name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._keep_name = cls.__name__
        _CLASSES.setdefault(cls.__name__, cls)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = _short_repr
        if "__eq__" not in cls.__dict__:
            cls.__eq__ = _equal

    def save(self, path, *, model=None, settings: dict | None = None) -> Path:
        """Write this result to ``path`` (``.npz`` is added when missing).

        Args:
            path: the file to write (its directory must exist); replaced atomically.
            model: the model the result was computed on (a ``keras.Model`` or
                ``LoadedModel``): its fingerprint and name are recorded, and
                ``load(path, model=...)`` can check them.
            settings: anything JSON-able you want kept with it (data set, seed, ...).

        Returns:
            The path written.
        """
        from .dataset.store import write_atomic

        path = _npz_path(path)
        if not path.parent.is_dir():
            raise CnnvizError(
                f"cannot save to {str(path)!r}: folder {str(path.parent)!r} does not exist"
            )
        arrays: dict[str, np.ndarray] = {}
        fields = _encode(self, "", arrays)
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "class": type(self).__name__,
            "module": type(self).__module__,
            "fields": fields,
            "model": _model_meta(model),
            "settings": _json_safe(settings or {}, "settings"),
            "versions": versions(),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **{META: np.array(json.dumps(meta))}, **arrays)
        write_atomic(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path, *, model=None):
        """Read a result saved by :meth:`save`; it must be a ``cls`` (or a subclass).

        Args:
            path: the ``.npz`` file.
            model: when given, the model must be the one the result was saved with (same
                architecture and weights), else :class:`~cnnviz_widgets.CnnvizError`.
        """
        out = load_result(path, model=model)
        if not isinstance(out, cls):
            raise CnnvizError(
                f"{str(path)!r} holds a {type(out).__name__}, not a {cls.__name__}: "
                "read it with cw.load_result(path)"
            )
        return out


def load_result(path, *, model=None):
    """The result saved in ``path`` by ``result.save(path)``, as the class it was saved from.

    Args:
        path: a ``.npz`` written by :meth:`Keepable.save`.
        model: when given, checked against the fingerprint of the model recorded at save
            time; a different model (other weights or architecture) raises.
    """
    meta, data = _read(path)
    if model is not None:
        _check_model(path, meta, model)
    arrays = {k[len(_ARRAY) :]: data[k] for k in data.files if k.startswith(_ARRAY)}
    return _decode(meta["fields"], arrays)


def result_info(path) -> dict:
    """The metadata of a saved result (class, model fingerprint, settings, versions),
    without its arrays."""
    meta, _ = _read(path)
    return {k: v for k, v in meta.items() if k != "fields"}


def versions() -> dict:
    """The versions a result was computed with."""
    import keras
    import tensorflow as tf

    try:
        from importlib.metadata import version

        ours = version("cnnviz_widgets")
    except Exception:  # not installed (a source checkout on the path)
        ours = "unknown"
    return {
        "cnnviz_widgets": ours,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# ------------------------------------------------------------------------ repr and ==
def _short_repr(self) -> str:
    parts = []
    for f in dataclasses.fields(self):
        if not f.repr:
            continue
        parts.append(f"{f.name}={_brief(getattr(self, f.name))}")
    return f"{type(self).__name__}({', '.join(parts)})"


def _brief(value, depth: int = 0) -> str:
    if isinstance(value, np.ndarray):
        if value.size <= 4 and value.ndim <= 1:
            return f"array({value.tolist()}, {value.dtype})"
        return f"array(shape={value.shape}, {value.dtype})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if depth:
            return f"{type(value).__name__}(...)"
        return f"<{type(value).__name__}: {', '.join(_field_names(value)[:6])}>"
    if isinstance(value, (list, tuple)):
        if len(value) <= 3 and all(isinstance(v, (int, float, str, type(None))) for v in value):
            text = repr(value)
            if len(text) <= 120:
                return text
        kind = "list" if isinstance(value, list) else "tuple"
        first = _brief(value[0], depth + 1) if value else ""
        return f"<{kind} of {len(value)}{': ' + first + ', ...' if value else ''}>"
    if isinstance(value, str) and len(value) > 80:
        return repr(value[:77] + "...")
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _field_names(obj) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def _equal(self, other) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return all(
        _same(getattr(self, f.name), getattr(other, f.name))
        for f in dataclasses.fields(self)
        if f.compare
    )


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        nan_ok = a.dtype.kind in "fc"
        return bool(np.array_equal(a, b, equal_nan=nan_ok))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        if type(a) is not type(b):
            return False
        return all(_same(getattr(a, n), getattr(b, n)) for n in _field_names(a))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


# ------------------------------------------------------------------------ encoding
def _encode(obj, prefix: str, arrays: dict) -> dict:
    """A dataclass as ``{"__dataclass__": name, "module": ..., "fields": {...}}``; its
    arrays go to ``arrays`` under dotted keys."""
    fields = {}
    for f in dataclasses.fields(obj):
        fields[f.name] = _value(getattr(obj, f.name), f"{prefix}{f.name}", arrays)
    return {"__dataclass__": type(obj).__name__, "module": type(obj).__module__, "fields": fields}


def _value(v, key: str, arrays: dict):
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            raise CnnvizError(f"cannot save field {key!r}: an array of Python objects")
        arrays[_ARRAY + key] = v
        return {"__array__": key}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return _encode(v, key + ".", arrays)
    if isinstance(v, tuple):
        return {"__tuple__": [_value(x, f"{key}.{i}", arrays) for i, x in enumerate(v)]}
    if isinstance(v, list):
        return [_value(x, f"{key}.{i}", arrays) for i, x in enumerate(v)]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise CnnvizError(f"cannot save field {key!r}: a dict with non-text keys")
        return {"__dict__": {k: _value(x, f"{key}.{k}", arrays) for k, x in v.items()}}
    return _scalar(v, key)


def _scalar(v, key: str):
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return {"__float__": repr(v)}  # 'inf', '-inf', 'nan': JSON has no such numbers
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, Path):
        return str(v)
    raise CnnvizError(
        f"cannot save field {key!r}: a {type(v).__name__} is not an array, number, text, "
        "list or dataclass"
    )


def _json_safe(v, key: str):
    return _value(v, key, _NoArrays())


class _NoArrays(dict):
    def __setitem__(self, key, value):
        raise CnnvizError(
            f"settings are JSON (numbers, text, lists): {key[len(_ARRAY) :]!r} is an array"
        )


def _decode(node, arrays: dict):
    if isinstance(node, list):
        return [_decode(x, arrays) for x in node]
    if not isinstance(node, dict):
        return node
    if "__array__" in node:
        return arrays[node["__array__"]]
    if "__float__" in node:
        return float(node["__float__"])
    if "__tuple__" in node:
        return tuple(_decode(x, arrays) for x in node["__tuple__"])
    if "__dict__" in node:
        return {k: _decode(x, arrays) for k, x in node["__dict__"].items()}
    if "__dataclass__" in node:
        cls = _class(node["__dataclass__"], node.get("module", ""))
        values = {k: _decode(x, arrays) for k, x in node["fields"].items()}
        known = {f.name: f for f in dataclasses.fields(cls)}
        extra = sorted(set(values) - set(known))
        if extra:
            raise CnnvizError(
                f"this file's {cls.__name__} has fields {extra} that this version of "
                "cnnviz_widgets does not know: read it with the version that saved it "
                "(result_info(path)['versions'])"
            )
        init = {k: v for k, v in values.items() if known[k].init}
        out = cls(**init)
        for k, v in values.items():
            if not known[k].init:
                object.__setattr__(out, k, v)
        return out
    raise CnnvizError(f"unreadable entry in a saved result: {sorted(node)[:4]}")


def _class(name: str, module: str) -> type:
    if name in _CLASSES:
        return _CLASSES[name]
    if module.startswith("cnnviz_widgets."):  # a nested dataclass (never import elsewhere)
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
        if isinstance(found, type) and dataclasses.is_dataclass(found):
            return found
    raise CnnvizError(
        f"a saved result holds a {name} (from {module}) that this version of cnnviz_widgets "
        "does not have"
    )


# ------------------------------------------------------------------------------ files
def _npz_path(path) -> Path:
    path = Path(path).expanduser()
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _read(path) -> tuple[dict, Any]:
    p = Path(path).expanduser()
    if not p.exists() and _npz_path(p).exists():
        p = _npz_path(p)
    if not p.is_file():
        raise CnnvizError(f"no saved result at {str(p)!r}")
    try:
        data = np.load(p, allow_pickle=False)
        meta = json.loads(str(data[META]))
    except Exception as exc:
        raise CnnvizError(
            f"{str(p)!r} is not a result saved by cnnviz_widgets (result.save(path)): {exc}"
        ) from None
    if meta.get("format") != FORMAT:
        raise CnnvizError(f"{str(p)!r} is an .npz but not a saved cnnviz_widgets result")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CnnvizError(
            f"{str(p)!r} was saved by a newer cnnviz_widgets (format "
            f"{meta['format_version']}); upgrade to read it"
        )
    return meta, data


def _model_meta(model) -> dict | None:
    if model is None:
        return None
    from .dataset.store import model_fingerprint
    from .model.loading import as_loaded

    loaded = as_loaded(model)
    return {"name": loaded.model.name, "fingerprint": model_fingerprint(loaded.model)}


def _check_model(path, meta: dict, model) -> None:
    saved = meta.get("model")
    if not saved:
        raise CnnvizError(
            f"{str(path)!r} was saved without its model (save(path, model=m)): "
            "it cannot be checked against one; load it without model="
        )
    now = _model_meta(model)
    if now["fingerprint"] != saved["fingerprint"]:
        raise CnnvizError(
            f"{str(path)!r} was computed on another model ({saved['name']!r}, fingerprint "
            f"{saved['fingerprint'][:12]}...) than {now['name']!r} ({now['fingerprint'][:12]}"
            "...): other weights or architecture"
        )
