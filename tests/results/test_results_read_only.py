"""Nothing under ``tuner.results`` writes to a storage: a reader given a storage that refuses every
write still ranks the run, works out a stale ensemble in memory and writes the report; the run
object (``tuner.workflow``) is what stores the selection and the held-out scores."""

from __future__ import annotations

import optuna
import pytest

import tuner
from export_helpers import binary_frame
from tuner.results import ensemble, top_trials
from tuner.results import leaderboard as lb
from tuner.storage.runs import open_storage, require_config
from tuner.workflow import derived

WRITES = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "create_new_trial",
          "set_trial_param", "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
          "set_trial_system_attr")


class ReadOnly(optuna.storages.BaseStorage):
    """An Optuna storage that forwards reads and refuses every write."""

    def __init__(self, inner):
        self.inner = inner

    def __getattribute__(self, name):
        if name in WRITES:
            raise AssertionError(f"a reader wrote to the storage: {name}")
        if name == "inner":
            return object.__getattribute__(self, name)
        return getattr(object.__getattribute__(self, "inner"), name)


# BaseStorage's abstract methods, so that the class can be made; every call goes to __getattribute__.
ReadOnly.__abstractmethods__ = frozenset()


@pytest.fixture(scope="module")
def stale_run(tmp_path_factory):
    """A two-family run with a test split, whose stored ensemble no longer matches its trials."""
    storage = f"sqlite:///{tmp_path_factory.mktemp('ro') / 'tuner.db'}"
    tuner.tune(binary_frame(n=160), target="churned", models=["logistic_regression", "random_forest"], trials=2,
               cv=3, test_size=0.25, storage=storage, run="r")
    optuna.load_study(study_name="r", storage=storage).set_user_attr(ensemble.RESULT_ATTR, {"version": 0})
    return storage


def test_the_read_only_storage_refuses_writes(stale_run):
    store = ReadOnly(open_storage(stale_run, create=False))
    with pytest.raises(AssertionError, match="wrote"):
        optuna.load_study(study_name="r", storage=store).set_user_attr("x", 1)


def test_readers_rank_report_and_list_without_writing(stale_run):
    from tuner.results.html_report import build_report

    store = ReadOnly(open_storage(stale_run, create=False))
    config = require_config(store, "r")
    rows = lb.build(store, config)
    blended = [r for r in rows if r["model"] == ensemble.NAME]
    assert blended and len(blended[0]["members"]) >= 2  # worked out in memory, not stored
    assert top_trials.build(store, config, k=3)
    assert "Leaderboard" in build_report(store, config)
    assert optuna.load_study(study_name="r", storage=stale_run).user_attrs[ensemble.RESULT_ATTR] == {"version": 0}


def test_the_workflow_stores_what_the_readers_worked_out(stale_run):
    store = open_storage(stale_run, create=False)
    config = require_config(store, "r")
    in_memory = [r for r in lb.build(store, config) if r["model"] == ensemble.NAME][0]
    assert derived.ensure_scores(store, config) is None
    stored = optuna.load_study(study_name="r", storage=stale_run).user_attrs[ensemble.RESULT_ATTR]
    assert [[m["model"], m["trial_number"]] for m in stored["members"]] == [
        [m["model"], m["trial_number"]] for m in in_memory["members"]]
    again = [r for r in lb.build(store, config) if r["model"] == ensemble.NAME][0]
    assert again["test_scores"]  # the new ensemble's held-out scores, made once and stored
