"""Runaway trials: --trial-timeout stops code that does not cooperate; a trial killed by the
system or raising MemoryError is recorded with its reason and the run goes on."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import _misbehaving_family as bad
import tuner
from tuner.cli import app
from tuner.execution import local_workers

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

SET_ASIDE_AFTER = 2  # instead of 3: every replacement helper costs an interpreter start-up


@pytest.fixture(autouse=True)
def _set_aside_sooner(monkeypatch):
    monkeypatch.setattr(local_workers, "SET_ASIDE_AFTER", SET_ASIDE_AFTER)


def _trials(url, run, family):
    return optuna.load_study(study_name=f"{run}::{family}", storage=url).trials


def test_a_hanging_trial_is_stopped_recorded_as_timeout_and_the_run_goes_on(monkeypatch, regression_frame, tmp_path):
    bad.register(monkeypatch, "hang")
    url = f"sqlite:///{tmp_path / 'hang.db'}"
    board = tuner.tune(regression_frame, target="price", models=["lasso", bad.NAME], trials=2, cv=2,
                       trial_timeout=1, storage=url, run="hang")
    assert [t.state for t in _trials(url, "hang", "lasso")].count(TrialState.COMPLETE) == 2
    hung = _trials(url, "hang", bad.NAME)
    assert len(hung) >= SET_ASIDE_AFTER and all(t.state == TrialState.FAIL for t in hung)
    assert all(t.user_attrs["fail_reason"].startswith("timeout") for t in hung)
    row = board.set_index("model").loc[bad.NAME]
    assert row["status"] != "ok"
    assert not [t for t in _trials(url, "hang", bad.NAME) if t.state == TrialState.RUNNING]


def test_a_trial_killed_by_the_system_is_recorded_and_the_run_goes_on(monkeypatch, regression_frame, tmp_path):
    bad.register(monkeypatch, "sigkill")
    url = f"sqlite:///{tmp_path / 'oom.db'}"
    tuner.tune(regression_frame, target="price", models=["lasso", bad.NAME], trials=1, cv=2,
               trial_timeout=60, storage=url, run="oom")
    assert [t.state for t in _trials(url, "oom", "lasso")] == [TrialState.COMPLETE]
    killed = _trials(url, "oom", bad.NAME)
    assert len(killed) == SET_ASIDE_AFTER  # then set aside
    assert all(t.state == TrialState.FAIL and "SIGKILL" in t.user_attrs["fail_reason"] for t in killed)


def test_a_helper_killed_during_a_trial_run_in_memory_is_recorded_and_the_run_goes_on(monkeypatch, regression_frame,
                                                                                     tmp_path):
    # --n-jobs under a clock alone: a helper runs its trials in memory (tuner.execution.write_behind), so
    # the trial it died in exists only in the supervisor's record
    bad.register(monkeypatch, "sigkill_in_helper")
    url = f"sqlite:///{tmp_path / 'oom.db'}"
    board = tuner.tune(regression_frame, target="price", models=[bad.NAME, "lasso"], timeout=20, cv=2, n_jobs=2,
                       storage=url, run="oom")
    killed = [t for t in _trials(url, "oom", bad.NAME) if t.state == TrialState.FAIL]
    assert killed and all("SIGKILL" in t.user_attrs["fail_reason"] for t in killed)
    assert any("in the helper's memory" in t.user_attrs["fail_reason"] for t in killed)
    trials = _trials(url, "oom", bad.NAME) + _trials(url, "oom", "lasso")
    assert all(t.state.is_finished() for t in trials)
    assert board.set_index("model").loc["lasso", "status"] == "ok"


def test_memory_error_is_a_failed_trial_with_its_reason(monkeypatch, regression_frame, tmp_path):
    bad.register(monkeypatch, "memory_error")
    url = f"sqlite:///{tmp_path / 'mem.db'}"
    board = tuner.tune(regression_frame, target="price", models=["lasso", bad.NAME], trials=1, cv=2,
                       storage=url, run="mem")
    failed = _trials(url, "mem", bad.NAME)
    assert failed and all(t.state == TrialState.FAIL for t in failed)
    assert failed[0].user_attrs["fail_reason"].startswith("MemoryError: Unable to allocate")
    assert board.set_index("model").loc["lasso", "status"] == "ok"


def test_a_failed_trial_keeps_the_time_its_model_took(monkeypatch, regression_frame, tmp_path):
    """A fold that fits and then fails (non-finite predictions) spent its time in the model:
    the trial records it (``model_time_s``), as complete and pruned trials do."""
    bad.register(monkeypatch, "nonfinite")
    url = f"sqlite:///{tmp_path / 'nan.db'}"
    tuner.tune(regression_frame, target="price", models=[bad.NAME], trials=1, cv=2, storage=url, run="nan")
    failed = _trials(url, "nan", bad.NAME)
    assert failed and all(t.state == TrialState.FAIL for t in failed)
    assert "non-finite" in failed[0].user_attrs["fail_reason"]
    assert failed[0].user_attrs["model_time_s"] >= bad.SLOW_FIT_S


def test_cli_trial_timeout_is_shown_in_help_and_checked(tmp_path, regression_frame):
    data = tmp_path / "d.csv"
    regression_frame.to_csv(data, index=False)
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(data), "--target", "price", "--trial-timeout", "0",
                                 "--storage", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "--trial-timeout must be a positive number of seconds" in result.output
    assert not (tmp_path / "x.db").exists()
