"""Ray actors that hold the model: starting Ray, shipping the model to workers, and pools of
workers kept between calls."""

from __future__ import annotations

import os
import time

import numpy as np

from ...errors import CnnvizError
from ..model.loading import LoadedModel, wrap_model
from .atlas_plan import visualize_chunk
from .search import ExampleSearch, drive, rank_examples
from .sources import DataSource
from .store import model_fingerprint
from .top_examples import TopExamples

INSTALL = "pip install 'cnnviz-widgets[ray]'"


def require_ray():
    """The ``ray`` module, or a ``CnnvizError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise CnnvizError(
            f"backend='ray' needs Ray, which is not installed: {INSTALL} (or pip install "
            "'ray>=2.9'), or use backend='local'"
        ) from None
    return ray


def _ray_session(ray) -> None:
    """Use the caller's Ray (``ray.init(address=...)`` done before), else connect to
    ``$RAY_ADDRESS``, else start a local one (:func:`start_local_ray`)."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        start_local_ray()


# jsonschema imports rfc3987_syntax when it is installed (Jupyter installs it, through
# jupyter-events' jsonschema[format-nongpl]); its import builds three Earley parsers and
# costs seconds of CPU, in every Ray process: Ray imports jsonschema at start-up.  A local
# start launches five such processes at once, and Ray's raylet gives its agents a hard-coded
# 15 s (ray issue #65983): on two busy cores the start failed.  Hidden from Ray's processes,
# jsonschema simply goes without its "iri" format check (Ray does not use it).  Figures:
# docs/benchmarks.md, "Starting a local Ray".
_SLOW_IMPORTS = ("rfc3987_syntax",)


def _import_blocker() -> str | None:
    """A folder that makes ``import rfc3987_syntax`` fail fast when it is first on
    ``PYTHONPATH`` (``None`` when the package is not installed: nothing to hide)."""
    import importlib.util
    import tempfile

    slow = [name for name in _SLOW_IMPORTS if importlib.util.find_spec(name) is not None]
    if not slow:
        return None
    user = getattr(os, "getuid", lambda: 0)()
    folder = os.path.join(tempfile.gettempdir(), f"cnnviz_ray_imports_{user}")
    for name in slow:
        init = os.path.join(folder, name, "__init__.py")
        if not os.path.isfile(init):
            os.makedirs(os.path.dirname(init), exist_ok=True)
            tmp = f"{init}.{os.getpid()}"
            with open(tmp, "w") as f:
                f.write(
                    f"raise ImportError({name!r} ' is left out of the Ray processes that "
                    "cnnviz_widgets starts: its import costs seconds (see "
                    "cnnviz_widgets/engine/dataset/ray_pool.py)')\n"
                )
            os.replace(tmp, init)
    return folder


def start_local_ray(num_cpus: int | None = None, **options):
    """Start a Ray cluster on this machine, as ``backend="ray"`` does when no Ray is
    connected (and ``$RAY_ADDRESS`` is not set), and return Ray's context: stop it with
    ``context.disconnect()`` (or ``ray.shutdown()``), or use it in a ``with`` block.

    The same as ``ray.init(num_cpus=..., include_dashboard=False)``, except that

    - Ray's processes (its agents and the workers) do not import ``rfc3987_syntax``: that
      import costs seconds of CPU per process, enough for Ray's agents to miss the
      raylet's fixed 15 s start-up deadline on a busy machine.  Nothing else of the
      environment changes, and this process's ``os.environ`` is restored after the start;
    - the workers keep this process's niceness (Ray's default lowers them to 15, so that
      on a shared machine every other program would go first, which the local backend
      does not do); ``_system_config={"worker_niceness": 15}`` restores Ray's default.

    Args:
        num_cpus: CPUs Ray may use (default: all of the machine's).
        **options: more arguments for ``ray.init``.

    Raises:
        CnnvizError: Ray is not installed, or the cluster did not start (Ray's reason).
    """
    ray = require_ray()
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    kwargs.update(options)
    # Ray renices its workers to 15 by default: on a shared machine every other process then
    # goes first (docs/benchmarks.md, "Starting a local Ray"), while the
    # local backend computes at this process's niceness.  Keep the workers at ours.
    system = dict(kwargs.pop("_system_config", None) or {})
    system.setdefault("worker_niceness", os.nice(0) if hasattr(os, "nice") else 0)
    kwargs["_system_config"] = system
    blocker = _import_blocker()
    before = os.environ.get("PYTHONPATH")
    if blocker is not None:  # the raylet, its agents and its workers inherit it
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (blocker, before) if p)
    try:
        return ray.init(num_cpus=num_cpus, **kwargs)
    except Exception as err:
        if ray.is_initialized():
            ray.shutdown()
        raise CnnvizError(
            f"a local Ray cluster did not start ({type(err).__name__}: {err}). Ray's logs "
            "are in /tmp/ray/session_latest/logs; on a busy machine try again when it is "
            "quieter, or connect to a running cluster with ray.init(address=...), or use "
            "backend='local'"
        ) from err
    finally:
        if blocker is not None:
            if before is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = before


