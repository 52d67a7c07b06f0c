"""The long-work protocol: progress, stop from another thread, result, errors."""

import threading
import time

import numpy as np
import pytest

import cnnviz_widgets as cw


def counting(n, fail_at=None):
    def work(report, stopping):
        done = 0
        for i in range(n):
            if stopping():
                break
            if i == fail_at:
                raise ValueError(f"boom at {i}")
            done += 1
            report(done, n, item=done * 10)
            time.sleep(0.001)  # a step takes time: a stop can land before the end
        return done

    return work


def test_iterating_a_job_yields_its_progress_then_a_final_item():
    job = cw.Job(counting(5), "count")
    seen = list(job)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5, 5]
    assert [p.item for p in seen[:-1]] == [10, 20, 30, 40, 50]
    assert seen[-1].final and not any(p.final for p in seen[:-1])
    assert seen[2].fraction == pytest.approx(0.6)
    assert job.result == 5 and job.error is None and job.done


def test_stop_from_the_loop_keeps_what_was_done():
    job = cw.Job(counting(1000), "count")
    for p in job:
        if p.done == 3:
            job.stop()
    assert job.stopped and job.done
    assert 3 <= job.result < 1000


def test_stop_from_another_thread_ends_run():
    started = threading.Event()

    def work(report, stopping):
        n = 0
        while not stopping():
            n += 1
            report(n)
            started.set()
        return n

    job = cw.Job(work, "forever")
    threading.Thread(target=lambda: (started.wait(), job.stop())).start()
    assert job.run() >= 1 and job.stopped


def test_an_error_is_kept_and_raised_after_the_final_progress():
    job = cw.Job(counting(5, fail_at=2), "count")
    got = []
    with pytest.raises(ValueError, match="boom at 2"):
        for p in job:
            got.append(p)
    assert got[-1].final and got[-1].done == 2
    assert isinstance(job.error, ValueError) and job.result is None


def test_a_job_runs_once_and_says_so():
    job = cw.Job(counting(2), "count")
    job.run()
    with pytest.raises(cw.CnnvizError, match="already run"):
        job.run()


def test_leaving_the_loop_early_stops_the_work():
    job = cw.Job(counting(10_000), "count")
    for p in job:
        if p.done == 2:
            break
    assert job.stopped


# ------------------------------------------------------------ the engine's long calls
def test_an_optimization_as_a_job_gives_its_frames_and_result(shapes):
    run = cw.optimize(shapes, 2, steps=6, every=2, precision="float32")
    job = run.job()
    everything = list(job)
    # a step not yet compiled first shows its eager first step (a preview at 1)
    preview = [p.item is not None and p.item.preview for p in everything]
    assert [p.done for p, x in zip(everything, preview) if x] in ([], [1])
    seen = [p for p, x in zip(everything, preview) if not x]
    assert [p.done for p in seen] == [2, 4, 4]  # frames at 2 and 4, then the final
    assert all(p.total == 6 for p in seen[:-1]) and seen[1].item.images.shape[0] == 1
    assert job.result is run.result and job.result.steps == 6 and not job.result.stopped


def test_stopping_an_optimization_job_keeps_the_steps_done(shapes):
    job = cw.optimize(shapes, 2, steps=500, every=1, precision="float32").job()
    for p in job:
        if p.done == 3:
            job.stop()
    assert job.result.stopped and 3 <= job.result.steps < 500


def test_a_search_job_equals_the_plain_call(shapes):
    images = cw.generate_shapes(40, seed=3).images
    plain = cw.top_examples(shapes, "conv4", images, k=3, batch_size=16)
    job = cw.top_examples_job(shapes, "conv4", images, k=3, batch_size=16)
    seen = list(job)
    assert [p.done for p in seen] == [16, 32, 40, 40] and seen[0].total == 40
    assert seen[0].item.seen == 16
    np.testing.assert_array_equal(job.result.indices, plain.indices)
    it = cw.rank_examples(shapes, "conv4", images, k=3, batch_size=16).job()
    for p in it:
        if p.done == 16:
            it.stop()
    assert it.result.stopped and 16 <= it.result.seen < 40  # the work may run a batch ahead


def test_an_atlas_job_reports_the_opened_atlas_first(shapes, tmp_path):
    job = cw.atlas_job(shapes, "conv4", channels=[0, 1], store=tmp_path, steps=4, batch=2)
    seen = list(job)
    first = seen[0].item
    assert first.phase == "open" and isinstance(first.atlas, cw.Atlas)
    assert first.atlas is job.result and seen[0].done == 0 and seen[0].total == 2
    assert seen[-1].final and seen[-1].done == 2
    assert job.result.complete and job.result.computed == [0, 1]
    again = cw.atlas_job(shapes, "conv4", channels=[0, 1], store=tmp_path, steps=4, batch=2)
    assert again.run().computed == []  # found in the store


def test_one_place_chooses_the_backend():
    assert cw.get_backend("local").name == "local"
    backend = cw.LocalBackend()
    assert cw.get_backend(backend) is backend
    with pytest.raises(cw.CnnvizError, match="unknown backend 'dask'"):
        cw.get_backend("dask")


def test_a_job_refuses_an_unknown_setting_before_it_runs(shapes, tmp_path):
    with pytest.raises(TypeError, match="colour"):
        cw.atlas_job(shapes, "conv4", store=tmp_path, colour="red")
    with pytest.raises(TypeError, match="colour"):
        cw.top_examples_job(shapes, "conv4", np.zeros((2, 64, 64, 3)), colour="red")
