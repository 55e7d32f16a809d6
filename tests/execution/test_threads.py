"""Threads per fit follow the cores other processes leave free (tuner.execution.threads)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tuner.execution import threads


def _reset():
    threads._last.clear()


def test_one_core_given_is_one_thread():
    assert threads.fit_threads(1) == 1


def test_no_proc_stat_means_every_core_given(monkeypatch):
    _reset()
    monkeypatch.setattr(threads, "_reading", lambda: None)
    assert threads.fit_threads(4) == 4


@pytest.mark.parametrize("own_s, expected", [
    (0.0, 1),  # other processes busy on 3 of 4 cores for 1 s: one thread
    (3.0, 4),  # busy on 3 of 4 cores, all of it this process' own: every core
], ids=["others-busy", "own-cpu-does-not-count"])
def test_threads_follow_the_cores_others_leave_free(monkeypatch, own_s, expected):
    _reset()
    readings = iter([(0.0, 0.0, 0.0, 0.0), (1.0, 3.0 * threads.TICKS, 1.0 * threads.TICKS, own_s)])
    monkeypatch.setattr(threads, "_reading", lambda: next(readings))
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    assert threads.fit_threads(4) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_real_busy_loop_takes_a_core_away():
    import os

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("needs 2 cores")
    _reset()
    idle_before = threads.free_cores(cores)
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        time.sleep(threads.REFRESH_S + 0.5)
        assert threads.fit_threads(cores) < cores or idle_before < cores  # taken, unless already busy
        assert threads.free_cores(cores) < cores - 0.5
    finally:
        for p in loops:
            p.kill()
            p.wait()
