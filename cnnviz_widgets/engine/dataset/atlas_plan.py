"""What an atlas computes, before it runs: the units, the classes each feeds, the dataset
examples to rank, and the feature-visualization chunks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from ...errors import CnnvizError
from ..layers.filters import select_indices
from ..model.internals import output_shape
from ..model.introspect import get_layer
from ..model.loading import LoadedModel, as_loaded
from ..model.precision import PRECISIONS, PrecisionChoice, resolve
from ..optvis import objectives as obj
from ..optvis.presets import PRESETS
from ..optvis.recipes import choose
from ..optvis.run import optimize
from ..optvis.step import image_size
from .sources import DataSource, data_source
from .store import UnitStore, default_root, model_fingerprint
from .top_examples import TopExamples

STORE_VERSION = 1

# ----------------------------------------------------------------------- classes fed
_PASS_THROUGH = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.BatchNormalization,
)
_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def class_weights(model, layer) -> np.ndarray | None:
    """``(channels, classes)``: how much each channel of ``layer`` feeds each class, when
    the layer reaches the final Dense layer through global pooling only (the last
    convolution of most classifiers with global average pooling: the embedded model,
    ResNet, MobileNet, EfficientNet...).  The Dense layer's weights: the logit of class
    ``j`` grows by ``w[c, j]`` per unit of channel ``c``'s pooled activation.  ``None``
    when the path is anything else (VGG's flatten and fully connected layers)."""
    loaded = as_loaded(model)
    m = loaded.model
    _, path = get_layer(m, layer)
    if "/" in path:
        return None
    names = [lay.name for lay in m.layers]
    after = m.layers[names.index(path) + 1 :]
    if not after or not isinstance(after[-1], keras.layers.Dense):
        return None
    middle = after[:-1]
    pools = [lay for lay in middle if isinstance(lay, _POOLS)]
    if len(pools) != 1 or not all(isinstance(lay, (*_POOLS, *_PASS_THROUGH)) for lay in middle):
        return None
    kernel = np.asarray(keras.ops.convert_to_numpy(after[-1].kernel), np.float32)
    shape = output_shape(m.get_layer(path))
    if shape is None or kernel.shape[0] != shape[-1]:
        return None
    return kernel


# ------------------------------------------------------------------------------- plan
class AtlasPlan:
    """What an atlas computes and where it goes: the layer, the units, the chunks, the
    stores.  Shared by the local and the Ray backends (so they compute the same things)."""

    def __init__(
        self,
        loaded: LoadedModel,
        layer,
        data,
        *,
        channels,
        store,
        preset,
        steps,
        batch,
        seed,
        k,
        score,
        examples_batch,
        key,
        precision="auto",
    ):
        self.loaded = loaded
        if precision not in PRECISIONS:
            raise CnnvizError(
                f"unknown precision {precision!r}: use one of {', '.join(map(repr, PRECISIONS))}"
            )
        self.precision = precision
        self._choices: dict[str, PrecisionChoice] = {}
        m = loaded.model
        found, path = get_layer(m, layer)
        if isinstance(found, keras.Model):
            raise CnnvizError(
                f"{path!r} is a nested model: pick one of its layers, such as "
                f"{path}/{found.layers[-1].name}"
            )
        shape = output_shape(found)
        if shape is None or len(shape) not in (2, 4):
            raise CnnvizError(
                f"layer {path!r} outputs {shape}: an atlas shows the channels of a "
                "(batch, height, width, channels) output or the units of a (batch, units) one"
            )
        self.layer = path
        self.found = found
        self.n = int(shape[-1])
        self.spatial = len(shape) == 4
        self.units = select_indices(self.n, channels, "channels", path).astype(int).tolist()
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise CnnvizError(f"batch is the channels per compiled step, >= 1; got {batch!r}")
        self.batch = int(batch)
        self.seed = int(seed)
        # "auto": the model's own recipe (optvis.recipes), resolved once here so that the
        # store key and every chunk (local or Ray) use the same one
        p, self.recipe_reason = choose(preset, loaded)
        named = PRESETS.get(p.name) == p
        self.preset = p.name if named else p
        self.steps = int(p.steps if steps is None else steps)
        if self.steps < 1:
            raise CnnvizError(f"steps must be >= 1, got {steps}")
        root = default_root() / "atlas" if store is None else Path(store).expanduser()
        self.root = root
        self.model_hash = model_fingerprint(m)
        self.vis_settings = {
            "version": STORE_VERSION,
            "objective": "channel" if self.spatial else "neuron",
            "preset": p.name if named else repr(p),
            "steps": self.steps,
            "batch": self.batch,
            "seed": self.seed,
            "preprocessing": loaded.preprocessing.name,
        }
        self.vis_store = UnitStore(
            root, loaded.name, self.model_hash, path, "vis", self.vis_settings
        )
        self.source: DataSource | None = None
        self.examples_store: UnitStore | None = None
        self.k, self.score, self.examples_batch = int(k), score, int(examples_batch)
        if data is not None:
            self.source = data_source(data, loaded, key=key)
            if self.source.key is not None:
                self.examples_store = UnitStore(
                    root,
                    loaded.name,
                    self.model_hash,
                    path,
                    "examples",
                    {
                        "version": STORE_VERSION,
                        "data": self.source.key,
                        "k": self.k,
                        "score": score,
                        "preprocessing": loaded.preprocessing.name,
                    },
                )

    # --- precision --------------------------------------------------------------------
    def vis_precision(self) -> PrecisionChoice:
        """What the visualizations run in (``"auto"`` decided once, by the optimization
        probe at this plan's batch and the model's image size)."""
        if "vis" not in self._choices:
            size = image_size(self.loaded, None)[0]
            self._choices["vis"] = resolve(
                self.loaded, self.precision, "optimize", batch=self.batch, size=size
            )
        return self._choices["vis"]

    def rank_precision(self) -> PrecisionChoice:
        """What the dataset ranking runs in (``"auto"``: measured at ``examples_batch``)."""
        if "rank" not in self._choices:
            self._choices["rank"] = resolve(
                self.loaded, self.precision, "forward", batch=self.examples_batch
            )
        return self._choices["rank"]

    # --- visualizations ---------------------------------------------------------------
    def chunk_of(self, channel: int) -> int:
        return channel // self.batch

    def chunk_channels(self, chunk: int) -> list[int]:
        lo = chunk * self.batch
        return list(range(lo, min(lo + self.batch, self.n)))

    def chunk_seed(self, chunk: int) -> int:
        return int(np.random.SeedSequence([self.seed, chunk]).generate_state(1)[0] % (2**31 - 1))

    def missing_chunks(self) -> list[int]:
        """The chunks holding an asked-for unit not in the store yet, in order."""
        done = self.vis_store.done()
        return sorted({self.chunk_of(c) for c in self.units if c not in done})

    def write_vis(self, channels, images, values) -> None:
        self.vis_store.prepare()
        for c, img, v in zip(channels, images, values):
            meta = {
                "value": float(v),
                "steps": self.steps,
                "layer": self.layer,
                "precision": self.vis_precision().precision,
            }
            self.vis_store.save(c, {"image": img}, meta)

    # --- examples --------------------------------------------------------------------
    def missing_examples(self) -> list[int]:
        if self.source is None:
            return []
        if self.examples_store is None:
            return list(self.units)
        done = self.examples_store.done()
        return [c for c in self.units if c not in done]

    def write_examples(self, top: TopExamples) -> None:
        if self.examples_store is None:
            return
        self.examples_store.prepare()
        for c in top.units.tolist():
            self.examples_store.save(c, *unit_examples(top, c))


def unit_examples(top: TopExamples, unit: int) -> tuple[dict, dict]:
    """One unit's examples as ``(arrays, meta)`` for a store file."""
    r = top.row(unit)
    keep = top.slots[r] >= 0
    boxes = [top.box(unit, j) for j in np.flatnonzero(keep)]
    arrays = {
        "examples": top.images(unit),
        "scores": top.scores[r][keep],
        "indices": top.indices[r][keep],
        "labels": top.labels[r][keep],
        "boxes": np.array([b for b in boxes if b is not None], np.int32).reshape(-1, 4)
        if top.positions is not None
        else None,
        "maps": top.maps[r][keep] if top.maps is not None else None,
    }
    sources = None
    if top.sources is not None:
        sources = [top.sources[s] for s in top.slots[r][keep]]
    meta = {
        "score": top.score,
        "seen": top.seen,
        "fired": top.fired_on(unit),
        "sources": sources,
        "label_names": top.label_names,
        "layer": top.layer,
    }
    return arrays, meta


# ----------------------------------------------------------------------------- chunks
def visualize_chunk(
    loaded: LoadedModel,
    layer: str,
    channels: list[int],
    *,
    spatial: bool,
    preset,
    steps: int,
    seed: int,
    stopping: Callable[[], bool] | None = None,
    report: Callable | None = None,
    every: int = 8,
    precision: str = "float32",
):
    """Optimize one image per channel in one compiled step.  Returns ``(images (B, H, W,
    C) uint8, values (B,), finished)``; ``report(step, images)`` is called every
    ``every`` steps; the run ends after the step in progress once ``stopping()`` is true."""
    make = obj.channel if spatial else obj.neuron
    run = optimize(
        loaded,
        make(layer, list(channels)),
        preset=preset,
        steps=steps,
        seed=seed,
        every=every,
        precision=precision,
        preview=False,  # the atlas shows a batch's pictures once they are compiled
    )
    for frame in run:
        if stopping is not None and stopping():
            run.stop()
        if report is not None and not frame.final:
            report(frame.step, frame.images)
    res = run.result
    finished = res.steps == steps and not res.error
    values = res.history[-1] if len(res.history) else np.full(len(channels), np.nan)
    return res.images, np.asarray(values, np.float32), finished
