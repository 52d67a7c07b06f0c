"""What the class optimizer synthesizes an image for: classes picked by name, or channels
of a convolution layer; kept in step with the session both ways."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from .. import objectives as obj
from ..errors import CnnvizError
from ..session import Session
from .class_picker import ClassPicker, output_dropdown
from .common import MessageArea, QuietUpdates, esc, labeled

MAX_BATCH = 16  # images (targets) per run

__all__ = ["MAX_BATCH", "TargetChooser"]


class TargetChooser(QuietUpdates):
    """The Target column: Class / Channel mode, a :class:`ClassPicker` (several classes:
    one image each, in one batch), a layer with a channel range, and a summary line.

    The session drives it (``class_index`` picks a class, ``channel`` a channel of its
    layer) and it writes its own picks back.  :meth:`targets` turns the pick into an
    objective.

    Attributes:
        mode: ``ToggleButtons`` ``"class"`` / ``"channel"``.
        picker: the class picker (``picker.search``, ``picker.select``).
        layer_select, channel_index, channel_count: the channel target.
        summary: what a run will make; ``box`` the whole column.
    """

    def __init__(
        self,
        session: Session,
        guarded: Callable[[Callable[..., Any]], Callable[..., Any]],
        messages: MessageArea,
    ) -> None:
        self.session = session
        self.n_classes = session.n_classes
        self._updating = False
        conv = session.conv_layers
        self.mode = widgets.ToggleButtons(
            options=[("Class", "class"), ("Channel", "channel")],
            tooltips=["an output class of the model", "a filter (channel) of a conv layer"],
            value="class" if self.n_classes else "channel",
            style={"button_width": "92px"},
        )
        self.mode.add_class("cnnviz-opt-mode")
        self.picker = ClassPicker(
            session, multiple=True, on_pick=self._on_class_pick, guarded=guarded, messages=messages
        )
        self.picker.search.placeholder = "search classes…"
        self.picker.search.add_class("cnnviz-class-search")
        self.picker.select.add_class("cnnviz-class-list")
        hint = widgets.HTML(
            '<span class="cnnviz-muted">Ctrl/⌘- or Shift-click to pick several classes: one '
            "image each, in one batch.</span>"
        )
        self.layer_select = labeled(
            widgets.Dropdown, "Layer", "400px", "60px",
            options=[(f"{p} · {session.n_channels(p)} channels", p) for p in conv], value=None,
        )  # fmt: skip
        self.layer_select.add_class("cnnviz-opt-layer")
        self.channel_index = labeled(widgets.BoundedIntText, "Channel", "150px", "60px", max=0)
        self.channel_index.add_class("cnnviz-opt-channel")
        self.channel_count = labeled(
            widgets.BoundedIntText, "images", "130px", "50px", value=1, min=1, max=MAX_BATCH,
            tooltip="channels k, k+1, …: one image each, in one batch",
        )  # fmt: skip
        self.summary = widgets.HTML()
        self.summary.add_class("cnnviz-muted")
        self.output_select = output_dropdown(session, "400px")  # several outputs only
        self.class_box = widgets.VBox(
            [self.output_select, self.picker.search, self.picker.select, hint]
        )
        self.channel_box = widgets.VBox(
            [
                self.layer_select,
                widgets.HBox([self.channel_index, self.channel_count]),
                widgets.HTML(
                    '<span class="cnnviz-muted">Click a filter in the filter gallery to '
                    "pick it here.</span>"
                ),
            ]
        )
        self.box = widgets.VBox(
            [
                widgets.HTML('<div class="cnnviz-section">Target</div>'),
                self.mode,
                self.class_box,
                self.channel_box,
                self.summary,
            ],
            layout=widgets.Layout(flex="0 0 412px", width="412px"),
        )
        self.box.add_class("cnnviz-opt-column")

        self.mode.observe(guarded(self._on_mode), names="value")
        self.layer_select.observe(guarded(self._on_layer_pick), names="value")
        self.channel_index.observe(guarded(self._on_channel_pick), names="value")
        self.channel_count.observe(guarded(self.update_summary), names="value")
        self.output_select.observe(guarded(self._on_output_pick), names="value")

        # the first target: the session's class or channel, else class 0 or the first conv
        if session.class_index is not None:
            self.picker.set([session.class_index])
        elif self.n_classes:
            self.picker.set([0])
        layer = self._conv_of_session()
        self._set_layer(layer if layer is not None else (conv[0] if conv else None))
        if layer is not None and session.channel is not None:
            self._set_channel(session.channel)
            self.mode.value = "channel"
        self._on_mode(None)

    # --- reading the pick -----------------------------------------------------------------

    @property
    def classes(self) -> list[int]:
        """The classes picked in Class mode (indices)."""
        return list(self.picker.picked)

    def pick_classes(self, classes: Any) -> None:
        """Pick classes from code (indices or names); the first goes to the session."""
        if isinstance(classes, (int, np.integer, str)):
            classes = [classes]
        indices = [self.session.class_index_of(c) for c in classes]
        self.picker.set(indices, reveal=False)
        if indices:
            self._write_session_class(indices[0])
        self.mode.value = "class"
        self.update_summary()

    def targets(
        self, class_objective: Callable[[Any], obj.Objective]
    ) -> tuple[obj.Objective, list[str], str]:
        """The objective of the pick (``class_objective`` makes the class one), one caption
        per image and a short title.  Raises ``CnnvizError`` with the fix when the pick is
        unusable."""
        if self.mode.value == "class":
            classes = self.classes
            if not classes:
                raise CnnvizError("pick at least one class in the list (or type to search)")
            self._check_batch(len(classes), "classes")
            n = self.n_classes
            for c in classes:
                if c < 0 or (n is not None and c >= n):
                    raise CnnvizError(
                        f"class {c} is out of range: the model has {n} classes; use 0..{n - 1}"
                    )
            labels = [self.picker.name(c) for c in classes]
            objective = class_objective(classes if len(classes) > 1 else classes[0])
            title = labels[0] if len(labels) == 1 else f"{len(labels)} classes"
            if len(labels) in (2, 3):
                title = ", ".join(labels)
            return objective, labels, title
        layer = self.layer_select.value
        if layer is None:
            raise CnnvizError("pick a convolution layer for the channel target")
        first, count = self._channel_range()
        self._check_batch(count, "channels")
        channels = list(range(first, first + count))
        objective = obj.channel(layer, channels if count > 1 else first)
        labels = [f"{layer} · {c}" for c in channels]
        title = f"{layer} · {first}" if count == 1 else f"{layer} · {first}–{first + count - 1}"
        return objective, labels, title

    def update_summary(self, change: Any = None) -> None:
        """Say in one line what a run will make."""
        if self.mode.value == "class":
            labels = [self.picker.name(c) for c in self.classes]
            if not labels:
                text = "No class picked yet."
            elif len(labels) == 1:
                text = f"→ one image of <b>{esc(labels[0])}</b>"
            else:
                shown = ", ".join(labels[:8]) + (
                    f", … ({len(labels)} in all)" if len(labels) > 8 else ""
                )
                text = f"→ {len(labels)} images in one batch: {esc(shown)}"
        elif self.layer_select.value is None:
            text = "No convolution layer in this model."
        else:
            layer = self.layer_select.value
            first, count = self._channel_range()
            if count == 1:
                n = self.session.n_channels(layer)
                text = f"→ one image of channel <b>{first}</b> of {esc(layer)} ({n} channels)"
            else:
                text = (
                    f"→ {count} images in one batch: channels <b>{first}–{first + count - 1}"
                    f"</b> of {esc(layer)}"
                )
        self.summary.value = text

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _check_batch(n: int, what: str) -> None:
        if n > MAX_BATCH:
            raise CnnvizError(
                f"{n} {what} picked: a run makes at most {MAX_BATCH} images (one per target); "
                "pick fewer"
            )

    def _channel_range(self) -> tuple[int, int]:
        layer = self.layer_select.value
        n = self.session.n_channels(layer) if layer is not None else 0
        first = int(self.channel_index.value)
        count = max(1, min(int(self.channel_count.value), (n or first + 1) - first))
        return first, count

    def _conv_of_session(self) -> str | None:
        row = self.session.layer_row
        return row.path if row is not None and row.has_kernel else None

    def _set_layer(self, layer: str | None) -> None:
        def apply():
            self.layer_select.value = layer
            n = self.session.n_channels(layer) if layer is not None else 1
            self.channel_index.max = max(0, (n or 1) - 1)

        self._quietly(apply)
        self.update_summary()

    def _set_channel(self, channel: int) -> None:
        self._quietly(lambda: setattr(self.channel_index, "value", channel))
        self.update_summary()

    def _write_session_class(self, index: int) -> None:
        if self.session.class_index != index:
            self._quietly(lambda: setattr(self.session, "class_index", index))

    # --- the user's picks -----------------------------------------------------------------

    def _on_mode(self, change: Any) -> None:
        is_class = self.mode.value == "class"
        self.class_box.layout.display = None if is_class else "none"
        self.channel_box.layout.display = None if not is_class else "none"
        if change is not None and change["new"] == "class" and not self.n_classes:
            self._quietly(lambda: setattr(self.mode, "value", "channel"))
            raise CnnvizError(
                "the number of output classes of this model is unknown (several outputs?): "
                "use a channel target"
            )
        self.update_summary()

    def _on_class_pick(self, picked: list[int], added: list[int]) -> None:
        if self.mode.value != "class":
            self.mode.value = "class"
        pick = added[0] if len(added) == 1 else (picked[0] if picked else None)
        if pick is not None:
            self._write_session_class(pick)
        self.update_summary()

    def _on_layer_pick(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self._set_layer(change["new"])
        if self.channel_index.value > self.channel_index.max:
            self._set_channel(self.channel_index.max)
        if self.session.layer != change["new"]:
            channel = int(self.channel_index.value)
            self._quietly(lambda: self.session.select(change["new"], channel=channel))

    def _on_channel_pick(self, change: dict) -> None:
        if self._updating:
            return
        self.update_summary()
        layer = self.layer_select.value
        if layer is None:
            return
        channel = int(change["new"])

        def write():
            if self.session.layer != layer:
                self.session.select(layer, channel=channel)
            elif self.session.channel != channel:
                self.session.channel = channel

        self._quietly(write)

    # --- the session's picks --------------------------------------------------------------

    def _on_output_pick(self, change: dict) -> None:
        if change["new"] is not None and change["new"] != self.session.output:
            self.session.output = change["new"]

    def on_session_output(self, change: dict) -> None:
        """Another output: its classes in the list, its first class picked."""
        if self.output_select.value != change["new"]:
            self.output_select.value = change["new"]
        self.n_classes = self.session.n_classes
        self.picker.reload(self.session)
        if self.n_classes:
            self.picker.set([0])
        self.update_summary()

    def on_session_class(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self.picker.set([int(change["new"])])
        self.mode.value = "class"
        self.update_summary()

    def on_session_layer(self, change: dict) -> None:
        if self._updating:
            return
        layer = self._conv_of_session()
        if layer is not None and layer != self.layer_select.value:
            self._set_layer(layer)
            if self.channel_index.value > self.channel_index.max:
                self._set_channel(0)

    def on_session_channel(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        layer = self._conv_of_session()
        if layer is None:
            return
        if layer != self.layer_select.value:
            self._set_layer(layer)
        self._set_channel(int(change["new"]))
        self.mode.value = "channel"
