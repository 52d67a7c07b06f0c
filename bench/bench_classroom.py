"""A classroom on one server: `make app` (scripts/serve_app.py) with N pages opened at once.

    .venv/bin/python bench/bench_classroom.py [--pages 8]

Measures, in one run: the time from opening a page to its first panel (the explorer's
layer list) for one page alone, then for N pages opened at the same moment (each page is a
student; the times are printed with their ratio to the lone page), the memory of each
kernel once its page is drawn (RSS, and USS: the memory only that kernel holds), the
machine's MemAvailable before and with the N kernels, and that closing the pages ends the
kernels. Prints figures; asserts nothing (see docs/teaching.md for what they mean).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.pages import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    server_env,
    stop,
    wait_for_port,
)
from tests.browser.test_voila_kernels import wait_for_kernels  # noqa: E402

PANEL = ".cnnviz-layer-list select"  # the explorer's first panel


def kernel_processes(proc: subprocess.Popen) -> list[psutil.Process]:
    out = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.Error:
            pass
    return out


def available_mb() -> float:
    return psutil.virtual_memory().available / 2**20


def open_at_once(context, url: str, n: int) -> tuple[list, list[float]]:
    """Open ``n`` pages together; the seconds from the start to each one's first panel."""
    start = time.perf_counter()
    pages = []
    for _ in range(n):
        page = context.new_page()
        page.goto(url, wait_until="commit", timeout=600_000)  # the request is sent
        pages.append(page)
    ready: dict[int, float] = {}
    while len(ready) < n:
        for i, page in enumerate(pages):
            if i not in ready and page.locator(PANEL).count():
                ready[i] = time.perf_counter() - start
        if time.perf_counter() - start > 900:
            raise RuntimeError(f"only {len(ready)} of {n} pages drew a panel in 15 minutes")
        time.sleep(0.2)
    return pages, [ready[i] for i in range(n)]


def memory(proc: subprocess.Popen) -> list[tuple[float, float]]:
    """(RSS, USS) in MB of each kernel."""
    out = []
    for k in kernel_processes(proc):
        info = k.memory_full_info()
        out.append((info.rss / 2**20, info.uss / 2**20))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8)
    n = parser.parse_args().pages
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="classroom-"))
    shutil.copy(REPO / "notebooks" / "app.ipynb", root / "app.ipynb")
    env = server_env(root)
    env["PYTHONPATH"] = str(REPO)  # the kernels import this copy of the package
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, str(REPO / "scripts" / "serve_app.py"), str(root / "app.ipynb")]
    cmd += ["--no-browser", "--Voila.ip=127.0.0.1", f"--port={port}"]
    log = root / ".home" / "voila.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, proc, log)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1360, "height": 1000})
            free_before = available_mb()
            pages, (alone,) = open_at_once(context, url, 1)
            (one,) = memory(proc)
            pages[0].close(run_before_unload=True)
            wait_for_kernels(proc, 0, timeout=120)
            time.sleep(2)
            free_before = max(free_before, available_mb())
            pages, times = open_at_once(context, url, n)
            time.sleep(3)  # the panels settle
            mems = memory(proc)
            free_with = available_mb()
            for page in pages:
                page.close(run_before_unload=True)
            left = wait_for_kernels(proc, 0, timeout=180)
            context.close()
            browser.close()
    finally:
        stop(proc)
        shutil.rmtree(root, ignore_errors=True)

    cores = os.cpu_count()
    print(f"machine: {cores} cores, {psutil.virtual_memory().total / 2**30:.1f} GB")
    print(f"load average at the end: {os.getloadavg()}")
    print(f"one page alone: first panel after {alone:.1f} s; kernel RSS {one[0]:.0f} MB, "
          f"USS {one[1]:.0f} MB")  # fmt: skip
    print(f"{n} pages at once: first panel after {min(times):.1f} s (first) / "
          f"{statistics.median(times):.1f} s (median) / {max(times):.1f} s (last); "
          f"ratio last/alone {max(times) / alone:.1f}")  # fmt: skip
    rss = [m[0] for m in mems]
    uss = [m[1] for m in mems]
    print(f"{len(mems)} kernels: RSS {statistics.median(rss):.0f} MB median "
          f"({min(rss):.0f}-{max(rss):.0f}), USS {statistics.median(uss):.0f} MB median; "
          f"MemAvailable fell by {free_before - free_with:.0f} MB "
          f"({(free_before - free_with) / n:.0f} MB a page)")  # fmt: skip
    print(f"kernels left 3 minutes after closing the pages: {left}")


if __name__ == "__main__":
    main()
