"""The Ray backend's own logic (the pool, the chunk plan, the data ranges and shipped
batches, the exact merge, writing to the store) on an in-process stand-in for Ray, so it
runs where a Ray cluster cannot start: every argument and result goes through pickle, as
Ray's object store would, and the actors are objects called in order.  The real Ray runs
in tests/test_ray.py."""

import importlib.util
import os
import pickle
import sys
import types

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.dataset import distributed, ray_pool


class Ref:
    def __init__(self, value):
        self.value = value


class FakeRay(types.ModuleType):
    """The part of Ray's API the backend uses; work runs when it is waited for."""

    def __init__(self):
        super().__init__("ray")
        self.started = False
        self.actors_made = 0
        self.killed = 0
        self.calls: list[str] = []

    def is_initialized(self):
        return self.started

    def init(self, **kwargs):
        self.started = True
        self.init_kwargs = kwargs
        self.init_pythonpath = os.environ.get("PYTHONPATH")
        if getattr(self, "fail_init", False):
            self.started = False
            raise RuntimeError("The current node timed out during startup.")
        return self

    def shutdown(self):
        self.started = False

    def cluster_resources(self):
        return {"CPU": 2.0}

    free_cpus = 2.0

    def available_resources(self):
        return {"CPU": self.free_cpus}

    def put(self, value):
        return Ref(pickle.loads(pickle.dumps(value)))

    def get(self, ref, timeout=None):
        if isinstance(ref, list):
            return [self.get(r) for r in ref]
        return pickle.loads(pickle.dumps(ref.value))

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def cancel(self, ref, force=False):
        pass

    def kill(self, actor):
        self.killed += 1

    def remote(self, **options):
        fake = self

        def wrap(cls):
            class Handle:
                def __init__(self, *args):
                    fake.actors_made += 1
                    args = [a.value if isinstance(a, Ref) else a for a in args]
                    self.obj = cls(*pickle.loads(pickle.dumps(args)))

                def __getattr__(self, name):
                    method = getattr(self.obj, name)

                    class Call:
                        @staticmethod
                        def remote(*args):
                            fake.calls.append(name)
                            args = [a.value if isinstance(a, Ref) else a for a in args]
                            out = method(*pickle.loads(pickle.dumps(args)))
                            return Ref(out)

                    return Call

            class Actor:
                @staticmethod
                def remote(*args):
                    return Handle(*args)

            return Actor

        return wrap


@pytest.fixture
def fake_ray(monkeypatch):
    fake = FakeRay()
    monkeypatch.setitem(sys.modules, "ray", fake)
    yield fake
    distributed.shutdown_workers()


def test_the_ray_path_gives_the_local_atlas(shapes, tmp_path, fake_ray):
    data = cw.generate_shapes(50, seed=4)
    kw = dict(channels=range(6), steps=4, batch=4, seed=2, examples_batch=16)
    local = cw.atlas(shapes, "conv4", data, store=tmp_path / "local", **kw)
    remote = cw.atlas(shapes, "conv4", data, store=tmp_path / "ray", backend="ray", workers=2, **kw)
    assert fake_ray.actors_made == 2 and fake_ray.killed == 2  # started and ended by the call
    assert fake_ray.calls.count("visualize") == 2  # chunks 0..3 and 4..7
    assert fake_ray.calls.count("rank") >= 2  # the data in ranges
    assert sorted(remote.computed) == list(range(6)) and remote.complete
    for c in range(6):
        a, b = local.unit(c), remote.unit(c)
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.example_indices, b.example_indices)
        np.testing.assert_array_equal(a.examples, b.examples)
        np.testing.assert_allclose(a.example_maps, b.example_maps, rtol=1e-5, atol=1e-6)


def test_the_ray_path_gives_the_local_examples_and_keeps_workers(shapes, fake_ray):
    data = cw.generate_shapes(70, seed=6)
    local = cw.top_examples(shapes, "conv3", data, k=4, batch_size=16)
    seen = []
    remote = cw.top_examples(
        shapes,
        "conv3",
        data,
        k=4,
        batch_size=16,
        backend="ray",
        workers=2,
        keep_workers=True,
        progress=seen.append,
    )
    np.testing.assert_array_equal(remote.indices, local.indices)
    np.testing.assert_array_equal(remote.labels, local.labels)
    np.testing.assert_array_equal(remote.scores, local.scores)  # the same batches
    for c in (0, 63):
        np.testing.assert_array_equal(remote.images(c), local.images(c))
    assert remote.seen == 70 and seen[-1].seen == 70
    assert fake_ray.killed == 0  # kept for the next call

    # a generator: read here, its batches shipped; the kept actors serve it
    def gen():
        for i in range(0, 70, 25):
            yield data.images[i : i + 25], data.labels[i : i + 25]

    made = fake_ray.actors_made
    streamed = cw.top_examples(
        shapes, "conv3", gen(), k=4, batch_size=16, backend="ray", workers=2, keep_workers=True
    )
    assert fake_ray.actors_made == made  # no new actors
    np.testing.assert_array_equal(streamed.indices, local.indices)
    np.testing.assert_array_equal(streamed.labels, local.labels)
    distributed.shutdown_workers()
    assert fake_ray.killed == 2


