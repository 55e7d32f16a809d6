"""Fits that run past their limit stop inside the fit (tuner.fit_watchdog)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from tuner.fit_watchdog import FitTimeLimit, fit_time_limit


def test_a_python_level_loop_is_stopped_at_the_limit():
    start = time.monotonic()
    with pytest.raises(FitTimeLimit):
        with fit_time_limit(time.monotonic() + 0.3):
            while True:
                time.sleep(0.01)
    assert time.monotonic() - start < 2


def test_a_random_forest_is_stopped_between_its_trees():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(4000, 30)), rng.normal(size=4000)
    start = time.monotonic()
    with pytest.raises(FitTimeLimit):
        with fit_time_limit(time.monotonic() + 0.5):
            RandomForestRegressor(n_estimators=5000, n_jobs=1).fit(X, y)
    assert time.monotonic() - start < 3


def test_a_block_that_ends_in_time_is_untouched_and_nothing_fires_later():
    with fit_time_limit(time.monotonic() + 0.2):
        x = sum(range(1000))
    time.sleep(0.4)  # the timer was cancelled: no stray exception here
    assert x == 499500


def test_no_limit_and_a_past_limit():
    with fit_time_limit(None):
        pass
    with pytest.raises(FitTimeLimit):
        with fit_time_limit(time.monotonic() - 1):
            pass


def test_it_works_under_a_profiler_and_restores_the_alarm_handler():
    import cProfile
    import signal

    before = signal.getsignal(signal.SIGALRM)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        with pytest.raises(FitTimeLimit):
            with fit_time_limit(time.monotonic() + 0.1):
                while True:
                    sum(range(100))
    finally:
        profiler.disable()
    assert signal.getsignal(signal.SIGALRM) == before


def test_outside_the_main_thread_there_is_no_in_fit_limit_and_no_error():
    import threading

    done = []

    def body():
        with fit_time_limit(time.monotonic() + 0.05):
            time.sleep(0.2)
        done.append(True)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert done == [True]
