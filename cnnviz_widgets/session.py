"""The one shared state of the widgets: a model, its layer table, and what is selected.

A :class:`Session` is not a widget.  Panels take a session (or a model, from which they
make one), observe its traits and set them; they never refer to each other::

    session = Session("shapes")
    browser = LayerBrowser(session)   # selecting a layer sets session.layer
    gallery = FilterGallery(session)  # shows the filters of session.layer
    session.layer = "conv2"           # both panels follow
"""

from __future__ import annotations

import numbers
from typing import Any

import keras
import numpy as np
import traitlets

from .engine import (
    LayerRow,
    LayerTable,
    LoadedModel,
    filter_count,
    get_layer,
    layer_table,
    load_model,
    model_outputs,
    resolve_class,
    select_output,
)
from .errors import CnnvizError, LayerNotFoundError


class SelectionError(CnnvizError):
    """A channel or class index that the current model or layer does not have."""


class _LayerPath(traitlets.Unicode):
    """A layer of the session's model, stored as its path.

    Accepts whatever :func:`cnnviz_widgets.get_layer` accepts: a top-level index, a name,
    a path through nested models, or a layer object.
    """

    info_text = "a layer path, name, top-level index or layer object of the model"

    def validate(self, obj, value):
        if value is None:
            return None if self.allow_none else self.error(obj, value)
        return obj._layer_path(value)


class _Index(traitlets.Int):
    """An optional non-negative int; numpy integers accepted."""

    def validate(self, obj, value):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            return self.error(obj, value)
        return int(value)


class _ClassIndex(_Index):
    """A class index; a class name is turned into its index."""

    def validate(self, obj, value):
        if isinstance(value, str):
            return obj.class_index_of(value)
        return super().validate(obj, value)


class _Output(traitlets.Any):
    """The output the panels read, stored by name; ``None`` only for a one-output model
    (checked here: traitlets does not validate ``None`` for traits that allow it)."""

    def _validate(self, obj, value):
        return obj._output_name(value)


