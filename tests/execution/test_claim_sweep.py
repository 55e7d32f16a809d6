"""A claim looks for dead workers' trials at most every SWEEP_S, and always before it
calls a family full (tuner.execution.budget): in between it counts in one query.

In CI a skip is a failure: the PostgreSQL case needs the server of the distributed tests.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

import _scaleout as so
from tuner.execution import budget, heartbeat


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    with so.sqlite_or_postgres(request.param, tmp_path) as opened:
        yield opened


def _family(storage, target):
    study = optuna.create_study(study_name="r::f", storage=storage, direction="maximize")
    study.set_user_attr(budget.TARGET_ATTR, target)
    return study


def _count_sweeps(monkeypatch) -> list:
    sweeps = []
    real = budget.sweep

    def counting(storage, study):
        sweeps.append(1)
        return real(storage, study)

    monkeypatch.setattr(budget, "sweep", counting)
    return sweeps


def test_claims_between_sweeps_count_in_one_query_and_sweep_again_after_sweep_s(storage, monkeypatch):
    study = _family(storage, None)  # a clock only: no trial count
    sweeps = _count_sweeps(monkeypatch)
    now = [1000.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: now[0])
    claims = [budget.claim(storage, "r", study, look_first=False) for _ in range(3)]
    assert [c.status for c in claims] == ["claimed"] * 3
    assert [c.running for c in claims] == [0, 1, 2]  # the count sees every earlier claim
    assert len(sweeps) == 1
    study.tell(claims[0].trial, 0.5)
    assert budget._counts(storage, study) == budget.sweep(storage, study) == (1, 2)
    sweeps.clear()
    now[0] += budget.SWEEP_S + 0.1
    budget.claim(storage, "r", study, look_first=False)
    assert len(sweeps) == 1


def test_a_family_that_counts_full_is_swept_first_and_a_dead_claim_gives_its_slot_back(storage, monkeypatch):
    study = _family(storage, 2)
    first = budget.claim(storage, "r", study, look_first=False)
    assert first.status == "claimed"
    with heartbeat.quiet():
        dead = study.ask()  # claimed by a worker that died before its first heartbeat
    sweeps = _count_sweeps(monkeypatch)
    # a sweep just happened (the first claim), but 1 running + 1 dead = the target: sweep anyway
    claim = budget.claim(storage, "r", study, look_first=False)
    assert sweeps == [1]
    assert claim.status == "claimed" and claim.running == 1
    assert study._storage.get_trial(dead._trial_id).state == TrialState.FAIL
    # now truly full: both slots held by live claims
    assert budget.claim(storage, "r", study, look_first=False).status == "full"
    study.tell(first.trial, 0.5)
    study.tell(claim.trial, 0.6)
    assert budget.claim(storage, "r", study, look_first=False).status == "done"


def test_a_trial_without_heartbeat_is_failed_with_its_reason_and_retried_without_it(tmp_path, monkeypatch):
    """A worker on another machine stopped beating: after the grace period the next sweep fails
    its trial, says why, and enqueues a retry with the same parameters (without the reason
    or the dead worker)."""
    import time

    from tuner.storage.runs import open_storage

    monkeypatch.setenv(heartbeat.ENV, "1")  # grace 3 s
    storage = open_storage(f"sqlite:///{tmp_path / 'tuner.db'}", create=True)
    study = _family(storage, None)
    with heartbeat.quiet():
        trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    storage.record_heartbeat(trial._trial_id)
    storage.set_trial_system_attr(trial._trial_id, heartbeat.WORKER_ATTR, {"id": "elsewhere:1", "host": "elsewhere"})
    fresh = budget.sweep(storage, study)
    assert fresh == (0, 1)  # within the grace period: still running
    time.sleep(heartbeat.grace_s() + 1.5)  # SQLite's clock has whole seconds: surely more than the grace
    budget.sweep(storage, study)
    trials = study.get_trials(deepcopy=False)
    failed = trials[0]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("no heartbeat for over 3 s")
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING and retry[0].params == failed.params
    assert "fail_reason" not in retry[0].user_attrs and heartbeat.WORKER_ATTR not in retry[0].system_attrs


def test_failing_a_trial_that_already_ended_writes_nothing(storage):
    from tuner.storage import trial_writes

    study = _family(storage, None)
    with heartbeat.quiet():
        trial = study.ask()
    study.tell(trial, 0.7)
    assert trial_writes.fail_running(study._storage, trial._trial_id, "too late") is False
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.state == TrialState.COMPLETE and "fail_reason" not in stored.user_attrs
    with heartbeat.quiet():
        running = study.ask()
    assert trial_writes.fail_running(study._storage, running._trial_id, "gone") is True
    stored = study._storage.get_trial(running._trial_id)
    assert stored.state == TrialState.FAIL and stored.user_attrs["fail_reason"] == "gone"
