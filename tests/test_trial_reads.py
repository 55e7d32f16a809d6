"""One read of a family's trials per claimed trial (tuner.storage.trial_reads), never for a budget count."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from tuner.execution import budget
from tuner.storage import trial_reads
from tuner.storage.runs import open_storage


@pytest.fixture
def storage(storage_url):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return open_storage(storage_url, create=True)


def _counting_queries(storage, monkeypatch) -> list:
    """Count the queries that bring a trial cache up to date (RDBStorage._get_trials)."""
    queries = []
    real = type(storage)._get_trials

    def counting(self, *args, **kwargs):
        queries.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(storage), "_get_trials", counting)
    return queries


def test_inside_a_window_the_trial_list_is_read_once_outside_every_time(storage, monkeypatch):
    study = optuna.create_study(study_name="s", storage=trial_reads.shared(storage), direction="maximize")
    study.tell(study.ask(), 0.5)
    queries = _counting_queries(storage, monkeypatch)
    for _ in range(3):
        study.get_trials(deepcopy=False)
    assert len(queries) == 3  # as Optuna does
    queries.clear()
    with trial_reads.one_sync(study):
        trial = study.ask()  # the first read: waiting retries
        for _ in range(3):
            study.get_trials(deepcopy=False)  # the sampler's reads
        assert len(queries) == 1
        trial_reads.refresh(study)
        assert [t.number for t in study.get_trials(deepcopy=False)] == [0, 1]
        assert len(queries) == 2
    study.tell(trial, 0.7)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.COMPLETE] * 2  # no stale cache after


def test_a_budget_count_inside_a_window_sees_another_workers_claim_made_after_the_first_read(storage):
    mine = optuna.create_study(study_name="r::f", storage=trial_reads.shared(storage), direction="maximize")
    mine.set_user_attr(budget.TARGET_ATTR, 2)
    theirs = optuna.load_study(study_name="r::f", storage=open_storage(storage.url, create=False))
    with trial_reads.one_sync(mine):
        assert mine.get_trials(deepcopy=False) == []  # the window's read
        first = budget.claim(theirs._storage, "r", theirs, look_first=False)
        second = budget.claim(theirs._storage, "r", theirs, look_first=False)
        assert first.status == second.status == "claimed"
        assert budget.sweep(storage, mine) == (0, 2)
        assert budget.claim(storage, "r", mine, look_first=True).status == "full"


def test_a_run_reads_each_familys_trial_list_about_once_per_trial(storage_url, mixed_frame, monkeypatch):
    import tuner

    calls = _counting_queries(open_storage(storage_url, create=True), monkeypatch)
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=12, cv=3,
               storage=storage_url, run="r")
    study = optuna.load_study(study_name="r::logistic_regression", storage=storage_url)
    n = len(study.get_trials(deepcopy=False))
    assert n >= 12
    # claiming + TPE sampling read the list ~4 times a trial before; the leaderboard and
    # setting up add a few reads of their own
    assert len(calls) < 1.5 * n + 10, (len(calls), n)
