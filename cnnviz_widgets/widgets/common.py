"""What every panel shares: the session, a message area, guarded callbacks, the style sheet."""

from __future__ import annotations

import base64
import functools
import html
import math
import os
import traceback
from collections.abc import Callable
from importlib import resources
from typing import Any

import ipywidgets as widgets

from ..errors import CnnvizError
from ..session import Session


@functools.cache
def _css(name: str) -> str:
    return resources.files("cnnviz_widgets.widgets").joinpath("css", f"{name}.css").read_text()


def style_sheet(name: str = "common") -> widgets.HTML:
    """An (invisible) HTML widget carrying a style sheet of ``cnnviz_widgets/widgets/css``:
    ``"common"`` (every panel's) or a panel's own (``"class_optimizer"``, ...)."""
    return widgets.HTML(f"<style>\n{_css(name)}</style>", layout=widgets.Layout(display="none"))


def esc(value: Any) -> str:
    """HTML-escaped ``str(value)``."""
    return html.escape(str(value), quote=True)


def error_message(err: BaseException) -> str:
    """A readable HTML message for an exception."""
    if isinstance(err, CnnvizError):
        return f"<b>{esc(type(err).__name__)}</b>: {esc(err)}"
    trace = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return (
        f"<b>Unexpected {esc(type(err).__name__)}</b>: {esc(err)}<br>"
        "This looks like a bug in cnnviz_widgets; the panel keeps working.  Details:"
        f"<details><summary>traceback</summary><pre>{esc(trace)}</pre></details>"
    )


def fmt_value(v: float) -> str:
    """A value in 3 or 4 significant digits (``"nan"`` when not finite)."""
    if not math.isfinite(v):
        return "nan"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.4g}"


def labeled(kind: type, description: str, width: str, label_width: str, **kw: Any) -> Any:
    """A control of type ``kind`` with its description, width and label width."""
    style = {"description_width": label_width, **kw.pop("style", {})}
    return kind(description=description, layout=widgets.Layout(width=width), style=style, **kw)


def row(*children: widgets.Widget) -> widgets.HBox:
    """A row of controls (CSS class ``cnnviz-controls``: wraps, with even gaps)."""
    box = widgets.HBox(list(children))
    box.add_class("cnnviz-controls")
    return box


def wrapping_row(children: list[widgets.Widget], **layout: str) -> widgets.HBox:
    """Parts side by side, wrapping under each other when the page is narrow (top-aligned;
    ``layout``: more ``widgets.Layout`` settings, e.g. ``grid_gap``)."""
    return widgets.HBox(
        children,
        layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start", **layout),
    )


def write_file(data: bytes, path: str | os.PathLike | None) -> bytes:
    """Write ``data`` to ``path`` (when given); returns ``data`` (the exports' tail)."""
    if path is not None:
        with open(path, "wb") as file:
            file.write(data)
    return data


def download_link(name: str, data: bytes, mime: str) -> str:
    """HTML saying where ``data`` was saved, with a link that downloads it again."""
    link = base64.b64encode(data).decode("ascii")
    return (
        f"saved <code>{esc(os.path.abspath(name))}</code> ({len(data) / 1024:.0f} KB) · "
        f'<a download="{esc(name)}" href="data:{mime};base64,{link}">download</a>'
    )


class QuietUpdates:
    """For a part whose observers must skip the changes it makes itself (setting a
    dropdown's options selects its first one, which is not the user's pick): while
    :meth:`_quietly` runs, ``self._updating`` is true and the observers return early."""

    _updating = False

    def _quietly(self, fn: Callable[..., Any], *args: Any) -> None:
        self._updating = True
        try:
            fn(*args)
        finally:
            self._updating = False


class MessageArea(widgets.HTML):
    """Where a panel shows its errors and notes (hidden when empty).

    Attributes:
        last_error: the last exception shown, or ``None`` (for tests and debugging).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("cnnviz-messages")
        self.last_error: BaseException | None = None
        self.layout.display = "none"

    @property
    def kind(self) -> str | None:
        """``"error"``, ``"note"`` or ``None`` when empty."""
        if not self.value:
            return None
        return "error" if "cnnviz-message-error" in self.value else "note"

    def show_error(self, err: BaseException) -> None:
        """Show an exception as a red message."""
        self.last_error = err
        self._set(f'<div class="cnnviz-message-error">{error_message(err)}</div>')

    def show_note(self, text_html: str) -> None:
        """Show a neutral (blue) note; ``text_html`` is HTML."""
        self.last_error = None
        self._set(f'<div class="cnnviz-message-note">{text_html}</div>')

    def clear(self) -> None:
        """Hide the area."""
        self.last_error = None
        self._set("")

    @property
    def text(self) -> str:
        """The message without HTML tags (for tests)."""
        import re

        return html.unescape(re.sub(r"<[^>]+>", "", self.value))

    def _set(self, value: str) -> None:
        self.value = value
        self.layout.display = None if value else "none"


class Panel(widgets.VBox):
    """Base of the panels: a session, a message area and guarded callbacks.

    Args:
        model_or_session: a :class:`~cnnviz_widgets.session.Session`, or anything
            ``load_model`` accepts (a new session is made).
        css_class: the panel's CSS class.
        **load_kwargs: passed to ``load_model`` when a model is given.

    Every callback (control changes, clicks, session changes) runs through
    :meth:`guarded`: an exception becomes a message inside the panel, never a traceback in
    the kernel.  :meth:`close` stops observing the session.
    """

    def __init__(self, model_or_session: Any, *, css_class: str, **load_kwargs: Any) -> None:
        self.session: Session = Session.of(model_or_session, **load_kwargs)
        self.messages = MessageArea()
        self._observers: list[tuple[Callable, list[str]]] = []
        super().__init__()
        self.add_class("cnnviz-panel")
        self.add_class(css_class)

    def guarded(self, fn: Callable) -> Callable:
        """``fn`` wrapped so that an exception is shown in the panel instead of raised."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if self.messages.kind == "error":
                self.messages.clear()
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                self.messages.show_error(err)
                return None

        return run

    def observe_session(self, handler: Callable, names: list[str]) -> None:
        """Observe session traits with a guarded handler (removed by :meth:`close`)."""
        wrapped = self.guarded(handler)
        self.session.observe(wrapped, names=names)
        self._observers.append((wrapped, names))

    def close(self) -> None:
        """Stop observing the session and close the widget."""
        for handler, names in getattr(self, "_observers", ()):
            self.session.unobserve(handler, names=names)
        self._observers = []
        super().close()
