"""The long-work protocol: progress, stop from another thread, result, errors."""

import threading
import time

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
