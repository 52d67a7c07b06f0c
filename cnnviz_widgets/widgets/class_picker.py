"""A class picked by name or index: a search box over the model's classes and a list (one
class, or several for a batch).  Shared by the class optimizer and the image explainer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets

from ..session import Session
from .common import MessageArea, QuietUpdates, esc

__all__ = ["ClassPicker", "class_labels", "output_dropdown"]


def class_labels(session: Session) -> list[str]:
    """One label per class of the session's scored output: ``"3 · ring"`` with class
    names, ``"class 3"`` without."""
    names = session.scored.class_names
    if names:
        return [f"{i} · {name}" for i, name in enumerate(names)]
    return [f"class {i}" for i in range(session.n_classes or 0)]


def output_dropdown(session: Session, width: str = "340px") -> widgets.Dropdown:
    """The output whose classes a panel explains, for a model with several (hidden for
    a model with one): ``"cls · (None, 3)"`` options, valued by the output's name; the
    panel writes the pick to ``session.output``."""
    outputs = session.outputs
    drop = widgets.Dropdown(
        options=[(f"{o.name} · {o.shape}", o.name) for o in outputs],
        value=session.output if len(outputs) > 1 else outputs[0].name,
        description="Output",
        tooltip="the model has several outputs: the one whose classes are explained",
        layout=widgets.Layout(width=width),
        style={"description_width": "64px"},
    )
    drop.add_class("cnnviz-output")
    if len(outputs) < 2:
        drop.layout.display = "none"
    return drop


class ClassPicker(QuietUpdates):
    """A search box and a class list over one session's model.

    Args:
        session: the panels' session (its model's class names or count).
        multiple: a ``SelectMultiple`` (several classes, one image each) instead of a
            ``Dropdown``.
        on_pick: called as ``on_pick(picked, added)`` when the user picks in the list (not
            when :meth:`set` is called).
        guarded: the panel's wrapper that shows a callback's errors in the panel.
        messages: the panel's message area (a search that matches nothing says so there).
        search_from: the search box shows when the model has more classes than this.
        width, rows: the list's size.

    Attributes:
        search: the ``Text`` filter: words matched in the labels, or a class index.
        select: the list; its options are the classes the search lets through.
        picked: the picked classes, including any that the search hides.
        labels: one label per class.
    """

    def __init__(
        self,
        session: Session,
        *,
        multiple: bool,
        on_pick: Callable[[list[int], list[int]], None],
        guarded: Callable[[Callable[..., Any]], Callable[..., Any]],
        messages: MessageArea,
        search_from: int = 0,
        width: str = "400px",
        rows: int = 8,
    ) -> None:
        self.multiple = multiple
        self.on_pick = on_pick
        self.messages = messages
        self.labels = class_labels(session)
        self.picked: list[int] = []
        self._updating = False
        self.search = widgets.Text(
            placeholder=f"search {len(self.labels) or ''} classes…".replace("  ", " "),
            continuous_update=True,
            layout=widgets.Layout(width=width),
        )
        if len(self.labels) <= search_from:
            self.search.layout.display = "none"
        if multiple:
            self.select = widgets.SelectMultiple(
                options=self.options(""), rows=rows, layout=widgets.Layout(width=width)
            )
        else:
            self.select = widgets.Dropdown(
                options=self.options(""),
                value=None,
                description="Class",
                layout=widgets.Layout(width=width),
                style={"description_width": "64px"},
            )
        self.search.observe(guarded(self._on_search), names="value")
        self.select.observe(guarded(self._on_select), names="value")

    def name(self, index: int) -> str:
        """The class's name (``"class 7"`` without names)."""
        label = self.labels[index] if 0 <= index < len(self.labels) else f"class {index}"
        return label.split(" · ", 1)[1] if " · " in label else label

    def matches(self, text: str) -> list[int]:
        """The classes whose label contains a word of ``text`` (or whose index it is)."""
        words = [w for w in re.split(r"[\s,]+", text.strip().lower()) if w]
        if not words:
            return list(range(len(self.labels)))
        return [
            i
            for i, label in enumerate(self.labels)
            if any(w in label.lower() or w == str(i) for w in words)
        ]

    def options(self, text: str) -> list[tuple[str, int]]:
        """The list's options for a search: the matches (a one-class list keeps its
        current class, so that a search never changes the pick)."""
        shown = set(self.matches(text))
        if not self.multiple:
            shown.update(self.picked)
        return [(label, i) for i, label in enumerate(self.labels) if i in shown]

    def set(self, classes: Iterable[int], *, reveal: bool = True) -> None:
        """Pick ``classes`` from code or the session (``on_pick`` is not called).  With
        ``reveal``, a search that hides one of them is cleared."""
        self.picked = [int(c) for c in classes]
        visible = {v for _, v in self.select.options}
        if reveal and any(c not in visible for c in self.picked) and self.search.value:
            self._quietly(setattr, self.search, "value", "")
            self._quietly(setattr, self.select, "options", self.options(""))
        elif not self.multiple:
            self._quietly(setattr, self.select, "options", self.options(self.search.value))
        self._show_picked()

    def reload(self, session: Session) -> None:
        """Take the classes of the session's scored output again (another output was
        chosen): the search is cleared and nothing is picked."""
        self.labels = class_labels(session)
        self.picked = []
        self._quietly(setattr, self.search, "value", "")
        self._quietly(setattr, self.select, "options", self.options(""))
        if not self.multiple:
            self._quietly(setattr, self.select, "value", None)

    def _show_picked(self) -> None:
        visible = {v for _, v in self.select.options}
        shown = [c for c in self.picked if c in visible]
        if self.multiple:
            self._quietly(setattr, self.select, "value", tuple(shown))
        elif shown:
            self._quietly(setattr, self.select, "value", shown[0])

    def _on_search(self, change: dict) -> None:
        if self._updating:
            return
        text = change["new"]
        self._quietly(setattr, self.select, "options", self.options(text))
        self._show_picked()
        if not self.matches(text):
            stays = "" if self.multiple else "; the picked class stays"
            self.messages.show_note(f"No class matches <b>{esc(text)}</b>{stays}.")
        elif self.messages.kind == "note" and "No class matches" in self.messages.value:
            self.messages.clear()

    def _on_select(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        if self.multiple:
            new = [int(v) for v in change["new"]]
            added = [v for v in new if v not in change["old"]]
        else:
            new = added = [int(change["new"])]
        self.picked = new
        self.on_pick(new, added)
