"""What an atlas is made of and reports: :class:`Atlas` (its units, read from the store),
:class:`AtlasUnit` and :class:`AtlasProgress` (see :mod:`.atlas` for the calls)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import CnnvizError
from ..figures.base import Figured
from ..layers.filters import filter_montage, kernel_array
from ..model.introspect import has_kernel
from ..results_io import Keepable
from .atlas_plan import AtlasPlan, class_weights, unit_examples
from .top_examples import TopExamples
from .unit_health import health_of

__all__ = ["Atlas", "AtlasProgress", "AtlasUnit"]


@dataclass
class AtlasProgress:
    """What an atlas run reports.

    Attributes:
        phase: ``"visualization"``, ``"examples"``, ``"done"`` (the final report), or
            ``"open"`` (the first report of an :func:`~.atlas.atlas_job`: the store as
            found, in ``atlas``).
        done: units of this phase finished (including those found in the store).
        total: units asked for.
        new: the units finished since the last report (now readable from the store).
        seconds: time since the run started.
        live: ``{channel: (H, W, C) uint8}`` the images of the chunk being optimized, at
            its current step (visualization phase), else empty.
        step: the current chunk's step (visualization phase).
        seen: images read so far (examples phase).
        images: images in the data, when known (examples phase).
        final: the last report of the run.
        atlas: the :class:`Atlas` being computed (``"open"`` phase), else ``None``.
    """

    phase: str
    done: int
    total: int
    new: list[int] = field(default_factory=list)
    seconds: float = 0.0
    live: dict = field(default_factory=dict)
    step: int = 0
    seen: int = 0
    images: int | None = None
    final: bool = False
    atlas: Atlas | None = None


@dataclass
class AtlasUnit(Keepable):
    """One unit of an atlas.

    Attributes:
        layer: the layer's path.
        channel: the unit's index.
        image: its feature visualization ``(H, W, C)`` uint8, or ``None`` (not computed).
        value: the objective the visualization reached (mean activation of the unit).
        kernel: its filter as an RGBA thumbnail ``(kh, kw, 4)`` uint8, for convolutions.
        kernel_view: what the thumbnail shows, e.g. ``"7x7, RGB"`` or ``"3x3, mean of 32
            inputs"`` (a kernel over many input channels is drawn as their mean, in grey).
        examples: its top dataset images ``(m, H, W, C)`` uint8, best first, or ``None``.
        example_scores, example_indices, example_labels: per example image.
        example_boxes: ``(m, 4)`` ``x0, y0, x1, y1`` of the map cell where it peaks.
        example_maps: ``(m, h, w)`` its activation map on each example.
        example_sources: the file of each example (path sources).
        label_names: the names of the data's labels, when known.
        classes: for a layer that feeds the classifier through global pooling, the classes
            it feeds most: ``[(class index, name, weight), ...]``, largest weight first.
        fired, seen: how many of the ``seen`` data images the unit fired on (``None``:
            not counted); see :attr:`health`.
    """

    layer: str
    channel: int
    image: np.ndarray | None = None
    value: float | None = None
    kernel: np.ndarray | None = None
    kernel_view: str | None = None
    examples: np.ndarray | None = None
    example_scores: np.ndarray | None = None
    example_indices: np.ndarray | None = None
    example_labels: np.ndarray | None = None
    example_boxes: np.ndarray | None = None
    example_maps: np.ndarray | None = None
    example_sources: list | None = None
    label_names: list | None = None
    classes: list | None = None
    fired: int | None = None
    seen: int | None = None

    @property
    def health(self) -> str:
        """``"dead"``, ``"near-dead"``, ``"alive"`` or ``"unknown"`` (see
        :func:`~.unit_health.health_of`)."""
        return health_of(self.fired, self.seen or 0)


# ------------------------------------------------------------------------------ view
class Atlas(Figured):
    """The units of an atlas, read from its store (what :func:`atlas` and
    :func:`open_atlas` return).

    Attributes:
        layer: the layer's path.
        units: the channels asked for.
        vis_store, examples_store: the stores (``examples_store`` is ``None`` without
            data, or for a stream with no ``key``: its examples stay in memory).
        computed: units computed by this run (visualization phase).
        reused: asked-for units found in the store already.
        stopped: the run was stopped before the end.
        seconds: wall time of the run.
        notes: caveats (data fitted to the model, examples not stored...).
    """

    def __init__(self, plan: AtlasPlan):
        self._plan = plan
        self.loaded = plan.loaded
        self.layer = plan.layer
        self.units = list(plan.units)
        self.vis_store = plan.vis_store
        self.examples_store = plan.examples_store
        self.computed: list[int] = []
        self.reused: list[int] = []
        self.stopped = False
        self.seconds = 0.0
        self.notes: list[str] = []
        self.examples_in_memory: TopExamples | None = None
        self._kernels = None
        self._classes = class_weights(plan.loaded, plan.layer)

    def __repr__(self) -> str:
        return (
            f"Atlas({self.layer!r}, {len(self.done())}/{len(self.units)} units done, "
            f"store={str(self.vis_store.path)!r})"
        )

    @property
    def has_data(self) -> bool:
        return self._plan.source is not None

    def done(self) -> set[int]:
        """Asked-for units whose visualization (and examples, with data) are stored."""
        vis = self.vis_store.done()
        out = {c for c in self.units if c in vis}
        if self.examples_store is not None:
            ex = self.examples_store.done()
            out = {c for c in out if c in ex}
        elif self.has_data and self.examples_in_memory is None:
            out = set()
        return out

    @property
    def complete(self) -> bool:
        return len(self.done()) == len(self.units)

    def kernel(self, channel: int) -> np.ndarray | None:
        """The unit's filter as an RGBA thumbnail, for convolution layers."""
        if not has_kernel(self._plan.found):
            return None
        if self._kernels is None:
            n = kernel_array(self._plan.found).shape[3]
            self._kernels = n == self._plan.n
        if not self._kernels:
            return None
        return filter_montage(self.loaded, self.layer, filters=[int(channel)], padding=0).image

    def kernel_view(self) -> str | None:
        """What :meth:`kernel` draws: ``"KxK, RGB"`` for a layer that sees three channels,
        else ``"KxK, mean of N inputs"`` (``filter_montage``'s automatic view)."""
        if not has_kernel(self._plan.found):
            return None
        kh, kw, n_in = kernel_array(self._plan.found).shape[:3]
        return f"{kh}x{kw}, " + ("RGB" if n_in == 3 else f"mean of {n_in} inputs")

    def classes(self, channel: int, top: int = 3) -> list | None:
        """The classes the unit feeds most (see :func:`class_weights`), or ``None``."""
        if self._classes is None:
            return None
        w = self._classes[int(channel)]
        names = self.loaded.class_names
        order = np.argsort(-w, kind="stable")[:top]
        return [(int(j), names[j] if names else str(j), float(w[j])) for j in order]

    def image(self, channel: int) -> np.ndarray | None:
        """The unit's visualization, or ``None`` when not computed yet."""
        got = self.vis_store.load(channel)
        return None if got is None else got["image"]

    def health(self, channel: int) -> str:
        """Whether the unit fired on the data: ``"dead"``, ``"near-dead"``, ``"alive"`` or
        ``"unknown"`` (examples not computed yet, or stored by an older version)."""
        c = int(channel)
        if self.examples_store is not None:
            got = self.examples_store.load(c)
            meta = got["meta"] if got is not None else {}
            return health_of(meta.get("fired"), meta.get("seen") or 0)
        top = self.examples_in_memory
        if top is not None and c in top.units:
            return top.health(c)
        return "unknown"

    def unit(self, channel: int) -> AtlasUnit:
        """Everything known about one unit (what is not computed yet is ``None``)."""
        c = int(channel)
        if not 0 <= c < self._plan.n:
            raise CnnvizError(
                f"channel {c} is out of range: {self.layer!r} has channels 0..{self._plan.n - 1}"
            )
        kernel = self.kernel(c)
        out = AtlasUnit(
            self.layer,
            c,
            kernel=kernel,
            kernel_view=None if kernel is None else self.kernel_view(),
            classes=self.classes(c),
        )
        vis = self.vis_store.load(c)
        if vis is not None:
            out.image = vis["image"]
            out.value = vis["meta"].get("value")
        ex = None
        if self.examples_store is not None:
            ex = self.examples_store.load(c)
        elif self.examples_in_memory is not None and c in self.examples_in_memory.units:
            arrays, meta = unit_examples(self.examples_in_memory, c)
            ex = {**arrays, "meta": meta}
        if ex is not None:
            out.examples = ex["examples"]
            out.example_scores = ex["scores"]
            out.example_indices = ex["indices"]
            out.example_labels = ex["labels"]
            out.example_boxes = ex.get("boxes")
            out.example_maps = ex.get("maps")
            out.example_sources = ex["meta"].get("sources")
            out.label_names = ex["meta"].get("label_names")
            out.fired = ex["meta"].get("fired")
            out.seen = ex["meta"].get("seen")
        return out
