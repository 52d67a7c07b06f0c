"""Pixel images on an ipycanvas Canvas: exact RGBA, crisp zoom, redrawn when a view connects.

ipycanvas sends an ``(H, W, 3)`` array as JPEG (lossy); an ``(H, W, 4)`` uint8 array goes
as PNG, exact.  Zooming is done here with ``np.repeat`` (nearest neighbour), so pixels stay
sharp whatever the browser's smoothing.  Draw commands sent while a notebook executes can
be lost (Voila), so the last image is replayed on ``on_client_ready``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import ipycanvas
import ipycanvas.canvas
import numpy as np
from PIL import Image

from ..errors import CnnvizError

HIGHLIGHT = "#ffb000"

# ipycanvas has one canvas manager for every canvas: a batch held in one thread must not
# take in (or lose) draw commands of another thread, such as a background optimization's
# live preview.  Every drawing block in this package goes through ``safe_hold``.
_DRAW_LOCK = threading.RLock()

# ---------------------------------------------------------------- ipycanvas' private state
# The only code that reads ipycanvas' private objects (its canvas manager, its command
# table).  Each use is guarded: on an ipycanvas without them, drawing goes through the
# public API instead (hold_canvas, put_image_data), unbatched at worst, never broken.
_MANAGER_STATE = ("_caching", "_commands_cache", "_buffers_cache", "_current_canvas", "flush")


def _manager():
    """ipycanvas' canvas manager when it has the state :func:`held_batch` drives, else
    ``None``."""
    manager = getattr(ipycanvas.canvas, "_CANVAS_MANAGER", None)
    if manager is None or not all(hasattr(manager, a) for a in _MANAGER_STATE):
        return None
    return manager


@contextmanager
def held_batch() -> Iterator[None]:
    """Batch the draw commands of the block into one message; an exception inside drops
    the partial batch and leaves ipycanvas' canvas manager as it was (which
    ``ipycanvas.hold_canvas`` does not: it leaves caching on, so every later draw of
    every canvas would be held forever).  Without the manager's private state (another
    ipycanvas): ``ipycanvas.hold_canvas()``, or no batching when that is missing too."""
    manager = _manager()
    if manager is None:
        hold = getattr(ipycanvas, "hold_canvas", None)
        with hold() if hold is not None else nullcontext():
            yield
        return
    was_caching = manager._caching
    manager._caching = True
    try:
        yield
    except BaseException:
        if not was_caching:
            manager._commands_cache = []
            manager._buffers_cache = []
            manager._current_canvas = None  # a dropped switchCanvas must be re-sent
            manager._caching = False
        raise
    if not was_caching:
        manager.flush()
        manager._caching = False


def send_png(canvas: ipycanvas.Canvas, png: bytes) -> bool:
    """Send ready-made PNG bytes as the canvas' ``putImageData`` at (0, 0), as
    ``put_image_data`` would send them (it encodes more slowly); ``False`` when this
    ipycanvas has no such command (the caller then uses ``put_image_data``)."""
    manager = getattr(ipycanvas.canvas, "_CANVAS_MANAGER", None)
    commands = getattr(ipycanvas.canvas, "COMMANDS", None)
    if manager is None or not hasattr(manager, "send_draw_command") or not commands:
        return False
    if "putImageData" not in commands:
        return False
    manager.send_draw_command(canvas, commands["putImageData"], [0, 0], [png])
    return True


@contextmanager
def safe_hold() -> Iterator[None]:
    """Like ``ipycanvas.hold_canvas()`` (batch draw commands into one message), but an
    exception inside drops the partial batch (see :func:`held_batch`).

    Thread-safe: a (re-entrant) lock makes the block atomic with respect to drawing from
    other threads.
    """
    with _DRAW_LOCK, held_batch():
        yield


def zoom_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge ``(H, W, C)`` by an integer factor, each pixel becoming a square block."""
    factor = int(factor)
    if factor < 1:
        raise CnnvizError(f"zoom must be a positive integer, got {factor}")
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def check_rgba(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous ``(H, W, 4)`` uint8 array, or a clear error."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 4 or image.dtype != np.uint8:
        raise CnnvizError(
            f"a canvas image must be (height, width, 4) uint8 RGBA, got {image.shape} "
            f"{image.dtype}: RGB would be sent as lossy JPEG"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise CnnvizError(f"cannot show an empty image of shape {image.shape}")
    return np.ascontiguousarray(image)


class PixelCanvas:
    """An ipycanvas ``Canvas`` that shows one RGBA image, zoomed by whole pixels.

    Args:
        css_class: a CSS class added to the canvas (for styling and browser tests).
        width, height: the initial size in pixels.
        compress_level: zlib level of the PNG sent (0-9).  ``None``: ipycanvas' own
            encoding (level 6).  Level 1 encodes several times faster for a few more bytes
            (``docs/benchmarks.md``, "Widgets"): for images redrawn many times a second.

    Attributes:
        canvas: the ``ipycanvas.Canvas`` widget to put in a layout.
        image: the last image shown, before zoom (``None`` before the first).
        zoom: its zoom factor.
        sent: the exact ``(H, W, 4)`` array last passed to ``put_image_data``.
        highlight: ``(x, y, w, h)`` in image pixels outlined over the image, or ``None``.
        css_zoom: how much larger the browser shows the canvas (CSS size, pixelated).
    """

    def __init__(
        self,
        css_class: str | None = None,
        width: int = 1,
        height: int = 1,
        compress_level: int | None = None,
    ) -> None:
        self.canvas = ipycanvas.Canvas(width=width, height=height)
        self.compress_level = compress_level
        if css_class:
            self.canvas.add_class(css_class)
        self.canvas.add_class("cnnviz-pixels")
        self.image: np.ndarray | None = None
        self.zoom = 1
        self.sent: np.ndarray | None = None
        self.highlight: tuple[int, int, int, int] | None = None
        self.css_zoom = 1
        self.draw_count = 0
        self.canvas.on_client_ready(self.redraw)

    def show(
        self,
        image: np.ndarray,
        zoom: int = 1,
        highlight: tuple[int, int, int, int] | None = None,
        *,
        css_zoom: int = 1,
    ) -> np.ndarray:
        """Resize the canvas to the zoomed image and draw it; returns the array sent.

        ``zoom`` enlarges the image here (exact in any front end); ``css_zoom`` has the
        browser show the canvas that many times larger (``image-rendering: pixelated``,
        nearest neighbour in current browsers), which keeps the message small: use it for
        images redrawn many times a second, such as a live preview.
        """
        image = check_rgba(image)
        self.image, self.zoom, self.highlight = image, int(zoom), highlight
        self.sent = np.ascontiguousarray(zoom_nearest(image, self.zoom))
        self._set_css_size(int(css_zoom))
        self.redraw()
        return self.sent

    def _set_css_size(self, css_zoom: int) -> None:
        if css_zoom < 1:
            raise CnnvizError(f"css_zoom must be a positive integer, got {css_zoom}")
        height, width = self.sent.shape[:2]
        size = (f"{width * css_zoom}px", f"{height * css_zoom}px") if css_zoom > 1 else (None, None)
        layout = self.canvas.layout
        if (layout.width, layout.height) != size:
            layout.width, layout.height = size
        self.css_zoom = css_zoom

    def set_highlight(self, box: tuple[int, int, int, int] | None) -> None:
        """Outline ``(x, y, w, h)`` (image pixels, before zoom) over the image; ``None``
        removes the outline.  The image is re-sent so that nothing else is needed."""
        if box != self.highlight:
            self.highlight = box
            self.redraw()

    def clear(self, width: int = 1, height: int = 1) -> None:
        """Forget the image and shrink the canvas."""
        self.image = self.sent = self.highlight = None
        if self.css_zoom != 1:
            self.canvas.layout.width = self.canvas.layout.height = None
            self.css_zoom = 1
        with safe_hold():
            self.canvas.width, self.canvas.height = width, height
            self.canvas.clear()

    def redraw(self) -> None:
        """Send the current image again (also called when a view connects)."""
        if self.sent is None:
            return
        height, width = self.sent.shape[:2]
        canvas = self.canvas
        with safe_hold():
            # a size change clears the canvas in the browser; it is applied before the
            # batched draw, which arrives on the canvas manager's channel afterwards
            if (canvas.width, canvas.height) != (width, height):
                canvas.width, canvas.height = width, height
            # the page decodes the PNG asynchronously and then draws it over what is there:
            # an opaque image covers the whole canvas (and an old outline), so it is drawn
            # without a clear, which would leave the canvas blank until the decode is done
            # (a flicker in the live preview; a browser test read a blank canvas there)
            if self.sent[..., 3].min() < 255:
                canvas.clear()
            if self.compress_level is None:
                canvas.put_image_data(self.sent, 0, 0)
            else:  # what put_image_data sends, with a faster PNG encoding
                buffer = io.BytesIO()
                Image.fromarray(self.sent).save(buffer, "PNG", compress_level=self.compress_level)
                if not send_png(canvas, buffer.getvalue()):
                    canvas.put_image_data(self.sent, 0, 0)
            if self.highlight is not None:
                x, y, w, h = (v * self.zoom for v in self.highlight)
                canvas.stroke_style = HIGHLIGHT
                canvas.line_width = 3
                canvas.stroke_rect(x - 1.5, y - 1.5, w + 3, h + 3)
        self.draw_count += 1

    def to_image_coordinates(self, x: float, y: float) -> tuple[float, float]:
        """Canvas pixel ``(x, y)`` (as mouse events give it) to image pixel coordinates."""
        return x / self.zoom, y / self.zoom
