"""Layer introspection: every layer of a model, nested models included, as table rows.

Reads the model only: nothing here changes weights, config or graph.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

import keras
import numpy as np

from ...errors import CnnvizError, LayerNotFoundError, closest
from .internals import iter_layers, output_shape, parent_operations
from .loading import as_keras_model

# Layers whose kernels the filter views can show (Conv3D's 3-D kernels are not).
KERNEL_LAYER_TYPES: tuple[type, ...] = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
)


@dataclass(frozen=True)
class LayerRow:
    """One layer of a model.

    Attributes:
        index: position in its parent's ``.layers`` (top level: ``model.layers[index]``).
        path: names from the top model down, joined by ``/`` (``"vgg16/block5_conv1"``).
        name: the layer's name.
        class_name: the layer's class (``"Conv2D"``).
        output_shape: without the batch axis' value (``(None, 14, 14, 512)``); a list for
            several outputs; ``None`` when the layer is used more than once.
        trainable_params / non_trainable_params: parameter counts (a nested model counts
            all its layers).
        config: ``layer.get_config()``, made JSON-friendly (a nested model's config lists
            its layers by name instead of repeating their configs).
        inbound: names of the layers feeding this one, in its parent's graph.
        depth: 0 for top-level layers, 1 inside a nested model, ...
        trainable: the layer's ``trainable`` flag.
        is_model: the layer is itself a model (expandable).
        has_kernel: the layer has convolution filters to show.
    """

    index: int
    path: str
    name: str
    class_name: str
    output_shape: tuple | list | None
    trainable_params: int
    non_trainable_params: int
    config: dict
    inbound: tuple[str, ...]
    depth: int
    trainable: bool
    is_model: bool
    has_kernel: bool

    @property
    def params(self) -> int:
        """All parameters, trainable or not."""
        return self.trainable_params + self.non_trainable_params

    def to_dict(self) -> dict:
        """A plain dict (JSON-serialisable)."""
        return asdict(self)


class LayerTable(list):
    """The rows of :func:`layer_table`, with lookup and a text rendering (``print(table)``)."""

    def row(self, ref: str | int) -> LayerRow:
        """The row with this path or name (paths first), or with this top-level index."""
        if isinstance(ref, (int, np.integer)):
            for r in self:
                if r.depth == 0 and r.index == int(ref):
                    return r
        else:
            for key in ("path", "name"):
                for r in self:
                    if getattr(r, key) == ref:
                        return r
        names = [r.path for r in self]
        raise LayerNotFoundError(_not_found_message(ref, names, self.top_level_count()))

    def top_level_count(self) -> int:
        return sum(1 for r in self if r.depth == 0)

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self if r.depth == 0)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self if r.depth == 0)

    def __str__(self) -> str:
        head = ("#", "layer", "type", "output shape", "params", "inbound")
        body = [
            (
                str(r.index),
                "  " * r.depth + r.name,
                r.class_name,
                format_shape(r.output_shape),
                f"{r.params:,}",
                ", ".join(r.inbound),
            )
            for r in self
        ]
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [head, *body]
        ]
        lines.insert(1, "-" * len(lines[0]))
        lines.append(
            f"total params: {self.total_params:,}  trainable: {self.trainable_params:,}  "
            f"non-trainable: {self.total_params - self.trainable_params:,}"
        )
        return "\n".join(lines)


def format_shape(shape) -> str:
    """``(None, 14, 14, 512)`` -> ``"(None, 14, 14, 512)"``; lists joined; ``None`` -> ``"?"``."""
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def jsonable(value):
    """Make a config value JSON-serialisable, keeping tuples (``json`` writes them as lists)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(jsonable(v) for v in value)
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return repr(value)


def _count(weights) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def _output_shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if isinstance(out, (list, tuple)):
        return [tuple(t.shape) for t in out]
    if isinstance(out, dict):
        return [tuple(t.shape) for t in out.values()]
    return tuple(out.shape)


def _inbound(layer, members: set[int]) -> tuple[str, ...]:
    names: list[str] = []
    for op in parent_operations(layer):
        if id(op) in members or isinstance(op, keras.layers.InputLayer):
            names.append(op.name)
    return tuple(dict.fromkeys(names))


def _config(layer) -> dict:
    if isinstance(layer, keras.Model):
        return {
            "name": layer.name,
            "trainable": layer.trainable,
            "layers": [sub.name for sub in layer.layers],
        }
    try:
        return jsonable(layer.get_config())
    except Exception as err:  # custom layers may not implement get_config
        return {"name": layer.name, "error": f"get_config() failed: {err}"}


def has_kernel(layer) -> bool:
    """True for convolution layers whose filters can be shown."""
    return isinstance(layer, KERNEL_LAYER_TYPES)