def model_spec(loaded: LoadedModel) -> dict:
    """What an actor needs to rebuild the model: architecture JSON, weights, and the
    engine's description (preprocessing, class names)."""
    model = loaded.model
    try:
        arch = model.to_json()
    except Exception as err:
        raise CnnvizError(
            f"the Ray backend rebuilds the model on each worker from its architecture, but "
            f"{model.name!r} cannot be serialized to JSON ({type(err).__name__}: {err}). "
            "Give its layers get_config() (register custom layers with "
            "keras.saving.register_keras_serializable), or use backend='local'"
        ) from None
    return {
        "json": arch,
        "weights": [np.asarray(w) for w in model.get_weights()],
        "name": loaded.name,
        "preprocessing": loaded.preprocessing.name,
        "class_names": loaded.class_names,
        "source": loaded.source,
        # what the model declares about itself (the recipe, the seed statistics a robust
        # recipe starts from): without it a worker's pictures would start from noise
        "metadata": loaded.metadata,
    }


def loaded_from_spec(spec: dict) -> LoadedModel:
    """Rebuild a :class:`LoadedModel` from :func:`model_spec` (inside a worker)."""
    import keras

    from ..model import embedded  # noqa: F401  (registers the embedded model's custom penalty)

    try:
        model = keras.models.model_from_json(spec["json"])
    except Exception as err:
        raise CnnvizError(
            f"a Ray worker could not rebuild {spec['name']!r} from its architecture "
            f"({type(err).__name__}: {err}); custom layers must be importable on the "
            "workers and registered with keras.saving.register_keras_serializable"
        ) from None
    model.set_weights(spec["weights"])
    loaded = wrap_model(
        model,
        name=spec["name"],
        preprocessing=spec["preprocessing"],
        class_names=spec["class_names"],
        source=f"{spec['source']} (rebuilt on a Ray worker)",
    )
    loaded.metadata = dict(spec.get("metadata") or {})
    return loaded


class Worker:
    """A Ray actor's state: the model, compiled once, serving many work items."""

    def __init__(self, spec: dict):
        self.loaded = loaded_from_spec(spec)

    def ready(self) -> bool:
        return True

    def visualize(self, layer, channels, spatial, preset, steps, seed, precision="float32"):
        images, values, finished = visualize_chunk(
            self.loaded,
            layer,
            channels,
            spatial=spatial,
            preset=preset,
            steps=steps,
            seed=seed,
            precision=precision,
        )
        return channels, images, values, finished

    def rank(self, layer, data, about, start, stop, settings) -> TopExamples:
        """Rank images ``start..stop`` of an indexable source (``data`` as the source holds
        it, ``about`` its kind, size and label names), or shipped batches (``about`` is
        ``None``; ``data`` a list of ``(images, labels)``, numbered from ``start``).

        ``data`` is a top-level argument: Ray resolves object references there only."""
        if about is not None:
            source = DataSource(
                data,
                self.loaded,
                about["kind"],
                about["total"],
                "shard",
                True,
                about["label_names"],
            )
            search = _search(self.loaded, layer, source, settings, start, stop)
            return drive(search)
        search = _search(self.loaded, layer, data, settings, 0, None)
        result = drive(search)
        result.indices = np.where(result.indices >= 0, result.indices + start, -1)
        return result


def _search(loaded, layer, data, settings, start, stop) -> ExampleSearch:
    proto = rank_examples(loaded, layer, data, key="shard", **settings)
    if not start and stop is None:
        return proto
    return ExampleSearch(
        loaded,
        proto.layer,
        proto.kind,
        proto.source,
        k=proto.k,
        score=proto.score,
        units=proto.units,
        batch_size=proto.batch_size,
        keep_maps=proto.keep_maps,
        start=start,
        stop=stop,
        precision=proto.precision,
    )


START_TIMEOUT = 600.0  # seconds for a pool's actors to start (import TensorFlow, build)
CPU_WAIT = 30.0  # seconds to wait for CPUs that killed actors give back (Ray kills lazily)


