"""A claim looks for dead workers' trials at most every SWEEP_S, and always before it
calls a family full (tuner.budget): in between it counts in one query.

In CI a skip is a failure: the PostgreSQL case needs the server of the distributed tests.
"""

from __future__ import annotations

import _scaleout as so
import optuna
import pytest
from optuna.trial import TrialState

from tuner import budget, heartbeat


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
