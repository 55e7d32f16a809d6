"""Under a clock a worker runs its trials in memory and stores them in batches
(tuner.execution.write_behind): what lands in the storage, and what still goes through claims.

In CI a skip is a failure: the PostgreSQL cases need the server of the distributed tests.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

import _scaleout as so
import tuner
from tuner.execution import budget, write_behind
from tuner.storage.runs import open_storage


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    with so.sqlite_or_postgres(request.param, tmp_path) as opened:
        yield opened


class _Family:  # what write_behind needs of tuner.execution.family_state.FamilyState
    def __init__(self, storage, name="f"):
        self.name = name
        self.study = optuna.create_study(study_name=f"r::{name}", storage=storage,
                                         direction="maximize", load_if_exists=True)


def _sampler(name, n_stored):
    return optuna.samplers.RandomSampler(seed=n_stored)


def _local_trial(wb, fam, value, state=TrialState.COMPLETE):
    trial = fam.study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.suggest_categorical("kind", ["a", "b"])
    trial.report(value, 0)
    trial.report(value / 2, 1)
    trial.set_user_attr("metrics", {"accuracy": {"mean": value, "folds": [value, value / 2]}})
    fam.study.tell(trial, value if state == TrialState.COMPLETE else None, state=state)
    wb.finished(fam.name, trial)
    return fam.study._storage.get_trial(trial._trial_id)


def _stored(storage):
    return optuna.load_study(study_name="r::f", storage=storage).get_trials()


def test_trials_of_two_workers_are_stored_whole_numbered_as_optuna_numbers_them_and_mirrored(storage):
    a, b = _Family(storage), _Family(storage)
    with write_behind.attached(storage, "r", [a], _sampler) as wa, \
            write_behind.attached(storage, "r", [b], _sampler) as wb:
        mine = [_local_trial(wa, a, 0.1 * i) for i in range(1, 4)]
        theirs = [_local_trial(wb, b, 0.5), _local_trial(wb, b, 0.7, TrialState.PRUNED)]
        assert _stored(storage) == []  # nothing written before a flush
        wa.flush()
        wb.flush()
        wa.flush()
        assert sorted(t.value for t in a.study.get_trials()) == pytest.approx([0.1, 0.2, 0.3, 0.35, 0.5])
        assert len(b.study.get_trials()) == 5  # b mirrors a's three
    assert a.study._storage is not wa.memory["f"]._storage  # the stored study is back
    stored = _stored(storage)
    assert [t.number for t in stored] == list(range(5))
    by_value = {round(t.value, 6): t for t in stored}
    for local in mine + theirs[:1]:
        kept = by_value[round(local.value, 6)]
        assert kept.state == local.state
        assert kept.params == local.params and kept.distributions == local.distributions
        assert kept.intermediate_values == local.intermediate_values
        assert kept.user_attrs == local.user_attrs
        assert kept.datetime_start == local.datetime_start and kept.datetime_complete == local.datetime_complete
    pruned = [t for t in stored if t.state == TrialState.PRUNED]
    assert len(pruned) == 1 and pruned[0].value == pytest.approx(0.35)  # its last fold score, as tell stores it
    # the storage's own reads agree with the cache the flush filled in
    fresh = optuna.load_study(study_name="r::f", storage=open_storage(str(storage.url), create=False)).get_trials()
    assert [(t.number, t.value, t.params) for t in fresh] == [(t.number, t.value, t.params) for t in stored]


def test_a_waiting_trial_is_claimed_from_the_storage_then_trials_run_in_memory(storage):
    fam = _Family(storage)
    fam.study.enqueue_trial({"x": 0.5, "kind": "a"})  # a family's default configuration
    with write_behind.attached(storage, "r", [fam], _sampler) as wb:
        assert not wb.runs_locally("f")
        claim = budget.claim(storage, "r", wb.stored["f"], look_first=False)
        assert claim.trial.params == {} and claim.trial.suggest_float("x", 0.0, 1.0) == 0.5
        wb.stored["f"].tell(claim.trial, 0.9)
        wb.stored_trial_ended("f")
        assert wb.runs_locally("f")
        assert [t.value for t in fam.study.get_trials()] == [0.9]  # in memory: the sampler learns from it
        _local_trial(wb, fam, 0.2)
    assert [t.value for t in _stored(storage)] == [0.9, 0.2]


def test_a_family_given_a_trial_count_goes_back_to_claims_at_the_next_flush(storage):
    fam = _Family(storage)
    with write_behind.attached(storage, "r", [fam], _sampler) as wb:
        assert wb.runs_locally("f")
        wb.stored["f"].set_user_attr(budget.TARGET_ATTR, 5)  # another `tuner run --trials 5`
        wb.flush()
        assert not wb.runs_locally("f")


def test_without_the_glance_a_flush_reads_every_family_and_still_sees_a_trial_count(storage, monkeypatch):
    fam = _Family(storage)
    with write_behind.attached(storage, "r", [fam], _sampler) as wb:
        monkeypatch.setattr(write_behind.WriteBehind, "_glance", lambda self: dict.fromkeys(self.stored))
        other = _Family(storage).study
        other.tell(other.ask(), 0.8)  # another worker's trial
        wb.stored["f"].set_user_attr(budget.TARGET_ATTR, 5)
        wb.flush()
        assert [t.value for t in fam.study.get_trials()] == [0.8]
        assert not wb.runs_locally("f")


def test_a_flush_fails_another_workers_abandoned_trial(storage):
    fam, other = _Family(storage), _Family(storage)
    abandoned = other.study.ask()  # claimed, never began: no heartbeat, no worker left
    with write_behind.attached(storage, "r", [fam], _sampler) as wb:
        _local_trial(wb, fam, 0.4)
    states = {t.number: t.state for t in _stored(storage)}
    assert states[abandoned.number] == TrialState.FAIL
    assert sorted(states.values()) == sorted([TrialState.FAIL, TrialState.COMPLETE])


def test_a_clocked_run_stores_its_trials_in_batches(mixed_frame, storage_url, monkeypatch):
    batches = []
    real = write_behind.WriteBehind._store

    def counting(self):
        batches.append(sum(len(ids) for ids in self.pending.values()))
        return real(self)

    monkeypatch.setattr(write_behind.WriteBehind, "_store", counting)
    monkeypatch.setattr(write_behind, "FLUSH_S", 1e9)  # only when the worker stops
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], timeout=4, cv=3,
               storage=storage_url, run="wb")
    trials = optuna.load_study(study_name="wb::logistic_regression", storage=storage_url).get_trials()
    assert len(batches) == 1 and batches[0] == len(trials) - 1 > 2  # all but the claimed default
    assert [t.number for t in trials] == list(range(len(trials)))
    assert "fixed_params" in trials[0].system_attrs  # the default configuration, claimed from the storage
    assert all(t.state.is_finished() for t in trials)
    assert all("model_time_s" in t.user_attrs for t in trials)


def test_ctrl_c_in_a_fold_stores_what_ran_and_the_interrupted_trial(mixed_frame, storage_url, monkeypatch):
    import tuner.search.trial as driver_module  # where a trial runs its folds

    real = driver_module.evaluate_fold
    calls = []

    def interrupting(*args, **kwargs):
        calls.append(1)
        if len(calls) == 12:  # the claimed default took 3 folds; a trial run in memory is on its fold
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(driver_module, "evaluate_fold", interrupting)
    monkeypatch.setattr(write_behind, "FLUSH_S", 1e9)
    with pytest.raises(KeyboardInterrupt):
        tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], timeout=30, cv=3,
                   storage=storage_url, run="wb")
    trials = optuna.load_study(study_name="wb::logistic_regression", storage=storage_url).get_trials()
    assert len(trials) >= 3 and all(t.state.is_finished() for t in trials)
    assert trials[-1].state == TrialState.FAIL and trials[-1].user_attrs["fail_reason"] == "interrupted by the user"
    assert all(t.state != TrialState.FAIL for t in trials[:-1])
