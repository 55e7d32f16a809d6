"""Fits that run past their limit are given up on at the limit (tuner.execution.fit_watchdog)."""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from tuner.execution import fit_watchdog
from tuner.execution.fit_watchdog import FitTimeLimit, call_with_limit


def _fit_threads() -> list[threading.Thread]:
    """The "tuner-fit" threads of given-up folds (not this thread's runner, which waits for the next fold)."""
    runner = getattr(fit_watchdog._local, "runner", None)
    current = runner.thread if runner is not None and runner.usable() else None
    return [t for t in threading.enumerate() if t.name == "tuner-fit" and t is not current]


def _wait_for_fit_threads_to_end(seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while _fit_threads() and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _fit_threads()


def test_a_python_level_loop_is_stopped_at_the_limit_and_does_not_run_on():
    ticks = []

    def spin():
        while True:
            ticks.append(1)
            time.sleep(0.01)

    start = time.monotonic()
    with pytest.raises(FitTimeLimit):
        call_with_limit(spin, time.monotonic() + 0.3)
    assert time.monotonic() - start < 1
    assert _wait_for_fit_threads_to_end()
    seen = len(ticks)
    time.sleep(0.1)
    assert len(ticks) == seen  # the worker was stopped, not left spinning


def test_a_call_that_stays_in_c_is_given_up_on_at_the_limit():
    # time.sleep, like libsvm / liblinear, runs in C without the GIL: the waiting thread returns
    # at the limit; the worker stops when the call returns
    after = []

    def native_then_more():
        time.sleep(1.0)
        after.append("ran on")  # must not happen: the stop lands when sleep returns

    start = time.monotonic()
    with pytest.raises(FitTimeLimit):
        call_with_limit(native_then_more, time.monotonic() + 0.2)
    assert time.monotonic() - start < 0.6
    assert _wait_for_fit_threads_to_end()
    assert after == []


def test_a_random_forest_is_stopped_between_its_trees():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 30)), rng.normal(size=4000)
    start = time.monotonic()
    with pytest.raises(FitTimeLimit):
        call_with_limit(lambda: RandomForestRegressor(n_estimators=5000, n_jobs=1).fit(X, y), time.monotonic() + 0.5)
    assert time.monotonic() - start < 1.5
    assert _wait_for_fit_threads_to_end()


def test_results_and_errors_come_back_and_one_thread_runs_fold_after_fold():
    where = []

    def fold(value):
        where.append(threading.current_thread())
        return value

    assert call_with_limit(lambda: fold(499500), time.monotonic() + 5) == 499500
    with pytest.raises(ZeroDivisionError):
        call_with_limit(lambda: fold(1) / 0, time.monotonic() + 5)
    assert call_with_limit(lambda: fold(7), time.monotonic() + 5) == 7
    assert len(set(where)) == 1 and where[0] is not threading.current_thread()  # a thread per fold cost time
    time.sleep(0.2)
    assert not _fit_threads() and where[0].is_alive()  # nothing else runs; the runner waits for the next fold


def test_after_a_fold_is_given_up_on_the_next_runs_in_a_new_thread():
    where = []
    with pytest.raises(FitTimeLimit):
        call_with_limit(lambda: (where.append(threading.current_thread()), time.sleep(0.5)), time.monotonic() + 0.05)
    assert call_with_limit(lambda: where.append(threading.current_thread()) or "ok", time.monotonic() + 5) == "ok"
    assert where[0] is not where[1]
    assert _wait_for_fit_threads_to_end()  # the given-up one ended once its sleep returned
    assert not where[0].is_alive() and where[1].is_alive()


def test_no_limit_runs_here_and_a_past_limit_runs_nothing():
    where = []
    call_with_limit(lambda: where.append(threading.current_thread()), None)
    assert where == [threading.current_thread()]
    with pytest.raises(FitTimeLimit):
        call_with_limit(lambda: where.append("ran"), time.monotonic() - 1)
    assert where == [threading.current_thread()]


def test_it_works_under_a_profiler():
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        with pytest.raises(FitTimeLimit):
            call_with_limit(lambda: [sum(range(100)) for _ in iter(int, 1)], time.monotonic() + 0.1)
    finally:
        profiler.disable()
    assert _wait_for_fit_threads_to_end()


