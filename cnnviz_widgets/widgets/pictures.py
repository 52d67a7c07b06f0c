"""Picture helpers the panels share: RGBA conversion, PNG bytes, whole-pixel zoom, a batch
composed side by side with captions, thumbnails, and the font for drawn text."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .canvas import zoom_nearest

__all__ = [
    "BACKGROUND",
    "compose",
    "fit_zoom",
    "font",
    "opaque_rgba",
    "png_bytes",
    "thumbnail",
]

BACKGROUND = (40, 40, 40, 255)  # the dark grey behind composed pictures


def opaque_rgba(image: np.ndarray) -> np.ndarray:
    """An image as opaque ``(H, W, 4)`` uint8 RGBA: uint8 with 1, 3 or 4 channels as is, or
    a float display image in ``[0, 1]`` (rounded to the nearest of 256 levels)."""
    image = np.asarray(image)
    if np.issubdtype(image.dtype, np.floating):
        image = np.clip(np.rint(image * 255.0), 0, 255)
    image = image.astype(np.uint8, copy=False)
    h, w, c = image.shape
    out = np.empty((h, w, 4), np.uint8)
    out[..., :3] = image[..., :1] if c == 1 else image[..., :3]
    out[..., 3] = 255
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 4)`` uint8 RGBA picture as PNG bytes (lossless)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), "RGBA").save(buffer, "PNG")
    return buffer.getvalue()


def fit_zoom(shape: tuple[int, ...], target: int, *, nearest: bool = False) -> int:
    """The whole-pixel zoom (1..8) that brings an image's longer side near ``target``:
    at most ``target`` (``nearest=False``) or as near as possible (``nearest=True``)."""
    longest = max(shape[0], shape[1], 1)
    zoom = round(target / longest) if nearest else target // longest
    return int(min(8, max(1, zoom)))


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` pixels (a fixed size without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def compose(
    images: np.ndarray,
    labels: list[str] | None = None,
    zoom: int | None = None,
    columns: int | None = None,
    target: int = 176,
) -> np.ndarray:
    """The images of a batch side by side (rows of ``columns``), whole-pixel zoomed (to
    about ``target`` pixels by default), with their captions: one ``(H, W, 4)`` RGBA
    picture on a dark background."""
    images = np.asarray(images)
    b, h, w = images.shape[:3]
    zoom = fit_zoom((h, w), target, nearest=True) if zoom is None else int(zoom)
    columns = columns or (b if b <= 4 else math.ceil(math.sqrt(b)))
    rows = math.ceil(b / columns)
    tw, th = w * zoom, h * zoom
    pad, gap = 10, 10
    label_h = 22 if labels else 0
    width = 2 * pad + columns * tw + (columns - 1) * gap
    height = 2 * pad + rows * (th + label_h) + (rows - 1) * gap
    canvas = Image.new("RGBA", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    face = font(13)
    for k in range(b):
        r, c = divmod(k, columns)
        x, y = pad + c * (tw + gap), pad + r * (th + label_h + gap)
        canvas.paste(Image.fromarray(zoom_nearest(opaque_rgba(images[k]), zoom), "RGBA"), (x, y))
        if labels:
            text = labels[k]
            while len(text) > 3 and draw.textlength(text, font=face) > tw:
                text = text[:-2] + "…"
            draw.text(
                (x + tw / 2, y + th + 5), text, fill=(232, 232, 232, 255), font=face, anchor="ma"
            )
    return np.asarray(canvas, dtype=np.uint8)


def thumbnail(images: np.ndarray, size: int = 84) -> np.ndarray:
    """A ``size``-pixel square RGBA thumbnail: the image, or a grid of the first nine."""
    images = np.asarray(images)[:9]
    n = len(images)
    cols = 1 if n == 1 else (2 if n <= 4 else 3)
    cell = (size - (cols - 1) * 2) // cols
    out = Image.new("RGBA", (size, size), BACKGROUND)
    for k, image in enumerate(images):
        tile = Image.fromarray(opaque_rgba(image), "RGBA")
        scale = cell / max(tile.size)
        method = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
        tile = tile.resize(
            (max(1, round(tile.width * scale)), max(1, round(tile.height * scale))), method
        )
        r, c = divmod(k, cols)
        out.paste(tile, (c * (cell + 2), r * (cell + 2)))
    return np.asarray(out, dtype=np.uint8)