def test_a_worker_rebuilds_the_same_model_from_json_and_weights(shapes):
    spec = pickle.loads(pickle.dumps(distributed.model_spec(shapes)))
    rebuilt = distributed.loaded_from_spec(spec)
    assert rebuilt.model is not shapes.model
    assert (rebuilt.preprocessing, rebuilt.class_names) == (
        shapes.preprocessing,
        shapes.class_names,
    )
    x = cw.generate_shapes(4, seed=1).images
    np.testing.assert_array_equal(
        rebuilt.model.predict(x, verbose=0), shapes.model.predict(x, verbose=0)
    )


def test_a_local_start_hides_the_slow_import_from_rays_processes_only(fake_ray, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/users/own/path")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    cw.top_examples(cw.load_model("shapes"), "conv4", cw.generate_shapes(8), backend="ray")
    assert fake_ray.init_kwargs["include_dashboard"] is False
    # the workers compute at our niceness, not Ray's default 15
    assert fake_ray.init_kwargs["_system_config"] == {"worker_niceness": os.nice(0)}
    seen = fake_ray.init_pythonpath.split(os.pathsep)
    assert seen[-1] == "/users/own/path"  # the user's path kept, after the blocker
    assert os.environ["PYTHONPATH"] == "/users/own/path"  # restored in this process
    if importlib.util.find_spec("rfc3987_syntax") is None:
        assert seen == ["/users/own/path"]  # nothing to hide
        return
    assert len(seen) == 2
    blocked = os.path.join(seen[0], "rfc3987_syntax", "__init__.py")
    with pytest.raises(ImportError, match="left out of the Ray processes"):
        exec(compile(open(blocked).read(), blocked, "exec"), {})


def test_a_local_cluster_that_does_not_start_says_why_and_what_to_do(fake_ray, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    fake_ray.fail_init = True
    with pytest.raises(cw.CnnvizError, match=r"did not start \(RuntimeError: The current node"):
        distributed.start_local_ray(num_cpus=2)
    assert "PYTHONPATH" not in os.environ and not fake_ray.started
    assert fake_ray.init_kwargs.get("address") is None


def test_kept_workers_serve_later_calls_and_make_way_for_another_pool(shapes, fake_ray):
    """Kept actors hold the cluster's CPUs: a later call on the same model uses them, and
    a call that needs another pool shuts them down first (else its actors would wait for
    those CPUs for ever; the real cluster's version is in test_ray.py)."""
    data = cw.generate_shapes(20, seed=3)
    kw = dict(k=2, batch_size=8, backend="ray")
    cw.top_examples(shapes, "conv4", data, workers=2, keep_workers=True, **kw)
    assert (fake_ray.actors_made, fake_ray.killed) == (2, 0)
    cw.top_examples(shapes, "conv4", data, workers=2, **kw)  # not kept itself: reuses them
    assert (fake_ray.actors_made, fake_ray.killed) == (2, 0)
    cw.top_examples(shapes, "conv4", data, workers=1, **kw)  # another size: a new pool
    assert (fake_ray.actors_made, fake_ray.killed) == (3, 3)  # the kept two, then its own
    assert not ray_pool._KEPT


def test_a_cluster_without_free_cpus_says_so_instead_of_waiting_for_ever(
    shapes, fake_ray, monkeypatch
):
    monkeypatch.setattr(ray_pool, "CPU_WAIT", 0.3)
    fake_ray.started, fake_ray.free_cpus = True, 1.0  # another job holds one of the two
    with pytest.raises(cw.CnnvizError, match=r"1 of its 2 CPUs free and 2 workers") as err:
        cw.top_examples(
            shapes, "conv4", cw.generate_shapes(64), batch_size=8, backend="ray", workers=2
        )
    assert "workers=1 or fewer" in str(err.value) and fake_ray.actors_made == 0
