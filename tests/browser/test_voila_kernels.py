"""`make app` in a classroom: a page's kernel ends when the page closes, and kernels whose
page went away without a word are culled, so that thirty students reloading do not pile up
kernels of hundreds of MB each.

The server is the one `make app` starts (scripts/serve_app.py, Voila with its page handler
setting the `_xsrf` cookie its shutdown beacon needs) on a small notebook with a widget (the
mechanism does not depend on what the notebook computes; bench/bench_classroom.py measures
the real app). The kernels are counted as the server's child processes running ipykernel
(Voila serves no kernel list).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from .pages import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    free_port,
    notebook,
    server_env,
    stop,
    wait_for_port,
)

SERVE = REPO / "scripts" / "serve_app.py"
PAGES = 4


def kernels(proc: subprocess.Popen) -> int:
    """How many kernels the server runs (its ipykernel child processes)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    count = 0
    for child in children:
        try:
            count += "ipykernel" in " ".join(child.cmdline())
        except psutil.Error:  # ended meanwhile
            pass
    return count


def wait_for_kernels(proc, expected: int, timeout: float = 60) -> int:
    """Wait until the server runs ``expected`` kernels; returns the last count seen."""
    deadline = time.monotonic() + timeout
    while (count := kernels(proc)) != expected and time.monotonic() < deadline:
        time.sleep(0.25)
    return count


def start(tmp_path_factory, *options: str):
    """``(url, proc, log)`` of the classroom server with ``options``."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    pytest.importorskip("playwright", reason="browser tests need `pip install playwright`")
    pytest.importorskip("voila", reason="`make app` needs voila")
    pytest.importorskip("psutil", reason="the kernels are counted with psutil")
    root = tmp_path_factory.mktemp("voila")
    notebook(root, "page.ipynb", ["import ipywidgets\nipywidgets.Button(description='ready')"])
    port = free_port()
    cmd = [sys.executable, str(SERVE), str(root / "page.ipynb"), "--no-browser"]
    cmd += ["--Voila.ip=127.0.0.1", f"--port={port}"]
    cmd += list(options)
    log = root / ".home" / "voila.log"
    env = server_env(root)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, proc, log)
    except BaseException:
        stop(proc)
        raise
    return f"http://127.0.0.1:{port}", proc, log


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server as `make app` starts it (culling after 10 minutes without a page)."""
    url, proc, log = start(tmp_path_factory)
    try:
        yield url, proc, log
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def culling_server(tmp_path_factory):
    """The server culling kernels after 4 s without a page, looking every second."""
    options = (
        "--MappingKernelManager.cull_idle_timeout=4",
        "--MappingKernelManager.cull_interval=1",
    )
    url, proc, log = start(tmp_path_factory, *options)
    try:
        yield url, proc, log
    finally:
        stop(proc)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # one context for all pages, as tabs of one browser (a page made by
        # browser.new_page() has a context of its own, which closing the page ends before its
        # shutdown beacon is sent)
        context = browser.new_context()
        try:
            yield context
        finally:
            context.close()
            browser.close()


def open_pages(browser, url: str, n: int) -> list:
    pages = []
    for _ in range(n):
        page = browser.new_page()
        page.goto(url, timeout=120_000)
        page.get_by_text("ready").wait_for(timeout=120_000)  # its kernel runs the widget
        pages.append(page)
    return pages


def test_closing_pages_ends_their_kernels(server, browser):
    url, proc, log = server
    assert wait_for_kernels(proc, 0) == 0
    pages = open_pages(browser, url, PAGES)
    assert kernels(proc) == PAGES
    pages[0].reload()  # a reload: the old page's kernel ends, the new page gets one
    pages[0].get_by_text("ready").wait_for(timeout=120_000)
    assert wait_for_kernels(proc, PAGES) == PAGES
    for page in pages:
        page.close(run_before_unload=True)  # as a browser closes a tab
    # (this server culls after 10 minutes: the pages' beacons ended them), no error logged
    assert wait_for_kernels(proc, 0, timeout=60) == 0
    text = log.read_text()
    assert "_xsrf" not in text and " 403 " not in text, text[-2000:]


def test_kernels_of_pages_gone_silently_are_culled_and_open_pages_kept(culling_server, browser):
    url, proc, _ = culling_server
    assert wait_for_kernels(proc, 0) == 0
    kept, gone = open_pages(browser, url, 2)
    gone.close()  # no beforeunload: a crash, a closed lid, a dropped network
    assert kernels(proc) == 2  # no beacon: the kernel stays, for now
    assert wait_for_kernels(proc, 1, timeout=60) == 1  # culled after 4 s without a page
    time.sleep(6)  # longer than the idle timeout: the open page keeps its kernel
    assert kernels(proc) == 1
    kept.get_by_text("ready").click()  # and the page still talks to it
    kept.close(run_before_unload=True)
    assert wait_for_kernels(proc, 0) == 0
