"""Early stopping of a clocked run once its leaderboard is flat (tuner.execution.plateau)."""

from __future__ import annotations

import time

import optuna
import pytest

import tuner
from tuner.errors import TunerError
from tuner.execution import budget
from tuner.execution.plateau import Point, verdict

CLOCK = 100.0
START = 1_000_000.0
FOLDS = (0.80, 0.82, 0.84, 0.86, 0.88)  # standard error ≈ 0.0141: a quarter of it ≈ 0.0035


def _verdict(pts, now_s, greater=True):
    return verdict(pts, greater=greater, clock_s=CLOCK, started_at=START, now=START + now_s)


def test_flat_after_the_minimum_share_and_window():
    pts = [Point(START + 5, 0.80, FOLDS), Point(START + 10, 0.84, FOLDS), Point(START + 50, 0.83, FOLDS)]
    assert _verdict(pts, 25) is None  # before MIN_SHARE of the clock
    assert _verdict(pts, 39) is None  # the best (t=10) has not stood for STILL_SHARE yet
    reason = _verdict(pts, 41)
    assert reason is not None and "0.84" in reason and "30s" in reason


def test_a_move_larger_than_the_noise_keeps_the_run_going():
    pts = [Point(START + 5, 0.80, FOLDS), Point(START + 50, 0.81, FOLDS)]
    assert _verdict(pts, 60) is None  # moved by 0.01 > 0.25 × 0.0141 within the last 30 s
    assert _verdict(pts, 81) is not None  # ... and then stood still for 30 s


def test_a_move_inside_the_noise_is_not_a_move():
    pts = [Point(START + 5, 0.80, FOLDS), Point(START + 50, 0.802, FOLDS)]
    assert _verdict(pts, 60) is not None  # 0.002 < 0.25 × 0.0141
    exact = (0.8, 0.8, 0.8, 0.8, 0.8)  # no spread: any move is a move
    assert _verdict([Point(START + 5, 0.80, exact), Point(START + 50, 0.802, exact)], 60) is None


def test_lower_is_better():
    pts = [Point(START + 5, 3.0, (2.0, 4.0)), Point(START + 50, 1.0, (0.9, 1.1))]
    assert _verdict(pts, 60, greater=False) is None  # improved from 3 to 1 inside the window
    assert _verdict(pts, 60, greater=True) is not None  # for a maximised metric 1.0 is no improvement


def test_nothing_finished_before_the_window_is_too_early():
    assert _verdict([Point(START + 45, 0.8, FOLDS)], 60) is None
    assert _verdict([], 90) is None


def _run_with_budget(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    storage = optuna.storages.RDBStorage(url)
    optuna.create_study(study_name="r", storage=storage)

    class Config:
        run = "r"
        families: list = []

    return storage, Config()


def test_the_first_reason_stands_and_a_new_budget_forgets_it(tmp_path):
    storage, config = _run_with_budget(tmp_path)
    spent = budget.add(storage, config, {}, trials=None, timeout=30, start_clock=False, early_stop=True)
    assert spent.early_stop and spent.stopped is None
    assert budget.start_clock(storage, config).early_stop  # starting the clock keeps the option
    assert budget.stop_early(storage, "r", "flat") == "flat"
    assert budget.stop_early(storage, "r", "another worker's reason") == "flat"
    assert budget.stopped_early(storage, "r") == "flat"
    again = budget.add(storage, config, {}, trials=None, timeout=30, start_clock=True)
    assert again.stopped is None and not again.early_stop
    # a trial count bounds the run: no early stop, whatever is asked
    assert not budget.add(storage, config, {}, trials=5, timeout=30, start_clock=True, early_stop=True).early_stop


def test_early_stop_needs_a_clock_alone():
    with pytest.raises(TunerError, match="clock alone"):
        tuner.tune("builtin:breast_cancer", target="target", trials=2, early_stop=True, storage="sqlite://")
    with pytest.raises(TunerError, match="clock alone"):
        tuner.tune("builtin:breast_cancer", target="target", early_stop=True, storage="sqlite://")


@pytest.mark.slow
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_flat_run_ends_before_its_clock_and_says_why(tmp_path, monkeypatch, n_jobs):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    started = time.monotonic()
    # one fast family on a small table: its best stops moving within seconds
    board = tuner.tune("builtin:breast_cancer", target="target", models="logistic_regression", timeout=40,
                       early_stop=True, storage=url, run="flat", n_jobs=n_jobs)
    took = time.monotonic() - started
    why = board.attrs["stopped_early"]
    assert why and why.startswith("stopped early after") and "standard error" in why
    assert took < 40 * 0.88  # well before the tuning clock ran out
    stored = optuna.load_study(study_name="flat", storage=url).user_attrs[budget.BUDGET_ATTR]
    assert "stopped early" in stored
    # continuing the run with the whole clock forgets the early stop
    board = tuner.tune("builtin:breast_cancer", target="target", models="logistic_regression", timeout=8,
                       storage=url, run="flat", n_jobs=n_jobs)
    assert board.attrs["stopped_early"] is None

