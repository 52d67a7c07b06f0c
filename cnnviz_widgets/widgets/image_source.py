"""Where the explainer's image comes from: an upload, a bundled sample, a new generated
shapes image or an array from code; fitted to the model's input, with notes."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..engine import (
    SHAPES_CLASS_NAMES,
    ImageAdjustedWarning,
    as_image,
    fit_image,
    generate_shapes,
    load_image,
    sample_image,
    shapes_sample,
)
from ..errors import CnnvizError
from .common import QuietUpdates, esc, row

GRACE_HOPPER = "grace_hopper"
NO_SAMPLE = ""  # the sample dropdown's value when the image is not a sample

__all__ = ["GRACE_HOPPER", "NO_SAMPLE", "ImageSource", "fitted_image"]


def fitted_image(
    source: Any, shape: tuple[int | None, int | None, int]
) -> tuple[np.ndarray, list[str]]:
    """``source`` as the display image a model with input ``(h, w, c)`` sees, and the
    notes on what was changed to make it fit (resizing, gray <-> RGB, value range)."""
    h, w, c = shape
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImageAdjustedWarning)
        arr, notes = as_image(source)
        fitted, notes = fit_image(arr, h, w, c, notes=notes)
    for warning in caught:  # anything warned but not in the notes
        text = str(warning.message)
        if issubclass(warning.category, ImageAdjustedWarning) and text not in notes:
            notes.append(text)
    return fitted, notes


def source_name(image: Any) -> str:
    """A short name for an image given from code (file name, array shape, type)."""
    if isinstance(image, (str, os.PathLike)):
        return os.path.basename(os.fspath(image))
    if isinstance(image, np.ndarray):
        return f"array {image.shape} {image.dtype}"
    return type(image).__name__


class ImageSource(QuietUpdates):
    """The Upload button, the Sample dropdown and the New-shapes-image button.

    Args:
        input_shape: the model's ``(h, w, c)`` input (``None`` where any size goes).
        on_image: called as ``on_image(image, label, notes)`` with the fitted image; it
            raises to refuse it (the previous image stays).
        guarded: the panel's wrapper that shows a callback's errors in the panel.

    Attributes:
        upload, sample_select, new_image: the controls; ``box`` their row.
        text: the HTML line saying what the image is.
    """

    def __init__(
        self,
        input_shape: tuple[int | None, int | None, int],
        on_image: Callable[[np.ndarray, str, list[str]], None],
        guarded: Callable[[Callable[..., Any]], Callable[..., Any]],
    ) -> None:
        self.input_shape = input_shape
        self.on_image = on_image
        self._updating = False
        self.upload = widgets.FileUpload(
            accept="image/*",
            multiple=False,
            description="Upload image",
            layout=widgets.Layout(width="150px"),
        )
        self.upload.add_class("cnnviz-ex-upload")
        self.sample_select = widgets.Dropdown(
            options=[
                ("— choose a sample —", NO_SAMPLE),
                *[(f"{name.replace('_', ' ')} (generated)", name) for name in SHAPES_CLASS_NAMES],
                ("Grace Hopper (photo)", GRACE_HOPPER),
            ],
            value=NO_SAMPLE,
            description="Sample",
            layout=widgets.Layout(width="290px"),
            style={"description_width": "56px"},
        )
        self.sample_select.add_class("cnnviz-ex-sample")
        self.new_image = widgets.Button(
            description="New shapes image",
            icon="random",
            tooltip="a random generated shapes image (its seed is shown)",
            layout=widgets.Layout(width="170px"),
        )
        self.new_image.add_class("cnnviz-ex-new")
        self.text = widgets.HTML()
        self.text.add_class("cnnviz-muted")
        self.box = row(self.upload, self.sample_select, self.new_image)
        self.upload.observe(guarded(self._on_upload), names="value")
        self.sample_select.observe(guarded(self._on_sample), names="value")
        self.new_image.on_click(guarded(lambda _: self.new_shapes_image()))

    def set(self, source: Any, label: str, sample: str = NO_SAMPLE) -> None:
        """Fit ``source`` to the model and hand it on; ``sample`` is the dropdown's value
        for it (a sample's name, or none)."""
        fitted, notes = fitted_image(source, self.input_shape)
        self.on_image(fitted, label, notes)
        if self.sample_select.value != sample:
            self._quietly(lambda: setattr(self.sample_select, "value", sample))
        self.text.value = (
            f"Image: <b>{esc(label)}</b> · {fitted.shape[0]}×{fitted.shape[1]}"
            f"{'' if fitted.shape[-1] != 1 else ' gray'} as the model sees it"
        )

    def shapes_size(self) -> int:
        """The size of generated shapes images: the model's, when square and usable."""
        h, w, _ = self.input_shape
        return int(h) if h is not None and h == w and 16 <= h <= 512 else 64

    def new_shapes_image(self, seed: int | None = None) -> int:
        """Show a generated shapes image (random class) for ``seed`` (default: a random
        seed); returns the seed."""
        if seed is None:
            seed = int(np.random.default_rng().integers(0, 100_000))
        batch = generate_shapes(1, seed=int(seed), size=self.shapes_size())
        label = SHAPES_CLASS_NAMES[int(batch.labels[0])].replace("_", " ")
        self.set(batch.images[0], f"generated {label}, seed {seed}")
        return int(seed)

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        item = files[-1]
        name = item.get("name") or "uploaded file"
        try:
            self.set(load_image(bytes(item["content"]), mode=None), f"{name} (uploaded)")
        except CnnvizError as err:
            raise CnnvizError(f"{name}: {err}") from None
        finally:  # the same file can be uploaded again
            self._quietly(lambda: setattr(self.upload, "value", ()))

    def _on_sample(self, change: dict) -> None:
        if self._updating or change["new"] == NO_SAMPLE:
            return
        name = change["new"]
        if name == GRACE_HOPPER:
            image = sample_image(GRACE_HOPPER)
            label = "Grace Hopper (matplotlib's sample photo)"
        else:
            image = shapes_sample(name, seed=0, size=self.shapes_size())[0]
            label = f"generated {name.replace('_', ' ')}, seed 0"
        self.set(image, label, sample=name)
