"""What the attribution methods and feature maps return: small dataclasses with the maps,
the class explained and its scores, and their overlays on the image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..layers.filters import heat_rgba, overlay_rgba
from ..results_io import Keepable

__all__ = [
    "Attribution",
    "GradCam",
    "Occlusion",
    "Predictions",
    "Saliency",
]


@dataclass
class Attribution(Keepable):
    """Where in the image the evidence for one class is.

    Attributes:
        heatmap: ``(H, W)`` float32 in ``[0, 1]`` at the image's resolution (1 = most
            important); this is what the overlay shows.
        raw: the method's own map before normalization (see each method).
        class_index: the class explained.
        class_name: its name, when the model's class names are known.
        score: the class's score on the image (its logit when it can be read, else the
            model's output).
        probability: the class's probability on the image; NaN for a head that is not a
            classifier (no softmax, no sigmoid, no class names: a regression's values,
            whose ``score`` is the output value).
        image: the ``(H, W, C)`` float32 display image the map is for (after any resizing
            or conversion listed in ``notes``).
        method: the registered method's name (``"grad_cam"``, ``"saliency"``,
            ``"integrated_gradients"``, ...: see :func:`~cnnviz_widgets.method_names`).
        layer: the layer's path (Grad-CAM), else ``None``.
        notes: what was changed to make the input fit, and caveats.
        precision: what the model's passes ran in (``"float32"``, ``"bfloat16"`` or
            ``"float16"``); results are float32 always.  ``precision_reason`` says why.
        params: the method's settings (as :func:`~cnnviz_widgets.explain` took them).
        output: the output explained, for a model with several (its name, see
            :func:`~cnnviz_widgets.select_output`); ``None`` for a model with one.
    """

    heatmap: np.ndarray
    raw: np.ndarray
    class_index: int
    class_name: str | None
    score: float
    probability: float
    image: np.ndarray
    method: str
    layer: str | None = None
    notes: list[str] = field(default_factory=list)
    precision: str = "float32"
    precision_reason: str = ""
    params: dict = field(default_factory=dict)
    output: str | None = None

    @property
    def peak(self) -> tuple[int, int]:
        """``(y, x)`` of the heatmap's maximum (the first one on ties)."""
        y, x = np.unravel_index(int(np.argmax(self.heatmap)), self.heatmap.shape)
        return int(y), int(x)

    def overlay(self, cmap: str = "jet", opacity: float = 0.5, *, weighted: bool = False):
        """The heatmap through a matplotlib colormap, blended over the image.

        Args:
            cmap: a matplotlib colormap name.
            opacity: the heatmap's opacity in ``[0, 1]``.
            weighted: scale the opacity by the heat, so cold regions show the image.

        Returns:
            ``(H, W, 4)`` uint8 RGBA (opaque).
        """
        return overlay_rgba(self.image, self.heatmap, cmap, opacity, weighted)

    def colorized(self, cmap: str = "jet", opacity: float = 1.0, *, weighted: bool = False):
        """The heatmap alone as ``(H, W, 4)`` uint8 RGBA whose alpha is ``opacity`` (times
        the heat when ``weighted``): a layer to draw over the image yourself."""
        return heat_rgba(self.heatmap, cmap, opacity, weighted)


@dataclass
class GradCam(Attribution):
    """Grad-CAM (or Grad-CAM++) on one layer.

    ``raw`` is the weighted sum of the layer's channels, ``(h, w)`` at the layer's
    resolution, *before* the ReLU (negative values: evidence against the class);
    ``heatmap`` is its ReLU, upsampled (bilinear) and divided by its maximum.

    Attributes:
        weights: ``(channels,)`` the channel weights (mean gradient for Grad-CAM; the
            alpha-weighted positive gradients for Grad-CAM++).
    """

    weights: np.ndarray | None = None


@dataclass
class Saliency(Attribution):
    """Gradient of the class score with respect to the display image.

    ``raw`` is the ``(H, W, C)`` gradient (averaged over the noisy copies for SmoothGrad);
    ``heatmap`` is the largest absolute value over channels, scaled so that its 99th
    percentile is 1 (and clipped).

    Attributes:
        samples: noisy copies averaged (0 for the vanilla gradient).
        noise: the noise's standard deviation, as a fraction of the input's value range
            (``[0, 1]`` for the display image: see :mod:`.noise`).
    """

    samples: int = 0
    noise: float = 0.0


@dataclass
class Occlusion(Attribution):
    """Occlusion sensitivity: how much the class score drops when a patch is hidden.

    ``raw`` is the ``(rows, columns)`` grid of score drops (positive: hiding that patch
    lowers the score); ``heatmap`` is, for each pixel, the mean drop of the patches that
    covered it, ReLU'd and divided by its maximum.

    Attributes:
        patch, stride: patch side and step in pixels.
        fill: what covered the patches (``"mean"``, ``"blur"``, ...).
        scores: ``(rows, columns)`` the score with each patch hidden.
        base_score: the score of the unoccluded image (in the unit of ``score_kind``).
        score_kind: ``"logit"`` or ``"probability"``.
        agreement: when the occluded passes ran in reduced precision, how closely the map
            agrees with float32: the largest difference of the drops from float32's at the
            positions recomputed in float32 (the largest drops, the most negative, the
            median), as a fraction of the largest drop (``0.01``: within 1 %);
            ``precision_reason`` says where it was checked.  ``None`` in float32.
            ``base_score``, ``score``, ``probability`` and the class explained are float32
            in every precision; ``scores`` are ``base_score`` minus the drops.
    """

    patch: int = 0
    stride: int = 0
    fill: str = "mean"
    scores: np.ndarray | None = None
    base_score: float = 0.0
    score_kind: str = "logit"
    agreement: float | None = None


@dataclass
class Predictions(Keepable):
    """The top-k classes for one image, most probable first.

    Attributes:
        indices: ``(k,)`` class indices.
        names: their names (``None`` entries when the model's names are unknown).
        probabilities: ``(k,)``.
        scores: ``(k,)`` logits (or the model's outputs when its logits cannot be read).
        notes: what was changed to make the input fit, and caveats (the first, when the
            image is unlike the training images: ``distribution_note``).
        in_distribution: the image looks like the model's training images (``True``), is
            unlike them (``False``: its answer means little), or the model does not say
            what it was trained on (``None``); see ``cw.distribution_check``.
        distribution_note: the sentence that says so ("" unless ``in_distribution`` is
            ``False``).
    """

    indices: np.ndarray
    names: list[str | None]
    probabilities: np.ndarray
    scores: np.ndarray
    notes: list[str] = field(default_factory=list)
    in_distribution: bool | None = None
    distribution_note: str = ""

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        """``(index, name, probability)`` per class."""
        for i, n, p in zip(self.indices, self.names, self.probabilities):
            yield int(i), n, float(p)

    @property
    def class_index(self) -> int:
        """The most probable class."""
        return int(self.indices[0])

    @property
    def class_name(self) -> str | None:
        return self.names[0]

    def __str__(self) -> str:
        lines = [
            f"{rank:>2}. {p * 100:6.2f}%  {i:>4}  {n if n is not None else ''}".rstrip()
            for rank, (i, n, p) in enumerate(self, 1)
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])
