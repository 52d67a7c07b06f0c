"""The Ray backend on a local Ray cluster started here (2 CPUs) and shut down afterwards:
the same seeds give the same images and the same dataset examples as the local backend,
and no actor is left holding the cluster's CPUs."""

import time

import numpy as np
import pytest

import cnnviz_widgets as cw
from cnnviz_widgets.engine.dataset.distributed import start_local_ray

ray = pytest.importorskip("ray", reason="the Ray backend's test needs pip install '.[ray]'")

pytestmark = pytest.mark.slow  # a Ray cluster and its workers start in tens of seconds

SETTINGS = dict(steps=6, batch=4, seed=7)


@pytest.fixture(scope="module")
def cluster():
    """A local cluster started the way ``backend="ray"`` starts one, stopped by its handle.
    A cluster that does not start fails the test (Ray is installed: ``make test`` installs
    the ``ray`` extra), with Ray's reason."""
    context = start_local_ray(num_cpus=2)
    try:
        yield context
    finally:
        context.disconnect()
    assert not ray.is_initialized()


def all_cpus_free(timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources().get("CPU", -1):
            return True
        time.sleep(0.5)
    return False


def test_ray_atlas_gives_the_local_images_and_examples(cluster, shapes, tmp_path):
    data = cw.generate_shapes(70, seed=8)
    # float32 asked for: images equal bit for bit across processes (a worker's bfloat16
    # sums in another thread order; "auto" may choose bfloat16 on a CPU with it)
    kwargs = dict(channels=range(8), examples_batch=16, precision="float32", **SETTINGS)
    local = cw.atlas(shapes, "conv3", data, store=tmp_path / "local", **kwargs)
    reports = []
    remote = cw.atlas(
        shapes,
        "conv3",
        data,
        store=tmp_path / "ray",
        backend="ray",
        workers=2,
        progress=reports.append,
        **kwargs,
    )
    assert sorted(remote.computed) == list(range(8)) and remote.complete
    for c in range(8):
        a, b = local.unit(c), remote.unit(c)
        np.testing.assert_array_equal(a.image, b.image, err_msg=f"channel {c}")
        np.testing.assert_array_equal(a.example_indices, b.example_indices)
        np.testing.assert_array_equal(a.examples, b.examples)
        np.testing.assert_allclose(a.example_scores, b.example_scores, rtol=1e-6)
    for at in (local, remote):  # the precision decided here, for both backends alike
        assert at.vis_store.load(0)["meta"]["precision"] == "float32"
    phases = [p.phase for p in reports]
    assert "visualization" in phases and "examples" in phases and reports[-1].final
    assert all_cpus_free(), "the atlas left Ray actors holding CPUs"
    # the Ray run wrote the same kind of store: a local run on it has nothing left to do
    again = cw.atlas(shapes, "conv3", data, store=tmp_path / "ray", **kwargs)
    assert again.computed == [] and again.reused == list(range(8))


def test_ray_top_examples_equal_the_local_ones(cluster, shapes):
    data = cw.generate_shapes(90, seed=9)
    local = cw.top_examples(shapes, "conv4", data, k=5, batch_size=16)
    seen = []
    remote = cw.top_examples(
        shapes, "conv4", data, k=5, batch_size=16, backend="ray", workers=2, progress=seen.append
    )
    np.testing.assert_array_equal(remote.indices, local.indices)
    np.testing.assert_array_equal(remote.labels, local.labels)
    np.testing.assert_allclose(remote.scores, local.scores, rtol=1e-6)
    np.testing.assert_allclose(remote.maps, local.maps, rtol=1e-5, atol=1e-6)
    for c in (0, 40):
        np.testing.assert_array_equal(remote.images(c), local.images(c))
    assert remote.seen == 90 and seen[-1].seen == 90

    # a generator cannot be split: its batches are read here and shipped to the actors
    def gen():
        for i in range(0, 90, 30):
            yield data.images[i : i + 30], data.labels[i : i + 30]

    streamed = cw.top_examples(shapes, "conv4", gen(), k=5, batch_size=16, backend="ray", workers=2)
    np.testing.assert_array_equal(streamed.indices, local.indices)
    np.testing.assert_array_equal(streamed.labels, local.labels)
    assert remote.precision == local.precision  # "auto" decided once, here, for the workers
    # a precision asked for reaches the workers: bfloat16 there ranks as bfloat16 here
    half = cw.top_examples(shapes, "conv4", data, k=5, batch_size=16, precision="bfloat16")
    far = cw.top_examples(
        shapes, "conv4", data, k=5, batch_size=16, backend="ray", workers=2, precision="bfloat16"
    )
    assert far.precision == half.precision == "bfloat16" and "asked for" in far.precision_reason
    np.testing.assert_array_equal(far.indices, half.indices)
    np.testing.assert_allclose(far.scores, half.scores, rtol=1e-6)
    assert all_cpus_free()


def test_kept_workers_do_not_block_the_next_pool(cluster, shapes):
    """Kept actors hold both CPUs of this cluster: a call needing another pool shuts them
    down first (before, its actors waited for those CPUs for ever: the bench hung)."""
    from cnnviz_widgets.engine.dataset.distributed import shutdown_workers

    data = cw.generate_shapes(48, seed=5)
    kw = dict(k=3, batch_size=8, backend="ray")
    kept = cw.top_examples(shapes, "conv4", data, workers=2, keep_workers=True, **kw)
    assert ray.available_resources().get("CPU", 0) == 0  # the kept actors hold them
    other = cw.top_examples(shapes, "conv4", data, workers=1, **kw)  # another pool
    np.testing.assert_array_equal(other.indices, kept.indices)
    shutdown_workers()
    assert all_cpus_free()