def _free_cpus(ray) -> float:
    return float(ray.available_resources().get("CPU", 0))


def _wait_for_cpus(ray, n: int) -> None:
    """Wait until ``n`` CPUs are free for the pool's actors (one each), or say why not: an
    actor asking for a CPU that never frees waits for ever, and so would the work."""
    deadline = time.monotonic() + CPU_WAIT
    while _free_cpus(ray) < n:
        if time.monotonic() > deadline:
            total = ray.cluster_resources().get("CPU", 0)
            free = _free_cpus(ray)
            raise CnnvizError(
                f"the Ray cluster has {free:g} of its {total:g} CPUs free and {n} workers need "
                "one each: other Ray work holds them (see ray.available_resources()). Pass "
                f"workers={max(int(free), 1)} or fewer, end that work, or use backend='local'"
            )
        time.sleep(0.25)


class Pool:
    """A pool of Ray actors, each holding the model."""

    def __init__(self, loaded: LoadedModel, workers: int | None, tasks: int):
        ray = require_ray()
        _ray_session(ray)
        self.ray = ray
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = workers if workers is not None else min(8, max(cpus, 1))
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise CnnvizError(f"workers must be a whole number >= 1, got {workers!r}")
        n = max(1, min(int(n), max(tasks, 1)))
        _wait_for_cpus(ray, n)
        spec = ray.put(model_spec(loaded))
        actor = ray.remote(num_cpus=1)(Worker)
        self.actors = [actor.remote(spec) for _ in range(n)]
        self.free = list(self.actors)
        self.pending: dict = {}  # ref -> (actor, item)
        # an actor that cannot be placed would leave the work waiting for ever
        ready, _ = ray.wait(
            [a.ready.remote() for a in self.actors], num_returns=n, timeout=START_TIMEOUT
        )
        if len(ready) < n:
            self.close()
            raise CnnvizError(
                f"only {len(ready)} of {n} Ray workers started within {START_TIMEOUT:.0f} s "
                f"(free now: {_free_cpus(ray):g} CPUs of "
                f"{ray.cluster_resources().get('CPU', 0):g}); pass fewer workers=, or use "
                "backend='local'"
            )

    def submit(self, method: str, item, *args):
        actor = self.free.pop(0)
        ref = getattr(actor, method).remote(*args)
        self.pending[ref] = (actor, item)
        return ref

    def wait(self, timeout: float = 0.25):
        """``[(item, result)]`` of the work finished within ``timeout`` seconds."""
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            actor, item = self.pending.pop(ref)
            self.free.append(actor)
            out.append((item, self.ray.get(ref)))
        return out

    def alive(self) -> bool:
        """The pool's actors still answer (the same Ray session, not shut down)."""
        if not self.actors or not self.ray.is_initialized():
            return False
        try:
            self.ray.get([a.ready.remote() for a in self.actors], timeout=60)
        except Exception:
            return False
        return True

    def close(self) -> None:
        for ref in list(self.pending):
            try:
                self.ray.cancel(ref, force=False)
            except Exception:  # already finished or not cancellable: the kill ends it
                pass
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        self.pending.clear()
        self.actors, self.free = [], []


_KEPT: dict = {}  # (model fingerprint, workers) -> Pool kept between calls


def kept_pool(loaded: LoadedModel, workers, tasks: int, keep: bool) -> Pool:
    """The kept pool of this model and size when there is one (whatever ``keep`` says: it
    is there to be used), else a new pool; other kept pools are shut down first, since
    their idle actors hold the CPUs the new actors need (Ray would make them wait for ever)."""
    key = (model_fingerprint(loaded.model), workers) if (keep or _KEPT) else None
    pool = _KEPT.get(key)
    if pool is not None and pool.alive():
        return pool
    shutdown_workers()
    pool = Pool(loaded, workers, tasks=1 << 30 if keep else tasks)
    if keep:
        _KEPT[key] = pool
    return pool


def release_pool(pool: Pool) -> None:
    """Kill the pool's actors, unless it is kept and idle (work still running on an actor
    cannot be taken back: such a pool is killed too)."""
    kept = any(p is pool for p in _KEPT.values())
    if kept and not pool.pending:
        return
    pool.close()
    for key, other in list(_KEPT.items()):
        if other is pool:
            del _KEPT[key]


def shutdown_workers() -> None:
    """Kill the actors kept by ``keep_workers=True`` calls (their CPUs go back to Ray)."""
    for pool in list(_KEPT.values()):
        pool.close()
    _KEPT.clear()