def test_the_limit_holds_outside_the_main_thread_too():
    outcome = []

    def body():
        try:
            call_with_limit(lambda: time.sleep(1.0), time.monotonic() + 0.05)
        except FitTimeLimit:
            outcome.append("stopped")

    t = threading.Thread(target=body)
    started = time.monotonic()
    t.start()
    t.join()
    assert outcome == ["stopped"] and time.monotonic() - started < 0.6


def test_a_call_expected_to_be_short_and_far_inside_its_limit_runs_in_this_thread():
    where = []

    def fold():
        where.append(threading.current_thread())

    call_with_limit(fold, time.monotonic() + 5, expected_s=0.01)  # short, 500× inside the limit
    assert where[-1] is threading.current_thread()
    call_with_limit(fold, time.monotonic() + 0.05, expected_s=0.01)  # short, but only 5× inside it
    call_with_limit(fold, time.monotonic() + 60, expected_s=1.0)  # far inside, but not short: Ctrl-C waits for it
    call_with_limit(fold, time.monotonic() + 5)  # nothing known of it
    assert all(w is not threading.current_thread() for w in where[1:])
    with pytest.raises(FitTimeLimit):  # past the limit: nothing runs, whatever is expected
        call_with_limit(fold, time.monotonic() - 1, expected_s=0.001)
    assert len(where) == 4


def test_a_program_with_a_fit_still_running_after_it_was_given_up_on_leaves_at_once_with_its_status():
    """Finalizing the interpreter while a given-up fit is still inside a C++ solver can crash
    the process after its work is done (exit 139); the CLI leaves with os._exit instead."""
    import subprocess
    import sys

    program = (
        "import time\n"
        "from tuner.execution.fit_watchdog import FitTimeLimit, call_with_limit, exit_now_if_fits_abandoned, fits_abandoned_alive\n"
        "exit_now_if_fits_abandoned(5)  # nothing given up on yet: no exit\n"
        "try:\n"
        "    call_with_limit(lambda: time.sleep(20), time.monotonic() + 0.1)\n"
        "except FitTimeLimit:\n"
        "    pass\n"
        "assert fits_abandoned_alive() == 1\n"
        "print('results written', flush=True)\n"
        "exit_now_if_fits_abandoned(3)\n"
        "raise SystemExit(4)  # not reached\n"
    )
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "results written\n"
    assert time.monotonic() - started < 15  # did not wait for the 20 s "fit"


def _openmp_threads() -> list[int]:
    import threadpoolctl

    return [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "openmp"]


def test_the_fit_thread_gets_the_callers_openmp_threads():
    """OpenMP's thread count is per thread: the caller's limit must be applied in the fit thread."""
    import sklearn.ensemble  # noqa: F401 — loads scikit-learn's OpenMP runtime

    assert _openmp_threads(), "no OpenMP runtime loaded"
    seen = call_with_limit(_openmp_threads, time.monotonic() + 30, threads=1)
    assert seen and set(seen) == {1}
    fit_watchdog.release()


def test_release_ends_the_fit_thread_and_the_next_fold_gets_a_new_one():
    assert call_with_limit(lambda: 1, time.monotonic() + 30) == 1
    runner = fit_watchdog._local.runner
    assert runner.thread.is_alive()
    fit_watchdog.release()
    assert not runner.thread.is_alive()  # its OpenMP team ends with it
    assert call_with_limit(lambda: 2, time.monotonic() + 30) == 2
    assert fit_watchdog._local.runner is not runner
    fit_watchdog.release()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
def test_a_fit_given_up_on_runs_on_at_the_lowest_priority():
    """A C solver cannot be stopped: it must not take the cores from what the process does next."""
    started = threading.Event()

    def native_call():
        started.set()
        time.sleep(1.5)  # stands for liblinear: no Python bytecode until it returns

    with pytest.raises(FitTimeLimit):
        call_with_limit(native_call, time.monotonic() + 0.3)
    assert started.is_set()
    abandoned = fit_watchdog._abandoned[-1]
    assert abandoned.is_alive()
    assert os.getpriority(os.PRIO_PROCESS, abandoned.native_id) == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) < 19  # the caller keeps its own
    abandoned.join(5)
