"""Which recipe (preset) a model's pictures are drawn with: ``preset="auto"``.

A robust (adversarially trained) model draws its classes with plain pixel steps from a
class-conditional seed; an ordinary one needs Lucid's Fourier image and transforms.  So
the recipe follows the model:

1. a recipe registered for this model object (:func:`register_recipe`),
2. a recipe registered for its name (``LoadedModel.name``, e.g. ``"vgg16"``),
3. the recipe the model declares in its metadata (the embedded robust model does),
4. else ``"lucid"``, today's general-purpose recipe.

:func:`choose` returns the preset and a sentence saying why; runs keep both
(``Result.recipe`` and ``Result.recipe_reason``).
"""

from __future__ import annotations

import threading
import weakref

import keras

from ...errors import CnnvizError
from ..model.loading import LoadedModel
from .presets import PRESETS, Preset, get_preset
from .seeds import SeedStatistics

AUTO = "auto"
FALLBACK = "lucid"

_LOCK = threading.Lock()
_BY_MODEL: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # keras.Model -> entry
_BY_NAME: dict[str, tuple[Preset, str, SeedStatistics | None]] = {}
_PARSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # keras.Model -> seeds


def register_recipe(
    model_or_name,
    preset: str | Preset,
    *,
    reason: str | None = None,
    seeds: SeedStatistics | None = None,
) -> None:
    """Say which recipe ``preset="auto"`` uses for a model.

    Args:
        model_or_name: a ``keras.Model`` or ``LoadedModel`` (this object only), or a model
            name as ``load_model`` reports it (``LoadedModel.name``: ``"vgg16"``, your
            model's ``name``...).
        preset: a preset name (``"robust"``, ``"lucid"``, ...) or a ``Preset``.
        reason: why, for people (shown by the optimizer panel and in
            ``Result.recipe_reason``).
        seeds: class-conditional seed statistics (``optvis.seed_statistics`` on your
            training images) for a recipe that starts from a seed (``"robust"``);
            without them such a recipe starts from mid-gray noise and says so.

    Example::

        cw.register_recipe(my_model, "robust", reason="trained with PGD, eps 3")
    """
    if isinstance(preset, str) and preset == AUTO:
        raise CnnvizError("register_recipe: give a real recipe, not 'auto'")
    p = get_preset(preset)
    if seeds is not None and not isinstance(seeds, SeedStatistics):
        raise CnnvizError(
            f"register_recipe: seeds must be a SeedStatistics (from optvis.seed_statistics), "
            f"got {type(seeds).__name__}"
        )
    entry = (p, reason or f"registered for this model with cw.register_recipe: {p.name!r}", seeds)
    with _LOCK:
        if isinstance(model_or_name, str):
            _BY_NAME[model_or_name] = entry
        elif isinstance(model_or_name, (LoadedModel, keras.Model)):
            model = model_or_name.model if isinstance(model_or_name, LoadedModel) else model_or_name
            _BY_MODEL[model] = entry
        else:
            raise CnnvizError(
                "register_recipe: give a keras.Model, a LoadedModel or a model name, got "
                f"{type(model_or_name).__name__}"
            )


def unregister_recipe(model_or_name) -> None:
    """Forget a recipe registered with :func:`register_recipe` (nothing if none)."""
    with _LOCK:
        if isinstance(model_or_name, str):
            _BY_NAME.pop(model_or_name, None)
        else:
            model = model_or_name.model if isinstance(model_or_name, LoadedModel) else model_or_name
            _BY_MODEL.pop(model, None)


def _declared(loaded: LoadedModel) -> tuple[Preset, str] | None:
    recipe = (loaded.metadata or {}).get("recipe")
    if not recipe:
        return None
    name = recipe.get("preset")
    if name not in PRESETS:
        return None  # a newer file's recipe this version does not know: fall back
    return PRESETS[name], f"the model declares it in its metadata: {recipe.get('reason', '')}"


def seeds_of(loaded: LoadedModel) -> SeedStatistics | None:
    """The class-conditional seed statistics for ``loaded``: registered ones, else the
    ones in its metadata (parsed once per model), else ``None``."""
    with _LOCK:
        entry = _BY_MODEL.get(loaded.model) or _BY_NAME.get(loaded.name)
        if entry is not None and entry[2] is not None:
            return entry[2]
        if loaded.model in _PARSED:
            return _PARSED[loaded.model]
    data = (loaded.metadata or {}).get("seeds")
    stats = SeedStatistics.from_json(data) if data else None
    with _LOCK:
        _PARSED[loaded.model] = stats
    return stats


def choose(spec: str | Preset, loaded: LoadedModel) -> tuple[Preset, str]:
    """The preset a run uses and why: ``spec`` itself, or for ``"auto"`` the model's
    recipe (see the module's docstring for the order)."""
    if not (isinstance(spec, str) and spec == AUTO):
        p = get_preset(spec)
        return p, f"asked for: preset={p.name!r}"
    with _LOCK:
        entry = _BY_MODEL.get(loaded.model)
        if entry is None:
            entry = _BY_NAME.get(loaded.name)
    if entry is not None:
        return entry[0], entry[1]
    declared = _declared(loaded)
    if declared is not None:
        return declared
    return PRESETS[FALLBACK], (
        f"the model declares no recipe (none in its metadata, none registered with "
        f"cw.register_recipe), so the general one: {FALLBACK!r}"
    )