def layer_table(model) -> LayerTable:
    """Every layer of ``model`` as a :class:`LayerRow`, nested models' layers included.

    Args:
        model: a built ``keras.Model`` or a ``LoadedModel``.

    Returns:
        A :class:`LayerTable` (a list of rows; ``print`` it for a text table).
    """
    model = as_keras_model(model)
    rows = LayerTable()
    members_of: dict[int, set[int]] = {}
    for index, path, depth, layer, parent in iter_layers(model):
        members = members_of.setdefault(id(parent), {id(x) for x in parent.layers})
        rows.append(
            LayerRow(
                index=index,
                path=path,
                name=layer.name,
                class_name=type(layer).__name__,
                output_shape=_output_shape(layer),
                trainable_params=_count(layer.trainable_weights),
                non_trainable_params=_count(layer.non_trainable_weights),
                config=_config(layer),
                inbound=_inbound(layer, members),
                depth=depth,
                trainable=bool(layer.trainable),
                is_model=isinstance(layer, keras.Model),
                has_kernel=has_kernel(layer),
            )
        )
    return rows


def _not_found_message(ref, paths: list[str], top_count: int) -> str:
    if isinstance(ref, (int, np.integer)):
        return (
            f"no layer at index {ref}: the model has {top_count} top-level layers, so use "
            f"0..{top_count - 1} (or -1 for the last), or a layer name"
        )
    names = [p.rsplit("/", 1)[-1] for p in paths] + paths
    hint = closest(str(ref), names)
    return (
        f"no layer named {ref!r}"
        + (f"; closest: {', '.join(hint)}" if hint else "")
        + ". Pass a layer name, a path through nested models like 'outer/inner', or a "
        "top-level index; layer_table(model) lists them all"
    )


def get_layer(model, ref) -> tuple[keras.layers.Layer, str]:
    """Find a layer; returns ``(layer, path)``.

    Args:
        model: a built ``keras.Model`` or a ``LoadedModel``.
        ref: a top-level index (``model.layers[ref]``, negative allowed), a layer name
            (top level first, then inside nested models), a path ``"outer/inner"``, or a
            layer object of the model.
    """
    return find_layer(as_keras_model(model), ref)


def tap_shape(found, path: str) -> tuple:
    """The output shape of ``found`` (at ``path``) for a pass that reads its output:
    a nested model is refused naming one of its layers, and so is a layer with several
    outputs or used more than once."""
    if isinstance(found, keras.Model):
        raise CnnvizError(
            f"{path!r} is a nested model: pick one of its layers, such as "
            f"{path}/{found.layers[-1].name}"
        )
    shape = output_shape(found)
    if shape is None:
        raise CnnvizError(
            f"layer {path!r} has several outputs or is used more than once: pick another layer"
        )
    return shape


def find_layer(model: keras.Model, ref) -> tuple[keras.layers.Layer, str]:
    """:func:`get_layer` for engine code that holds the checked ``keras.Model`` already
    (the user's model is converted and checked once, where it enters the engine)."""
    if isinstance(ref, keras.layers.Layer):
        for _, path, _, layer, _ in iter_layers(model):
            if layer is ref:
                return layer, path
        raise LayerNotFoundError(
            f"layer {ref.name!r} is not part of model {model.name!r}: pass one of its "
            "layers, or its name"
        )
    entries = list(iter_layers(model))
    paths = [e[1] for e in entries]
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        n = len(model.layers)
        if -n <= int(ref) < n:
            layer = model.layers[int(ref)]
            return layer, layer.name
        raise LayerNotFoundError(_not_found_message(ref, paths, n))
    if isinstance(ref, str):
        ref_clean = ref.strip().strip("/")
        for _, path, _, layer, _ in entries:
            if path == ref_clean:
                return layer, path
        by_name = [(layer, path) for _, path, _, layer, _ in entries if layer.name == ref_clean]
        if by_name:
            return min(by_name, key=lambda lp: lp[1].count("/"))
        raise LayerNotFoundError(_not_found_message(ref, paths, len(model.layers)))
    raise LayerNotFoundError(
        f"cannot find a layer from a {type(ref).__name__}: pass an index, a name, a path "
        "'outer/inner' or a layer object"
    )


_BLOCK = re.compile(r"^([A-Za-z]+\d+)_")


def first_conv_per_block(model) -> list[str]:
    """Paths of the first convolution layer of each block, in model order.

    A block is a run of layers sharing a name prefix such as ``block3_`` or ``conv2_``
    (VGG, ResNet); a conv layer without such a prefix is its own block.  For VGG16 this
    is block1_conv1 ... block5_conv1, the layers 1, 4, 7, 11, 15 of the keras-vis CNN-visualization
    tutorial.
    """
    model = as_keras_model(model)
    seen: set[str] = set()
    paths: list[str] = []
    for _, path, _, layer, _ in iter_layers(model):
        if not has_kernel(layer):
            continue
        match = _BLOCK.match(layer.name)
        parent = path.rpartition("/")[0]
        block = parent + "/" + (match.group(1) if match else layer.name)
        if block not in seen:
            seen.add(block)
            paths.append(path)
    return paths


def config_text(config: dict) -> str:
    """A config dict as indented JSON text."""
    return json.dumps(config, indent=2)
