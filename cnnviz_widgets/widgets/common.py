"""What every panel shares: the session, a message area, guarded callbacks, the style sheet."""

from __future__ import annotations

import functools
import html
import traceback
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..errors import CnnvizError
from ..session import Session

# One style sheet for every panel, scoped by class names.  JupyterLab's theme variables
# (with fallbacks for other front ends) keep it readable in light and dark themes.
STYLE = """
<style>
.cnnviz-panel { font-family: var(--jp-ui-font-family, sans-serif);
  color: var(--jp-ui-font-color1, #222); gap: 6px; padding: 10px 12px;
  border: 1px solid var(--jp-border-color2, #ddd); border-radius: 6px;
  background: var(--jp-layout-color0, #fff); box-sizing: border-box; }
.cnnviz-panel .widget-html-content { line-height: 1.45; }
.cnnviz-panel .cnnviz-title { font-size: 15px; font-weight: 600; line-height: 1.4; }
.cnnviz-panel .cnnviz-title .cnnviz-sub { font-weight: 400;
  color: var(--jp-ui-font-color2, #555); font-size: 13px; }
.cnnviz-panel .cnnviz-muted { color: var(--jp-ui-font-color2, #555); font-size: 12.5px;
  line-height: 1.5; }
.cnnviz-panel .cnnviz-message-error { background: #fdecea; color: #5f1412;
  border-left: 4px solid #d93025; padding: 8px 12px; border-radius: 4px;
  font-size: 13px; line-height: 1.45; white-space: normal; }
.cnnviz-panel .cnnviz-message-note { background: #e8f0fe; color: #123a6b;
  border-left: 4px solid #1a73e8; padding: 8px 12px; border-radius: 4px;
  font-size: 13px; line-height: 1.45; white-space: normal; }
.cnnviz-panel .cnnviz-message-error pre { white-space: pre-wrap; font-size: 11px;
  max-height: 240px; overflow: auto; }
.cnnviz-panel table.cnnviz-kv { border-collapse: collapse; font-size: 12.5px;
  width: 100%; table-layout: auto; }
.cnnviz-panel table.cnnviz-kv th { text-align: left; font-weight: 500; vertical-align: top;
  color: var(--jp-ui-font-color2, #555); padding: 2px 12px 2px 0; white-space: nowrap; }
.cnnviz-panel table.cnnviz-kv td { font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; padding: 2px 0; word-break: break-word; }
.cnnviz-panel table.cnnviz-kv tr + tr { border-top: 1px solid var(--jp-border-color3, #eee); }
.cnnviz-panel .cnnviz-section { font-size: 13px; font-weight: 600;
  color: var(--jp-ui-font-color1, #222); margin: 10px 0 3px; }
.cnnviz-panel select { font-size: 13px; }
.cnnviz-panel .cnnviz-layer-list select { font-family: var(--jp-code-font-family, monospace);
  font-size: 12.5px; line-height: 1.5; padding: 2px 0; }
.cnnviz-panel .cnnviz-list-head { font-family: var(--jp-code-font-family, monospace);
  font-size: 12.5px; white-space: pre; color: var(--jp-ui-font-color2, #555);
  padding: 0 4px; overflow: hidden; }
.cnnviz-panel canvas.cnnviz-pixels { image-rendering: pixelated; display: block;
  max-width: none; outline: none; }
.cnnviz-panel canvas.cnnviz-gallery-canvas { cursor: pointer; }
.cnnviz-panel .cnnviz-canvas-box { overflow: auto; max-height: 720px;
  background: #282828; border-radius: 4px; padding: 6px; flex: 0 1 auto;
  align-self: flex-start; }
.cnnviz-panel .cnnviz-detail-box { padding: 0 4px; }
.cnnviz-panel table.cnnviz-kernel { border-collapse: collapse;
  font-family: var(--jp-code-font-family, monospace); font-size: 10.5px; margin: 2px 0 8px;
  line-height: 1.3; }
.cnnviz-panel table.cnnviz-kernel td { border: 1px solid rgba(128,128,128,.35);
  padding: 1px 3px; text-align: right; }
.cnnviz-panel .widget-label { color: var(--jp-ui-font-color1, #222); }
.cnnviz-panel .cnnviz-controls { gap: 4px 14px; flex-wrap: wrap; align-items: center; }
.cnnviz-panel .cnnviz-controls > .widget-inline-hbox { margin: 0; }
</style>
"""


def style_sheet() -> widgets.HTML:
    """An (invisible) HTML widget carrying the panels' style sheet."""
    sheet = widgets.HTML(STYLE, layout=widgets.Layout(display="none"))
    return sheet


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
