"""LayerBrowser: every layer of a model, filtered by name and type, with its details."""

from __future__ import annotations

from collections import Counter
from typing import Any

import ipywidgets as widgets

from ..engine import LayerRow, get_layer
from .common import Panel, esc, style_sheet

NBSP = "\u00a0"
ALL_TYPES = ""


def format_shape(shape: Any) -> str:
    """``(None, 64, 64, 16)`` as text; a list of shapes joined; ``None`` as ``?``."""
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return ", ".join(format_shape(s) for s in shape)
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def format_value(value: Any, depth: int = 0) -> str:
    """A config value as short readable text.

    Keras' serialized objects (``{"class_name": "GlorotUniform", "config": {...}}``)
    become ``GlorotUniform(seed=None)``; a dtype policy becomes its name.
    """
    if isinstance(value, dict):
        if "class_name" in value and "config" in value:
            config = value.get("config") or {}
            if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy") and "name" in config:
                return str(config["name"])
            if isinstance(config, dict):
                inner = ", ".join(f"{k}={format_value(v, depth + 1)}" for k, v in config.items())
            else:
                inner = format_value(config, depth + 1)
            return f"{value['class_name']}({inner})"
        inner = ", ".join(f"{k}: {format_value(v, depth + 1)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v, depth + 1) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        shown = [format_value(v, depth + 1) for v in value[:40]]
        more = f", … {len(value) - 40} more" if len(value) > 40 else ""
        return "[" + ", ".join(shown) + more + "]"
    if isinstance(value, str) and depth > 0:
        return repr(value)
    return str(value)


def _kv_table(items: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<table class="cnnviz-kv">{body}</table>'


class LayerBrowser(Panel):
    """Every layer of a model (nested models indented), searchable, with its details.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session` or a model (name,
            path, ``keras.Model``, ``LoadedModel``).
        rows: how many layers the list shows at once.
        **load_kwargs: passed to ``load_model`` when a model is given.

    Selecting a layer sets ``session.layer``; when another panel (or code) sets it, the
    selection follows.  The details show the layer's shapes, parameters, weights, inbound
    layers and its ``get_config()`` as key / value rows.

    Attributes:
        name_filter: the text box filtering layer names.
        type_filter: the layer-type dropdown.
        layer_list: the ``Select`` of layers (values are layer paths).
        summary, details: HTML widgets.
    """

    def __init__(self, model_or_session: Any, *, rows: int = 14, **load_kwargs: Any) -> None:
        super().__init__(model_or_session, css_class="cnnviz-layer-browser", **load_kwargs)
        table = self.session.table
        self.title = widgets.HTML()
        self.title.add_class("cnnviz-title")
        self.summary = widgets.HTML()
        self.summary.add_class("cnnviz-muted")
        self.name_filter = widgets.Text(
            placeholder="filter by name…",
            description="Name",
            continuous_update=True,
            layout=widgets.Layout(width="260px"),
            style={"description_width": "44px"},
        )
        self.name_filter.add_class("cnnviz-name-filter")
        counts = Counter(r.class_name for r in table)
        self.type_filter = widgets.Dropdown(
            options=[(f"all types ({len(table)})", ALL_TYPES)]
            + [(f"{name} ({n})", name) for name, n in sorted(counts.items())],
            value=ALL_TYPES,
            description="Type",
            layout=widgets.Layout(width="280px"),
            style={"description_width": "40px"},
        )
        self.type_filter.add_class("cnnviz-type-filter")
        self.count = widgets.HTML()
        self.count.add_class("cnnviz-muted")
        self.list_head = widgets.HTML()
        self.list_head.add_class("cnnviz-list-head")
        self.layer_list = widgets.Select(options=[], rows=min(rows, max(len(table), 2)))
        self.layer_list.add_class("cnnviz-layer-list")
        self.details = widgets.HTML()
        self.details.add_class("cnnviz-details")

        self._widths = self._column_widths()
        self._shown: set[str] = set()
        self._updating = False
        # as wide as a row of the list (12.5 px monospace: ~7.6 px a character), so the
        # details wrap below the list rather than cut its parameter column
        width = (sum(self._widths) + 6 + 11) * 7.6 + 28
        left = widgets.VBox(
            [self.list_head, self.layer_list],
            layout=widgets.Layout(flex=f"1 1 {width:.0f}px", min_width=f"min(100%, {width:.0f}px)"),
        )
        left.add_class("cnnviz-layer-column")
        right = widgets.VBox(
            [self.details],
            layout=widgets.Layout(flex="1 1 340px", min_width="300px", padding="0 0 0 8px"),
        )
        controls = widgets.HBox([self.name_filter, self.type_filter, self.count])
        controls.add_class("cnnviz-controls")
        body = widgets.HBox([left, right], layout=widgets.Layout(flex_flow="row wrap"))
        self.children = [
            style_sheet(),
            self.title,
            self.summary,
            controls,
            self.messages,
            body,
        ]

        self.name_filter.observe(self.guarded(self._on_filter), names="value")
        self.type_filter.observe(self.guarded(self._on_filter), names="value")
        self.layer_list.observe(self.guarded(self._on_pick), names="value")
        self.observe_session(self._on_session_layer, names=["layer"])
        self._render_summary()
        self._refresh_options()
        self._show_details()

    # --- rendering --------------------------------------------------------------------

    def _column_widths(self) -> tuple[int, int, int]:
        table = self.session.table
        name_w = max(len("layer"), *(2 * r.depth + 2 + len(r.name) for r in table))
        type_w = max(len("type"), *(len(r.class_name) for r in table))
        shape_w = max(len("output shape"), *(len(format_shape(r.output_shape)) for r in table))
        return name_w, type_w, shape_w

    def _label(self, row: LayerRow) -> str:
        name_w, type_w, shape_w = self._widths
        marker = "▾ " if row.is_model else "  "
        name = "  " * row.depth + marker + row.name
        text = (
            f"{name:<{name_w}}  {row.class_name:<{type_w}}  "
            f"{format_shape(row.output_shape):<{shape_w}}  {row.params:>11,}"
        )
        return text.rstrip().replace(" ", NBSP)

    def _render_summary(self) -> None:
        loaded = self.session.loaded
        table = self.session.table
        total, trainable = table.total_params, table.trainable_params
        inputs = ", ".join(format_shape(tuple(t.shape)) for t in loaded.model.inputs)
        outputs = ", ".join(format_shape(tuple(t.shape)) for t in loaded.model.outputs)
        nested = sum(1 for r in table if r.depth > 0)
        self.title.value = (
            f'Layers <span class="cnnviz-sub">of {esc(loaded.name)} '
            f"({esc(type(loaded.model).__name__)})</span>"
        )
        self.summary.value = (
            f"{table.top_level_count()} layers"
            + (f" + {nested} inside nested models" if nested else "")
            + f" · <b>{total:,}</b> parameters ({trainable:,} trainable, "
            f"{total - trainable:,} non-trainable) · input <code>{esc(inputs)}</code> → "
            f"output <code>{esc(outputs)}</code>"
        )
        name_w, type_w, shape_w = self._widths
        head = (
            f"{'layer':<{name_w}}  {'type':<{type_w}}  {'output shape':<{shape_w}}  {'params':>11}"
        )
        self.list_head.value = esc(head.rstrip())

    def visible_rows(self) -> list[LayerRow]:
        """The rows that pass the name and type filters."""
        text = self.name_filter.value.strip().lower()
        kind = self.type_filter.value
        return [
            r
            for r in self.session.table
            if (not text or text in r.path.lower()) and (not kind or r.class_name == kind)
        ]

    def _refresh_options(self) -> None:
        rows = self.visible_rows()
        paths = [r.path for r in rows]
        current = self.session.layer
        self._shown = set(paths)
        self._updating = True  # setting options selects the first one: not a user's pick
        try:
            self.layer_list.options = [(self._label(r), r.path) for r in rows]
            self.layer_list.value = current if current in paths else None
        finally:
            self._updating = False
        total = len(self.session.table)
        self.count.value = (
            f"{len(rows)} of {total} layers shown" if len(rows) != total else f"{total} layers"
        )

    def _show_details(self) -> None:
        row = self.session.layer_row
        if row is None:
            self.details.value = (
                '<div class="cnnviz-muted">Select a layer to see its configuration, '
                "shapes and parameters.</div>"
            )
            return
        layer, _ = get_layer(self.session.loaded, row.path)
        parent = row.path.rpartition("/")[0]
        index_text = f"{row.index}" + (
            f"  (model.layers[{row.index}])" if row.depth == 0 else f"  (in {esc(parent)})"
        )
        inbound = []
        for name in row.inbound:
            path = f"{parent}/{name}" if parent else name
            try:
                shape = format_shape(self.session.table.row(path).output_shape)
            except KeyError:
                shape = ""
            inbound.append(f"{esc(name)} {esc(shape)}".strip())
        weights = [
            f"{esc(w.path.rsplit('/', 1)[-1])} {esc(format_shape(tuple(w.shape)))}"
            for w in layer.weights
        ]
        items = [
            ("path", esc(row.path)),
            ("index", index_text),
            ("output shape", esc(format_shape(row.output_shape))),
            ("inbound", "<br>".join(inbound) or "—"),
            (
                "parameters",
                f"{row.params:,}  (trainable {row.trainable_params:,}, "
                f"non-trainable {row.non_trainable_params:,})",
            ),
            ("weights", "<br>".join(weights[:12]) + ("<br>…" if len(weights) > 12 else "") or "—"),
            ("trainable", str(row.trainable)),
        ]
        config = [(str(k), esc(format_value(v))) for k, v in row.config.items()]
        self.details.value = (
            f'<div class="cnnviz-title">{esc(row.name)} '
            f'<span class="cnnviz-sub">{esc(row.class_name)}</span></div>'
            + _kv_table(items)
            + '<div class="cnnviz-section">Config: <code>get_config()</code></div>'
            + _kv_table(config)
        )

    # --- callbacks --------------------------------------------------------------------

    def _on_filter(self, change: dict) -> None:
        self._refresh_options()

    def _on_pick(self, change: dict) -> None:
        if self._updating:
            return
        if change["new"] is not None and change["new"] != self.session.layer:
            self.session.layer = change["new"]

    def _on_session_layer(self, change: dict) -> None:
        layer = change["new"]
        if layer is not None and layer not in self._shown:
            # selected elsewhere but hidden by the filters: show everything again
            self.name_filter.value = ""
            self.type_filter.value = ALL_TYPES
            self._refresh_options()
        elif self.layer_list.value != layer:
            self._updating = True
            try:
                self.layer_list.value = layer
            finally:
                self._updating = False
        self._show_details()
