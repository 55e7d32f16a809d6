"""A trial's writes in one transaction (tuner.storage.trial_writes): the same stored trial as
Optuna's report / set_user_attr / tell, with fewer commits."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tuner.storage import trial_writes
from tuner.storage.optuna_adapter import UpdateFinishedTrialError
from tuner.storage.runs import open_storage


@pytest.fixture
def study(storage_url):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="s", storage=open_storage(storage_url, create=True), direction="maximize")


def _commits(study):
    """Count the SQL transactions that write something (reads commit too)."""
    from sqlalchemy import event

    engine = study._storage._backend.engine
    count, wrote = [0], [False]

    def statement(conn, cursor, sql, *args):
        wrote[0] = wrote[0] or sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")

    def commit(conn):
        count[0] += wrote[0]
        wrote[0] = False

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    return count


def _suggest(trial):
    return (trial.suggest_float("C", 1e-3, 1e3, log=True), trial.suggest_categorical("penalty", ["l1", "l2"]),
            trial.suggest_int("degree", 1, 3))


def test_params_are_stored_in_one_transaction_and_read_back(study):
    trial = study.ask()
    commits = _commits(study)
    with trial_writes.params_held(trial):
        values = _suggest(trial)
        assert trial.params == dict(zip(("C", "penalty", "degree"), values))  # seen while held
    assert commits[0] == 1
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.params == dict(zip(("C", "penalty", "degree"), values))


def test_params_suggested_before_a_failure_are_still_stored(study):
    trial = study.ask()
    with pytest.raises(RuntimeError), trial_writes.params_held(trial):
        trial.suggest_float("C", 1e-3, 1e3, log=True)
        raise RuntimeError("the search space failed")
    assert set(study._storage.get_trial(trial._trial_id).params) == {"C"}


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
def test_finish_stores_what_report_set_user_attr_and_tell_would(study, state):
    scores = {0: 0.81, 1: 0.79, 2: 0.83}
    attrs = {"metrics": {"roc_auc": {"mean": 0.81, "folds": [0.81, 0.79, 0.83]}}, "model_time_s": 0.5}
    value = 0.81 if state == TrialState.COMPLETE else None
    ours, theirs = study.ask(), study.ask()
    commits = _commits(study)
    trial_writes.finish(study, ours, state, value, attrs, scores)
    assert commits[0] == 1
    for step, score in scores.items():
        theirs.report(score, step)
    for key, attr in attrs.items():
        theirs.set_user_attr(key, attr)
    study.tell(theirs, value, state=state)
    a, b = (study._storage.get_trial(t._trial_id) for t in (ours, theirs))
    assert (a.state, a.values, a.intermediate_values, a.user_attrs) == (b.state, b.values, b.intermediate_values,
                                                                         b.user_attrs)
    assert a.datetime_complete is not None
    if state == TrialState.PRUNED:
        assert a.value == 0.83  # the last fold's score, as tell gives a pruned trial


def test_finish_updates_attributes_set_earlier(study):
    trial = study.ask()
    trial.set_user_attr("epoch_curve", [1.0])
    trial_writes.finish(study, trial, TrialState.COMPLETE, 0.5, {"epoch_curve": [0.5, 0.4], "x": 1})
    assert study._storage.get_trial(trial._trial_id).user_attrs == {"epoch_curve": [0.5, 0.4], "x": 1}


def test_finishing_a_trial_another_worker_ended_writes_nothing(study):
    trial = study.ask()
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # e.g. failed as stale
    with pytest.raises(UpdateFinishedTrialError):
        trial_writes.finish(study, trial, TrialState.COMPLETE, 0.9, {"x": 1}, {0: 0.9})
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.state == TrialState.FAIL and stored.user_attrs == {} and stored.intermediate_values == {}


def test_a_complete_trial_needs_a_finite_value(study):
    trial = study.ask()
    with pytest.raises(ValueError, match="finite"):
        trial_writes.finish(study, trial, TrialState.COMPLETE, float("nan"))
    assert study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING


def test_other_storages_get_the_same_result_through_the_public_api():
    study = optuna.create_study(direction="maximize")  # in memory
    trial = study.ask()
    with trial_writes.params_held(trial):
        _suggest(trial)
    trial_writes.finish(study, trial, TrialState.PRUNED, attrs={"x": 1}, intermediate={0: 0.7})
    stored = study.trials[0]
    assert stored.state == TrialState.PRUNED and stored.value == 0.7 and stored.user_attrs == {"x": 1}
    assert set(stored.params) == {"C", "penalty", "degree"}


@pytest.mark.parametrize("state", [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])
def test_in_memory_finish_leaves_what_report_set_user_attr_and_tell_would(state, monkeypatch):
    """A worker's in-memory study (tuner.execution.write_behind): the fold scores and attributes go on
    the trial in one copy of it, then tell."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize")
    scores = {0: 0.4, 1: 0.5, 2: 0.45}
    attrs = {"metrics": {"rmse": {"mean": 0.45}}, "model_time_s": 0.2}
    value = 0.45 if state == TrialState.COMPLETE else None
    ours, theirs = study.ask(), study.ask()
    ours.set_user_attr("epoch_curve", [1.0])
    theirs.set_user_attr("epoch_curve", [1.0])
    copies = []
    real = study._storage._set_trial
    monkeypatch.setattr(study._storage, "_set_trial", lambda *a: copies.append(1) or real(*a))
    trial_writes.finish(study, ours, state, value, {**attrs, "epoch_curve": [0.5]}, scores)
    assert len(copies) <= 2  # the scores and attributes at once, then tell's outcome
    for step, score in scores.items():
        theirs.report(score, step)
    for key, attr in {**attrs, "epoch_curve": [0.5]}.items():
        theirs.set_user_attr(key, attr)
    study.tell(theirs, value, state=state)
    a, b = (study._storage.get_trial(t._trial_id) for t in (ours, theirs))
    assert (a.state, a.values, a.intermediate_values, a.user_attrs) == (b.state, b.values, b.intermediate_values,
                                                                         b.user_attrs)
    assert ours._cached_frozen_trial.intermediate_values == scores


def test_in_memory_finish_of_a_trial_already_ended_writes_nothing():
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    with pytest.raises(UpdateFinishedTrialError):
        trial_writes.finish(study, trial, TrialState.COMPLETE, 0.9, {"x": 1}, {0: 0.9})
    stored = study._storage.get_trial(trial._trial_id)
    assert stored.state == TrialState.FAIL and stored.user_attrs == {} and stored.intermediate_values == {}


def test_finish_writes_the_value_itself_not_through_optunas_private_value_writer(study, monkeypatch):
    """``RDBStorage._set_trial_value_without_commit`` takes a trial id in Optuna 4.x and a row
    in 5.x; ``finish`` relied on the 5.x shape and died with StorageInternalError on 4.5
    (``tuner run builtin:wine ...``). It now writes the value rows with the table models."""
    def private_writer(*args, **kwargs):
        raise AssertionError("Optuna's private value writer was called")

    monkeypatch.setattr(optuna.storages.RDBStorage, "_set_trial_value_without_commit", private_writer)
    trial = study.ask()
    trial_writes.finish(study, trial, TrialState.COMPLETE, 0.75, {"x": 1}, {0: 0.7})
    stored = study._storage.get_trial(trial._trial_id)
    assert (stored.state, stored.value, stored.user_attrs, stored.intermediate_values) == (
        TrialState.COMPLETE, 0.75, {"x": 1}, {0: 0.7})
    assert study.best_value == 0.75
