"""What an optimization yields: a :class:`Frame` every few steps and a final :class:`Result`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..results_io import Keepable


@dataclass
class Frame:
    """A snapshot of a run.

    Attributes:
        step: steps done so far.
        steps: steps asked for.
        images: ``(B, H, W, C)`` uint8, the current images (display space).
        values: ``(B,)`` the objective per image (without the regularizers).
        total: ``(B,)`` what is actually maximized (objective minus regularizers).
        seconds: time since the run started.
        final: the last frame of the run (finished, stopped or failed).
        preview: a first look: the first step taken eagerly, before the compiled step
            was traced (``optimize(preview=True)``); the run then starts again from the
            same image in the compiled step (its result does not depend on the
            preview), so the next frames count from step 1 again.
    """

    step: int
    steps: int
    images: np.ndarray
    values: np.ndarray
    total: np.ndarray
    seconds: float
    final: bool = False
    preview: bool = False

    @property
    def steps_per_second(self) -> float:
        return self.step / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result(Keepable):
    """What a run produced.

    Attributes:
        images: ``(B, H, W, C)`` uint8, the last good images.
        history: ``(steps_done, B)`` the objective per step and image.
        total_history: ``(steps_done, B)`` objective minus regularizers.
        steps: steps done.
        seconds: wall time.
        stopped: the run was stopped before its last step.
        error: why the run ended early (NaN gradients), or ``None``.
        objective: the objective, as text.
        alpha: ``(B, H, W)`` float32 in ``[0, 1]``, the transparency map (MaCo): the
            absolute gradient of the objective w.r.t. each pixel of the image, summed over
            the run (mean over colours), divided by its 95th percentile per image and
            clipped at 1 (a few very strong pixels must not make the rest transparent).
            High where the model took its evidence; 0 where it never looked (e.g. outside
            every random crop).  ``None`` for a run that took no step.
        precision: what the model's passes ran in: ``"float32"``, ``"bfloat16"`` or
            ``"float16"`` (the image, the optimizer and the objective are float32
            always); see ``precision_reason``.
        precision_reason: why (``precision="auto"`` measured, or it was asked for).
        recipe: the preset the run used (``preset="auto"`` picks the model's own).
        recipe_reason: why that one (asked for; registered; declared by the model; or
            the fallback for a model that says nothing).
        restarted: images (indices) that were started again with more initial noise: a
            quarter into the run their class probability was still below 0.01 (a
            plateau; class objectives only).
        stuck: images whose class probability was still below 0.01 at the last step
            (under that step's random transforms): the run did not get the class;
            :meth:`stuck_message` says so for people.
        output: the output whose class scores the class terms read, for a model with
            several (its name, see :func:`~cnnviz_widgets.select_output`), else ``None``.
    """

    images: np.ndarray
    history: np.ndarray
    total_history: np.ndarray
    steps: int
    seconds: float
    stopped: bool = False
    error: str | None = None
    objective: str = ""
    alpha: np.ndarray | None = None
    precision: str = "float32"
    precision_reason: str = ""
    recipe: str = ""
    recipe_reason: str = ""
    restarted: list[int] = field(default_factory=list)
    stuck: list[int] = field(default_factory=list)
    output: str | None = None

    @property
    def image(self) -> np.ndarray:
        """The first image ``(H, W, C)`` uint8."""
        return self.images[0]

    def stuck_message(self) -> str:
        """A sentence on the images stuck on a plateau (empty when none)."""
        if not self.stuck:
            return ""
        again = (
            " even after a restart with more noise" if set(self.stuck) & set(self.restarted) else ""
        )
        return (
            f"image(s) {self.stuck} stayed on a plateau: the class probability is still "
            f"below 0.01 after {self.steps} steps{again} (recipe {self.recipe!r}). Try "
            "another seed, more steps, or another preset"
        )


def to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


ALPHA_PERCENTILE = 95.0


def alpha_map(evidence: np.ndarray, percentile: float = ALPHA_PERCENTILE) -> np.ndarray:
    """Accumulated absolute gradients ``(B, H, W)`` to a transparency map in ``[0, 1]``:
    divided by the per-image ``percentile`` and clipped (MaCo's and Horama's display)."""
    evidence = np.asarray(evidence, np.float32)
    flat = evidence.reshape(len(evidence), -1)
    top = np.percentile(flat, percentile, axis=1) if flat.shape[1] else np.zeros(len(flat))
    top = np.where(top > 0, top, flat.max(axis=1, initial=0.0))  # evidence on few pixels
    out = np.zeros_like(evidence)
    for k, t in enumerate(top):
        if t > 0 and np.isfinite(t):
            out[k] = np.clip(evidence[k] / t, 0.0, 1.0)
    return out
