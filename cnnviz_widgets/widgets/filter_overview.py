"""The gallery's overview: the first filter of the first convolution of each block, seen
through input channel 0, in gray (the keras-vis tutorial's figure), as one labelled picture."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from ..engine import filter_montage, first_conv_per_block
from ..errors import NoKernelError
from ..session import Session
from .canvas import zoom_nearest
from .pictures import BACKGROUND, font

OVERVIEW_TILE = 112  # pixels of a filter in the overview
OVERVIEW_COLUMNS = 6

__all__ = ["overview_picture"]


def overview_picture(session: Session) -> tuple[np.ndarray, list[tuple[int, int, int, int, str]]]:
    """The overview picture (uint8 RGBA) and each tile's ``(x, y, w, h, path)``."""
    loaded = session.loaded
    paths = first_conv_per_block(loaded)
    if not paths:
        raise NoKernelError("this model has no convolution layer, so no filters to show")
    face, small = font(14), font(12)
    tiles = []
    for path in paths:
        tile = filter_montage(
            loaded,
            path,
            view="channel",
            channel=0,
            normalization="filter",
            cmap="gray",
            filters=[0],
            scale=1,
            padding=0,
        ).image
        kh, kw = tile.shape[:2]
        tiles.append(zoom_nearest(tile, max(1, OVERVIEW_TILE // max(kh, kw))))
    gap, label_h, pad = 22, 40, 16
    col_w = max(max(t.shape[1] for t in tiles), 120)
    row_h = label_h + max(t.shape[0] for t in tiles)
    columns = min(len(tiles), OVERVIEW_COLUMNS)
    rows = math.ceil(len(tiles) / columns)
    width = 2 * pad + columns * col_w + (columns - 1) * gap
    height = 2 * pad + rows * row_h + (rows - 1) * gap
    canvas = Image.new("RGBA", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    boxes = []
    for k, (path, tile) in enumerate(zip(paths, tiles)):
        r, c = divmod(k, columns)
        x0, y0 = pad + c * (col_w + gap), pad + r * (row_h + gap)
        th, tw = tile.shape[:2]
        tx = x0 + (col_w - tw) // 2
        ty = y0 + label_h
        canvas.paste(Image.fromarray(tile, "RGBA"), (tx, ty))
        row = session.table.row(path)
        name = path if len(path) <= 18 else "…" + path[-17:]
        draw.text((x0 + col_w / 2, y0), name, fill=(235, 235, 235, 255), font=face, anchor="ma")
        draw.text(
            (x0 + col_w / 2, y0 + 19),
            f"layer {row.index} · filter 0, in 0",
            fill=(170, 170, 170, 255),
            font=small,
            anchor="ma",
        )
        boxes.append((tx, ty, tw, th, path))
    return np.asarray(canvas, dtype=np.uint8), boxes
