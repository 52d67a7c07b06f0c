"""The live preview of a batch: every image on one canvas at its own size, shown enlarged
(pixelated) by the browser, with HTML captions laid over the gaps under the images."""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np

from ..errors import CnnvizError
from .canvas import PixelCanvas
from .common import esc, fmt_value
from .objective_curve import PALETTE
from .pictures import BACKGROUND, fit_zoom, opaque_rgba

PREVIEW_TARGET = 176  # CSS pixels of a preview image (whole-pixel zoom)
PREVIEW_WIDTH = 820  # CSS pixels the preview's rows aim to fit in
CAPTION_BAND = 22  # CSS pixels under each row of images for the captions
CHECKER = ((204, 204, 204), (153, 153, 153))  # the transparency view's background squares

__all__ = ["BatchPreview", "PreviewLayout", "over_checkerboard", "preview_zoom"]


def over_checkerboard(images: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Images ``(B, H, W, C)`` uint8 blended by ``alpha`` ``(B, H, W)`` in ``[0, 1]`` over a
    gray checkerboard, as ``(B, H, W, 3)`` uint8: opaque where the model took its evidence,
    transparent where it never looked (MaCo's way of showing its images)."""
    images = np.asarray(images, np.uint8)
    alpha = np.asarray(alpha, np.float32)
    if images.ndim != 4 or alpha.shape != images.shape[:3]:
        raise CnnvizError(
            f"the transparency map {alpha.shape} does not fit the images {images.shape}"
        )
    _, h, w, c = images.shape
    rgb = np.repeat(images[..., :1], 3, axis=-1) if c == 1 else images[..., :3]
    cell = max(2, min(h, w) // 8)
    odd = ((np.arange(h)[:, None] // cell + np.arange(w)[None, :] // cell) % 2).astype(bool)
    board = np.where(odd[..., None], np.array(CHECKER[1]), np.array(CHECKER[0]))
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    out = rgb.astype(np.float32) * a + board[None].astype(np.float32) * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def preview_zoom(shape: tuple[int, ...], target: int = PREVIEW_TARGET) -> int:
    """Whole-pixel zoom that brings an image's longer side near ``target`` (1..8)."""
    return fit_zoom(shape, target, nearest=True)


@dataclass(frozen=True)
class PreviewLayout:
    """Where each image of a batch goes in the live preview's one canvas.

    The canvas holds the images at their own size, separated by gaps, and the browser
    shows it ``zoom`` times larger (pixelated): one small PNG per frame, whatever the
    batch.  The captions are HTML laid over the gaps under the images.
    """

    batch: int
    height: int
    width: int
    zoom: int
    columns: int
    gap: int  # pixels between images, before zoom
    band: int  # pixels under each row for its captions, before zoom

    @classmethod
    def for_batch(cls, batch: int, height: int, width: int) -> PreviewLayout:
        zoom = preview_zoom((height, width))
        fit = max(1, PREVIEW_WIDTH // (width * zoom + 12))  # images a row can hold
        columns = batch if batch <= fit else max(1, min(fit, math.ceil(math.sqrt(batch))))
        gap = math.ceil(12 / zoom)
        band = math.ceil(CAPTION_BAND / zoom)
        return cls(batch, height, width, zoom, columns, gap, band)

    @property
    def rows(self) -> int:
        return math.ceil(self.batch / self.columns)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the canvas before zoom."""
        w = self.columns * self.width + (self.columns - 1) * self.gap
        h = self.rows * (self.height + self.band) + (self.rows - 1) * self.gap
        return h, w

    def box(self, k: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of image ``k`` on the canvas, before zoom."""
        r, c = divmod(k, self.columns)
        x = c * (self.width + self.gap)
        y = r * (self.height + self.band + self.gap)
        return x, y, self.width, self.height

    def compose(self, images: np.ndarray) -> np.ndarray:
        """The images on one RGBA canvas (background where there is no image)."""
        h, w = self.shape
        out = np.empty((h, w, 4), np.uint8)
        out[:] = BACKGROUND
        for k in range(min(self.batch, len(images))):
            x, y, iw, ih = self.box(k)
            out[y : y + ih, x : x + iw] = opaque_rgba(images[k])
        return out


class BatchPreview:
    """One canvas (CSS class ``cnnviz-optimizer-canvas``) with a batch's images and their
    captions.

    Attributes:
        pixels: the :class:`PixelCanvas`; ``captions`` the HTML laid over it; ``box`` the
            widget to place in a panel.
        labels: one caption per image; ``layout`` the :class:`PreviewLayout` drawn last.
    """

    def __init__(self) -> None:
        self.pixels = PixelCanvas("cnnviz-optimizer-canvas", compress_level=1)
        self.captions = widgets.HTML(layout=widgets.Layout(margin="0"))
        self.captions.add_class("cnnviz-caption-layer")
        stack = widgets.Box([self.pixels.canvas, self.captions])
        stack.add_class("cnnviz-preview-stack")
        self.box = widgets.Box([stack])
        self.box.add_class("cnnviz-preview-box")
        self.labels: list[str] = []
        self.layout: PreviewLayout | None = None
        self._captions_key: tuple | None = None

    def prepare(self, labels: list[str]) -> None:
        """A new batch: its captions (the layout is set by the first frame's size)."""
        self.labels = list(labels)
        self.layout = None
        self._captions_key = None

    def draw(self, images: np.ndarray, values: np.ndarray | None = None) -> None:
        """Draw a batch: one PNG, whatever the batch size; ``values`` go in the captions."""
        images = np.asarray(images)
        layout = self.layout
        if layout is None or (layout.batch, layout.height, layout.width) != (
            len(images),
            *images.shape[1:3],
        ):
            layout = self.layout = PreviewLayout.for_batch(len(images), *images.shape[1:3])
        self.pixels.show(layout.compose(images), css_zoom=layout.zoom)
        self._draw_captions(values)

    def _draw_captions(self, values: np.ndarray | None) -> None:
        layout = self.layout
        key = (layout, tuple(self.labels), None if values is None else tuple(np.round(values, 4)))
        if key == self._captions_key:
            return
        self._captions_key = key
        z = layout.zoom
        spans = []
        for k, label in enumerate(self.labels[: layout.batch]):
            x, y, w, h = layout.box(k)
            color = PALETTE[k % len(PALETTE)]
            value = ""
            if values is not None:
                value = f' <span class="cnnviz-value">{fmt_value(values[k])}</span>'

            spans.append(
                f'<div class="cnnviz-caption" style="left:{x * z}px; top:{(y + h) * z + 3}px; '
                f'width:{w * z}px" title="{esc(label)}">'
                f'<span class="cnnviz-swatch" style="background:{color}"></span>{esc(label)}'
                f"{value}</div>"
            )
        height, width = layout.shape
        self.captions.value = (
            f'<div style="position:relative; width:{width * z}px; height:{height * z}px">'
            + "".join(spans)
            + "</div>"
        )

    def close(self) -> None:
        self.pixels.canvas.close()