class Session(traitlets.HasTraits):
    """Shared state of the panels: the model and the current layer, channel and class.

    Args:
        model: a model name (``"shapes"``, ``"vgg16"``, ...), a path to a ``.keras``/``.h5``
            file, a built ``keras.Model`` or a ``LoadedModel``.
        layer, channel, class_index: initial selection (see the traits).
        **load_kwargs: passed to :func:`cnnviz_widgets.load_model` (``weights=None``, ...).

    Traits (observe them with ``session.observe(callback, names="layer")``):
        layer: path of the selected layer (``"conv1"``, ``"vgg16/block5_conv1"``) or
            ``None``.  Assign an index, a name, a path or a layer object: it is stored as
            the path.  Changing the layer clears ``channel``.
        channel: the selected filter / output channel of ``layer`` (``0..n-1``) or ``None``.
        class_index: the selected output class (``0..classes-1``) or ``None``.  A class
            name may be assigned (``session.class_index = "circle"``).
        output: for a model with several outputs, the name of the one whose classes the
            panels explain and optimize (default: the first; an index may be assigned);
            ``None`` for a model with one output.  Changing it clears ``class_index``.

    Raises:
        LayerNotFoundError: an unknown layer.
        SelectionError: a channel or class index out of range.
    """

    layer = _LayerPath(None, allow_none=True)
    channel = _Index(None, allow_none=True)
    class_index = _ClassIndex(None, allow_none=True)
    output = _Output(None)

    def __init__(
        self,
        model: Any,
        *,
        layer: Any = None,
        channel: int | None = None,
        class_index: int | str | None = None,
        output: str | int | None = None,
        **load_kwargs: Any,
    ) -> None:
        self.loaded: LoadedModel = load_model(model, **load_kwargs)
        self._table: LayerTable | None = None
        super().__init__()
        if output is not None or len(self.outputs) > 1:
            self.output = self.outputs[0].name if output is None else output
        if layer is not None:
            self.layer = layer
        if channel is not None:
            self.channel = channel
        if class_index is not None:
            self.class_index = class_index

    @classmethod
    def of(cls, model_or_session: Any, **load_kwargs: Any) -> Session:
        """The session itself, or a new session on a model (what every panel accepts)."""
        if isinstance(model_or_session, Session):
            if load_kwargs:
                raise CnnvizError(
                    "load options such as weights=... apply when a model is loaded; this "
                    "session already has its model, so pass the session alone"
                )
            return model_or_session
        return cls(model_or_session, **load_kwargs)

    # --- what panels read -------------------------------------------------------------

    @property
    def model(self) -> keras.Model:
        """The Keras model (never modified)."""
        return self.loaded.model

    @property
    def table(self) -> LayerTable:
        """Every layer as rows (:func:`cnnviz_widgets.layer_table`), computed once."""
        if self._table is None:
            self._table = layer_table(self.loaded)
        return self._table

    @property
    def layer_row(self) -> LayerRow | None:
        """The table row of the selected layer, or ``None``."""
        return None if self.layer is None else self.table.row(self.layer)

    @property
    def conv_layers(self) -> list[str]:
        """Paths of the layers whose filters can be shown."""
        return [r.path for r in self.table if r.has_kernel]

    @property
    def outputs(self) -> list:
        """The model's outputs (:func:`cnnviz_widgets.model_outputs`: index, name, shape)."""
        return model_outputs(self.loaded)

    @property
    def scored(self) -> LoadedModel:
        """The model whose class scores the panels read: ``loaded`` itself, or for a
        model with several outputs the view of ``output``
        (:func:`cnnviz_widgets.select_output`)."""
        return select_output(self.loaded, self.output)

    @property
    def n_classes(self) -> int | None:
        """Number of classes of the scored output (its last axis), or ``None``."""
        scored = self.scored
        if scored.class_names:
            return len(scored.class_names)
        outputs = scored.model.outputs
        if len(outputs) == 1 and outputs[0].shape[-1] is not None:
            return int(outputs[0].shape[-1])
        return None

    def class_name(self, index: int | None = None) -> str | None:
        """The name of class ``index`` (default: the selected class), or ``None``."""
        index = self.class_index if index is None else index
        if index is None:
            return None
        names = self.scored.class_names
        return names[index] if names and 0 <= index < len(names) else str(index)

    def n_channels(self, layer: Any = None) -> int | None:
        """Output channels of ``layer`` (default: the selected one): the filters the
        gallery shows for a convolution (for depthwise and separable convolutions, the
        depthwise filters), the last axis of its output otherwise; ``None`` when unknown."""
        ref = self.layer if layer is None else layer
        if ref is None:
            return None
        row = self.table.row(self._layer_path(ref))
        if row.has_kernel:  # as many as the filter gallery shows
            return filter_count(get_layer(self.loaded, row.path)[0])
        shape = row.output_shape
        if isinstance(shape, tuple) and shape and isinstance(shape[-1], int):
            return shape[-1]
        return None

    def select(self, layer: Any = None, channel: int | None = None) -> None:
        """Set the layer, then the channel (setting the layer alone clears the channel)."""
        if layer is not None:
            self.layer = layer
        self.channel = channel

    # --- validation -------------------------------------------------------------------

    def _layer_path(self, ref: Any) -> str:
        if isinstance(ref, str):
            stripped = ref.strip().strip("/")
            for row in self.table:  # fast path, and the table's own lookup order
                if row.path == stripped:
                    return row.path
        if isinstance(ref, (np.integer, numbers.Integral)) and not isinstance(ref, bool):
            ref = int(ref)
        elif not isinstance(ref, (str, keras.layers.Layer)):
            raise LayerNotFoundError(
                f"cannot select a layer from a {type(ref).__name__}: assign a layer name, a "
                "path 'outer/inner', a top-level index or a layer object"
            )
        _, path = get_layer(self.loaded, ref)
        return path

    def class_index_of(self, ref) -> int:
        """A class given by index or name, as an index checked against the model's classes.

        Raises ``SelectionError`` naming the closest class names, or the valid range.
        """
        names = self.scored.class_names
        if isinstance(ref, str) and not names:
            raise SelectionError(
                f"this model has no class names, so {ref!r} cannot be looked up: assign "
                "the class index (an int), or load the model with class_names=[...]"
            )
        n = self.n_classes
        if n is None and not isinstance(ref, str):
            if int(ref) < 0:
                raise SelectionError(
                    f"class index {int(ref)} is out of range: use a non-negative int"
                )
            return int(ref)
        try:
            return resolve_class(ref, n or 0, names)
        except CnnvizError as err:
            raise SelectionError(str(err)) from None

    @traitlets.validate("channel")
    def _check_channel(self, proposal):
        value = proposal["value"]
        if value is None:
            return None
        n = self.n_channels() if self.layer is not None else None
        if value < 0 or (n is not None and value >= n):
            where = f"layer {self.layer!r} has {n} channels" if n else "channels start at 0"
            span = f"0..{n - 1}" if n else "a non-negative int"
            raise SelectionError(f"channel {value} is out of range: {where}; use {span}")
        return value

    @traitlets.validate("class_index")
    def _check_class(self, proposal):
        value = proposal["value"]
        return None if value is None else self.class_index_of(value)

    def _output_name(self, value):
        if value is None and len(self.outputs) > 1:
            raise SelectionError(
                "a model with several outputs has one selected: "
                + ", ".join(repr(o.name) for o in self.outputs)
            )
        try:  # stored as the output's name (an index is accepted)
            return select_output(self.loaded, value, call="session.output = {output}").output
        except CnnvizError as err:
            raise SelectionError(str(err)) from None

    @traitlets.observe("output")
    def _clear_class(self, change):
        if change["old"] != change["new"]:
            self.class_index = None

    @traitlets.observe("layer")
    def _clear_channel(self, change):
        if change["old"] != change["new"]:
            self.channel = None

    def __repr__(self) -> str:
        return (
            f"Session({self.loaded.name!r}, layer={self.layer!r}, channel={self.channel!r}, "
            f"class_index={self.class_index!r})"
        )
