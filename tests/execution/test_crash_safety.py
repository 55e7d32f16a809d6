"""Crash safety: a worker killed mid-trial (SIGKILL, machine loss) has its trial failed by the
heartbeat and retried elsewhere; Ctrl-C records the trial in progress, says where the run
stands, exits 130, and rerunning continues the run.

The test-only family ``slow_lasso`` sleeps in fit, so a trial is surely in flight when the
signal arrives; heartbeats beat every second (grace 3 s) to keep the tests short."""

from __future__ import annotations

import os
import signal

import pytest
from optuna.trial import TrialState

import _scaleout as so
import _slow_family
from tuner.errors import StorageError

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

FAST_HEARTBEAT = {"TUNER_HEARTBEAT_S": 1, _slow_family.FIT_SECONDS_ENV: 1.0}


@pytest.fixture(params=["postgresql", "sqlite"])
def storage_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuner.db'}"
        return
    with so.postgres_database() as url:
        yield url


@pytest.fixture
def data_csv(tmp_path):
    return so.write_regression_csv(tmp_path / "small.csv")


def _create(url, data_csv, trials, monkeypatch):
    so.register_slow_family(monkeypatch)
    so.cli("run", data_csv, "--target", "y", "--models", _slow_family.NAME, "--trials", trials, "--cv", 2,
               "--storage", url, "--run", "crash", "--create-only")


def test_sigkilled_worker_trial_is_retried_and_the_run_completes(storage_url, data_csv, monkeypatch):
    target = 3
    _create(storage_url, data_csv, target, monkeypatch)
    victim = so.start("worker", "--storage", storage_url, "--run", "crash", **FAST_HEARTBEAT)
    killed = so.wait_for(lambda: so.running_trial(storage_url, "crash", _slow_family.NAME), timeout=120,
                         what="the first worker to start a trial")
    os.kill(victim.pid, signal.SIGKILL)  # no clean-up of any kind: as if the machine vanished
    victim.communicate()

    rescuer = so.start("worker", "--storage", storage_url, "--run", "crash",
                       **{**FAST_HEARTBEAT, _slow_family.FIT_SECONDS_ENV: 0.2})
    code, out, err = so.finish(rescuer)
    assert code == 0, out + err
    trials = {t.number: t for t in so.family_trials(storage_url, "crash", _slow_family.NAME)}
    assert trials[killed.number].state == TrialState.FAIL  # failed by the heartbeat check
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trials[killed.number].params
    so.assert_books_balance(storage_url, "crash", [_slow_family.NAME], target)


def test_ctrl_c_records_the_trial_reports_the_run_and_a_rerun_continues(tmp_path, data_csv, monkeypatch):
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    args = ("run", data_csv, "--target", "y", "--models", _slow_family.NAME, "--trials", 2, "--cv", 2,
            "--storage", url, "--run", "crash")
    proc = so.start(*args, **FAST_HEARTBEAT)
    interrupted = so.wait_for(lambda: so.running_trial(url, "crash", _slow_family.NAME), timeout=120,
                              what="a trial to start")
    so.interrupt(proc)
    code, out, err = so.finish(proc, timeout=60)
    assert code == 130, out + err
    assert "Interrupted" in out and "stands at: slow_lasso 0/2 (1 failed) complete" in out
    assert "Traceback" not in err
    trial = {t.number: t for t in so.family_trials(url, "crash", _slow_family.NAME)}[interrupted.number]
    assert trial.state == TrialState.FAIL and trial.user_attrs["fail_reason"] == "interrupted by the user"

    so.register_slow_family(monkeypatch)
    monkeypatch.setenv(_slow_family.FIT_SECONDS_ENV, "0.1")
    so.cli(*args)  # the same command again continues the run
    so.assert_books_balance(url, "crash", [_slow_family.NAME], 4)  # the 2 owed, and 2 more


def test_ctrl_c_stops_every_local_process_cleanly(tmp_path, data_csv):
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    proc = so.start("run", data_csv, "--target", "y", "--models", _slow_family.NAME, "--trials", 6, "--cv", 2,
                    "--storage", url, "--run", "crash", "--n-jobs", 2, **FAST_HEARTBEAT)

    def two_running():
        try:
            trials = so.family_trials(url, "crash", _slow_family.NAME)
        except (KeyError, StorageError):  # not created yet
            return False
        return sum(t.state == TrialState.RUNNING for t in trials) >= 2

    so.wait_for(two_running, timeout=120, what="both worker processes to start a trial")
    so.interrupt(proc)
    code, out, err = so.finish(proc, timeout=90)
    assert code == 130, out + err
    assert "Interrupted" in out and "Traceback" not in err
    trials = so.family_trials(url, "crash", _slow_family.NAME)
    assert not any(t.state == TrialState.RUNNING for t in trials)
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert len(stopped) >= 2 and all(t.user_attrs.get("fail_reason") == "interrupted by the user" for t in stopped)


def test_worker_ctrl_c_exits_130_and_says_how_to_continue(tmp_path, data_csv, monkeypatch):
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    _create(url, data_csv, 2, monkeypatch)
    proc = so.start("worker", "--storage", url, "--run", "crash", **FAST_HEARTBEAT)
    so.wait_for(lambda: so.running_trial(url, "crash", _slow_family.NAME), timeout=120, what="a trial to start")
    so.interrupt(proc)
    code, out, err = so.finish(proc, timeout=60)
    assert code == 130, out + err
    assert "stands at: slow_lasso 0/2 (1 failed) complete" in out
    assert f"tuner worker --storage {url} --run crash" in out


def test_ctrl_c_while_a_trial_is_being_claimed_leaves_no_trial_running(tmp_path, mixed_frame, monkeypatch):
    """The signal is held back until the claim is complete, then the claimed trial is recorded."""
    import signal

    import tuner
    from tuner.execution import budget

    real_claim = budget.claim
    calls = []

    def claim_then_ctrl_c(*args, **kwargs):
        result = real_claim(*args, **kwargs)
        if result.trial is not None and not calls:
            calls.append(result.trial.number)
            signal.raise_signal(signal.SIGINT)  # arrives in the middle of the claim
        return result

    monkeypatch.setattr(budget, "claim", claim_then_ctrl_c)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    # Ctrl-C as in a terminal, also when the suite itself was started with SIGINT ignored (in the background)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=3, cv=2, storage=url,
                       run="c")
    finally:
        signal.signal(signal.SIGINT, previous)
    trials = so.family_trials(url, "c", "logistic_regression")
    assert [t.state for t in trials if t.number == calls[0]] == [TrialState.FAIL]
    assert trials[calls[0]].user_attrs["fail_reason"] == "interrupted by the user"
    assert not any(t.state == TrialState.RUNNING for t in trials)
