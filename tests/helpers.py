"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import threading
import time

import keras
import numpy as np
import pytest
from PIL import Image

PNG = b"\x89PNG\r\n\x1a\n"


def model_state(model: keras.Model):
    """Everything about a model that no engine call may change."""
    return (
        [np.array(w) for w in model.weights],
        model.to_json(),
        [(w.path, w.trainable) for w in model.weights],
        [layer.trainable for layer in model.layers],
    )


def assert_same_state(before, after):
    weights_b, json_b, meta_b, trainable_b = before
    weights_a, json_a, meta_a, trainable_a = after
    assert json_a == json_b
    assert meta_a == meta_b
    assert trainable_a == trainable_b
    assert len(weights_a) == len(weights_b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


class Sent:
    """The PNG images the canvas manager sends out, decoded, with the canvas each is for.

    Recorded where the messages leave the kernel (a batch dropped after an exception is not
    sent, so not recorded); the canvas of each image is noted when it is drawn.
    """

    def __init__(self):
        self.images: list[np.ndarray] = []  # every image sent, in order
        self.owners: list[str | None] = []  # the canvas model id of each
        self.lock = threading.Lock()
        self._drawn: list[tuple[object, str]] = []  # (buffer, canvas model id)

    def drawn(self, canvas, buffers) -> None:
        pngs = [b for b in buffers if bytes(memoryview(b)[:8]) == PNG]
        with self.lock:
            self._drawn.extend((b, canvas.model_id) for b in pngs)

    def out(self, buffers) -> None:
        for buffer in buffers:
            data = bytes(buffer)
            assert not data.startswith(b"\xff\xd8"), "an image went as JPEG (lossy)"
            if data.startswith(PNG):
                image = np.asarray(Image.open(io.BytesIO(data)))
                with self.lock:
                    owner = next((o for b, o in self._drawn if b is buffer), None)
                    self._drawn = [(b, o) for b, o in self._drawn if b is not buffer]
                    self.images.append(image)
                    self.owners.append(owner)

    def on(self, canvas) -> list[np.ndarray]:
        """The images sent to ``canvas`` (an ipycanvas Canvas), in order."""
        with self.lock:
            return [im for im, o in zip(self.images, self.owners) if o == canvas.model_id]

    @property
    def last(self) -> np.ndarray:
        assert self.images, "nothing was drawn"
        return self.images[-1]


def spy_on_canvases(monkeypatch) -> Sent:
    """Record every image sent through ipycanvas' canvas manager (see :class:`Sent`)."""
    from ipycanvas.canvas import _CANVAS_MANAGER

    record = Sent()
    send_command = _CANVAS_MANAGER.send_command
    send_custom = _CANVAS_MANAGER._send_custom

    def command_spy(canvas, command, buffers=()):
        record.drawn(canvas, buffers)
        return send_command(canvas, command, list(buffers))

    def custom_spy(command, buffers=()):
        record.out(buffers)
        return send_custom(command, list(buffers))

    monkeypatch.setattr(_CANVAS_MANAGER, "send_command", command_spy)
    monkeypatch.setattr(_CANVAS_MANAGER, "_send_custom", custom_spy)
    return record


def wait_until(condition, timeout=120.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def click(canvas, x: float = 3, y: float = 3) -> None:
    """What a mouse click on a canvas view sends to the kernel."""
    canvas._handle_frontend_event(None, {"event": "mouse_down", "x": x, "y": y}, [])


NOTEBOOK_TIMES = pytest.StashKey[dict]()
"""``(wall, kernel CPU)`` seconds of each notebook's run, by its path under notebooks/."""


def _bf16_quality_marker():
    """Skip the bfloat16 quality checks (whole pointing games, every class optimized) where
    bfloat16 is only emulated, unless CNNVIZ_EMULATED_BF16=1 asks for them: emulated, they
    cost tens of minutes on two cores (the occlusion game took 43 min under load), which
    would push the suite past CI's budget. Where the hardware has bfloat16 they run."""
    import os

    import pytest

    from cnnviz_widgets.engine.model.precision import hardware_precisions

    fast, why = hardware_precisions(honor_env=False)  # the real hardware
    return pytest.mark.skipif(
        "bfloat16" not in fast and os.environ.get("CNNVIZ_EMULATED_BF16") != "1",
        reason=f"bfloat16 is emulated here ({why}); CNNVIZ_EMULATED_BF16=1 runs it anyway",
    )


BF16_QUALITY = _bf16_quality_marker()
