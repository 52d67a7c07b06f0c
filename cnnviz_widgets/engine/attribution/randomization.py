"""The cascading model-parameter randomization test (Adebayo et al. 2018): does a map
depend on what the model learned?

On a *copy* of the model (``clone_model`` and ``set_weights``: the user's model is never
touched), the layers with weights are re-initialized one after the other from the top
(the output) down, cumulatively; after each step every chosen method explains the same
image and class again, and the Spearman rank correlation of its map with the original
one is recorded.  A map that stays the same while the model's knowledge is destroyed
cannot be explaining that knowledge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import keras
import numpy as np

from ...errors import CnnvizError
from ..jobs import Job
from ..model.internals import class_count, iter_layers
from ..model.loading import LoadedModel
from ..model.outputs import select_output
from ..model.scoring import prepare_image, target_class
from .methods import predict_fns
from .metrics import saliency_map
from .registry import Stopped, explain, method_info

__all__ = ["DEFAULT_METHODS", "Randomization", "randomization_job", "randomization_test"]

DEFAULT_METHODS = ("saliency", "integrated_gradients", "guided_backprop", "grad_cam")


@dataclass
class Randomization:
    """What the cascading randomization did to each method's map.

    Attributes:
        steps: ``"original"``, then the layer re-initialized at each step (top down; each
            step keeps the ones before randomized).
        methods: the method names.
        correlations: method -> ``(len(steps),)`` Spearman rank correlation of the map at
            each step with the original map (1 at ``"original"``).
        maps: method -> the ``(H, W)`` heatmap at each step.
        class_index: the class explained; ``image``: the image.
    """

    steps: list[str]
    methods: list[str]
    correlations: dict[str, np.ndarray] = field(default_factory=dict)
    maps: dict[str, list[np.ndarray]] = field(default_factory=dict)
    class_index: int = 0
    image: np.ndarray | None = None

    def final(self, method: str) -> float:
        """The correlation once every layer is randomized."""
        return float(self.correlations[method][-1])

    def table(self) -> str:
        """One line per method: its correlation after the top layer and after all."""
        width = max(len(m) for m in self.methods)
        lines = [f"{'method':<{width}}  top layer  all layers"]
        for m in self.methods:
            c = self.correlations[m]
            top = c[1] if len(c) > 1 else float("nan")
            lines.append(f"{m:<{width}}  {top:9.2f}  {c[-1]:10.2f}")
        return "\n".join(lines)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (ties get their average rank); 0 when
    either map is constant."""
    ra, rb = _rank(a.ravel()), _rank(b.ravel())
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _rank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], x.size]
    avg = (starts + ends - 1) / 2.0
    ranks = np.empty(x.size, np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _shared_layers(model: keras.Model) -> list[str]:
    """Layers called more than once in ``model``'s graph (nested models too), read from
    the model's config."""
    found = []
    config = model.get_config()
    for entry in config.get("layers", []) if isinstance(config, dict) else []:
        if len(entry.get("inbound_nodes", []) or []) > 1:
            found.append(entry.get("config", {}).get("name", "?"))
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += [f"{layer.name}/{n}" for n in _shared_layers(layer)]
    return found


def model_copy(loaded: LoadedModel) -> LoadedModel:
    """``loaded`` around a copy of its model with the same weights (nested models copied
    too); nothing is shared with the original."""
    shared = _shared_layers(loaded.model)
    if shared:
        raise CnnvizError(
            f"the randomization test re-initializes one layer at a time, but {len(shared)} "
            f"layer(s) of {loaded.model.name!r} are used more than once ({', '.join(shared[:4])})"
            ": randomizing one would change several places of the model at once; test a model "
            "without shared layers"
        )
    try:
        copy = keras.models.clone_model(loaded.model, recursive=True)
    except Exception as err:
        raise CnnvizError(
            f"cannot copy {loaded.model.name!r} for the randomization test ({type(err).__name__}"
            f": {str(err)[:200]}): only Functional and Sequential models can be copied"
        ) from None
    copy.set_weights(loaded.model.get_weights())
    return replace(loaded, model=copy)


def weighted_layers(model: keras.Model) -> list[str]:
    """Paths of the layers with weights, from the output down (the cascade's order)."""
    paths = [
        path
        for _, path, _, layer, _ in iter_layers(model)
        if layer.weights and not isinstance(layer, keras.Model)
    ]
    return paths[::-1]


def _reinitialize(layer, seed: int) -> None:
    """New values for every weight of ``layer``, drawn from its own initializers (seeded);
    a weight without one gets a normal draw with the weight's own spread."""
    rng = np.random.default_rng(seed)
    for k, v in enumerate(layer.weights):
        init = getattr(layer, f"{v.name}_initializer", None)
        shape = tuple(v.shape)
        if isinstance(init, keras.initializers.Initializer):
            config = init.get_config()
            if "seed" in config:
                init = type(init).from_config({**config, "seed": seed * 1000 + k})
            value = np.asarray(init(shape, dtype="float32"))
        else:
            spread = float(np.std(np.asarray(v))) or 0.05
            value = rng.normal(0.0, spread, shape)
        v.assign(value.astype(v.dtype))


def randomization_test(
    model,
    image,
    methods: Sequence[str] = DEFAULT_METHODS,
    target=None,
    *,
    layers: Sequence[str] | None = None,
    params: dict[str, dict] | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    output=None,
) -> Randomization:
    """The cascading model-parameter randomization test on a copy of ``model``.

    Args:
        model: a ``LoadedModel``, a built ``keras.Model`` or anything ``load_model`` takes;
            it is copied, never changed.
        image: the image (as for :func:`~cnnviz_widgets.explain`).
        methods: the methods to test (names from :func:`~cnnviz_widgets.method_names`).
        target: the class (``None``: the predicted one, fixed for every step).
        layers: the layers to re-initialize, in order (default: every layer with
            weights, from the output down).
        params: method -> its parameters (e.g. ``{"rise": {"masks": 500}}``); the maps
            are computed in float32 unless a method's parameters say ``precision``.
        seed: the re-initialization seed.
        progress: ``progress(done, total)`` after each map; an exception it raises ends
            the test.
        output: for a model with several outputs, the one to explain (name or index:
            see :func:`~cnnviz_widgets.select_output`); optional with one output.

    Returns:
        a :class:`Randomization`.

    Raises:
        CnnvizError: a model with shared layers, an unknown method or layer.
    """
    loaded = select_output(
        model, output, call="cw.randomization_test(model, image, output={output})"
    )
    for name in methods:
        method_info(name)
    params = dict(params or {})
    img, _ = prepare_image(loaded, image)
    c = target_class(loaded, target, class_count(loaded.model))
    if c < 0:
        c = int(np.argmax(predict_fns(loaded).predict(img[None])[0].numpy()))
    copy = model_copy(loaded)
    order = list(layers) if layers is not None else weighted_layers(copy.model)
    known = set(weighted_layers(copy.model))
    bad = [p for p in order if p not in known]
    if bad:
        raise CnnvizError(
            f"cannot randomize {', '.join(map(repr, bad))}: the layers with weights are "
            f"{', '.join(sorted(known))}"
        )
    from ..model.internals import layer_at

    result = Randomization(["original", *order], list(methods), class_index=c, image=img)
    total = len(result.steps) * len(methods)
    done = 0
    first: dict[str, np.ndarray] = {}
    for step, path in enumerate(result.steps):
        if step:
            _reinitialize(layer_at(copy.model, path), seed + step)
        for name in methods:
            # float32 unless asked: "auto" would time each copy's passes again
            r = explain(copy, img, name, c, **{"precision": "float32", **params.get(name, {})})
            ranked = saliency_map(r)
            first.setdefault(name, ranked)
            result.maps.setdefault(name, []).append(r.heatmap)
            rho = 1.0 if step == 0 else spearman(first[name], ranked)
            result.correlations.setdefault(name, []).append(rho)
            done += 1
            if progress is not None:
                progress(done, total)
    result.correlations = {k: np.asarray(v, np.float32) for k, v in result.correlations.items()}
    return result


def randomization_job(model, image, methods: Sequence[str] = DEFAULT_METHODS, target=None, **kw):
    """:func:`randomization_test` as a :class:`~cnnviz_widgets.engine.jobs.Job`; stopped,
    its ``result`` is ``None``."""

    def work(report, stopping):
        def progress(done, total):
            report(done, total)
            if stopping():
                raise Stopped()

        try:
            return randomization_test(model, image, methods, target, progress=progress, **kw)
        except Stopped:
            return None

    return Job(work, "randomization test")
