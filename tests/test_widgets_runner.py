"""The runner runs any engine Job the same way: the bar follows its progress, the items go
to the painter, Stop reaches job.stop(), and its result or error reaches finish."""

import threading

import cnnviz_widgets as cw
from cnnviz_widgets.widgets.common import MessageArea
from cnnviz_widgets.widgets.runner import RunBar, Runner


def make_runner():
    bar = RunBar()
    runner = Runner("test-runner", MessageArea(), bar, threading.RLock())
    runner.redraw_interval = 0  # every item is drawn
    return runner, bar


def counting(n, gate=None):
    def work(report, stopping):
        done = 0
        for _ in range(n):
            if stopping():
                break
            done += 1
            report(done, n, item=f"picture {done}")
            if gate is not None:
                gate.wait(10)
        return done

    return work


def test_a_job_fills_the_bar_paints_its_items_and_finishes():
    runner, bar = make_runner()
    bar.start(1, "starting")
    taken, painted, ended = [], [], []
    drawn = threading.Semaphore(0)

    def work(report, stopping):
        for done in range(1, 5):
            report(done, 4, item=f"picture {done}")
            assert drawn.acquire(timeout=10)  # the painter drew it: the next step
        return 4

    def paint(p, rate, text):
        painted.append(p.item)
        drawn.release()

    runner.run_job(
        cw.Job(work, "count"),
        take=lambda p: taken.append(p.done),
        paint=paint,
        finish=lambda result, error: ended.append((result, error)),
        unit=("picture", "pictures"),
    )
    assert runner.wait(30)
    assert taken == [1, 2, 3, 4, 4]  # every progress, the final one included
    assert painted == [f"picture {i}" for i in range(1, 5)]
    assert ended == [(4, None)]
    assert bar.progress.max == 4 and "picture" in bar.status.value


def test_stop_reaches_the_job_and_finish_gets_what_was_done():
    runner, _ = make_runner()
    gate = threading.Event()
    first = threading.Event()
    ended = []
    job = cw.Job(counting(1000, gate), "count")
    runner.run_job(
        job,
        take=lambda p: first.set(),
        finish=lambda result, error: ended.append((result, error)),
    )
    assert first.wait(30)
    runner.stop()
    gate.set()
    assert runner.wait(30)
    assert job.stopped and ended and ended[0][1] is None and 1 <= ended[0][0] < 1000


def test_an_error_of_the_job_reaches_finish():
    def failing(report, stopping):
        report(1, 2)
        raise ValueError("broken step")

    runner, _ = make_runner()
    ended = []
    runner.run_job(cw.Job(failing, "fail"), finish=lambda r, e: ended.append((r, e)))
    assert runner.wait(30)
    ((result, error),) = ended
    assert result is None and isinstance(error, ValueError) and "broken step" in str(error)
