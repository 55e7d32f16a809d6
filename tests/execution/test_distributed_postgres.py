"""Distributed runs on a real PostgreSQL server: `tuner run --create-only` records the run and
its budget, any number of `tuner worker` processes share it, and the books balance exactly.

Each test gets its own database (created and dropped). In CI a skip is a failure."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

import _scaleout as so
from tuner.storage.runs import open_storage

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

FAMILIES = ["lasso", "elastic_net"]


@pytest.fixture
def pg_url():
    with so.postgres_database() as url:
        yield url


@pytest.fixture
def data_csv(tmp_path):
    return so.write_regression_csv(tmp_path / "small.csv")


def _create(url, data_csv, trials, *extra):
    out = so.cli("run", data_csv, "--target", "y", "--models", ",".join(FAMILIES), "--trials", trials,
                     "--cv", 2, "--storage", url, "--run", "dist", "--create-only", *extra).stdout
    assert "Created run 'dist'" in out and f"tuner worker --storage {url} --run dist" in out
    return out


@pytest.mark.parametrize("n_workers", [2, 4])
def test_concurrent_workers_spend_the_budget_exactly(pg_url, data_csv, n_workers):
    target = 8
    _create(pg_url, data_csv, target)
    for family in FAMILIES:  # recorded, nothing run yet: only the enqueued defaults wait
        trials = so.family_trials(pg_url, "dist", family)
        assert [t.state for t in trials] == [TrialState.WAITING]
    procs = [so.start("worker", "--storage", pg_url, "--run", "dist") for _ in range(n_workers)]
    results = [so.finish(p) for p in procs]
    for code, out, err in results:
        assert code == 0, out + err
        assert "the run's budget is spent" in out
        assert "database is locked" not in err and "Traceback" not in err
    ran = sum(so.worker_trial_count(out) for _, out, _ in results)
    so.assert_books_balance(pg_url, "dist", FAMILIES, target, ran_by_workers=ran)
    # the workers stored the run's ensemble selection when they stopped, and kept no model (export refits)
    attrs = optuna.load_study(study_name="dist", storage=open_storage(pg_url, create=False)).user_attrs
    assert attrs["ensemble"]["key"] and "final_model" not in attrs

    # the leaderboard is the same whichever process builds it, from any machine, at any time
    elsewhere = so.leaderboard_json(pg_url, "dist")
    here = so.cli("leaderboard", "--storage", pg_url, "--run", "dist", "--format", "json")
    assert json.loads(here.stdout) == elsewhere
    families = [r for r in elsewhere if r["model"] != "ensemble"]  # an ensemble row when blending helps
    assert len(families) == len(FAMILIES) and all(r["trials"]["complete"] == target for r in families)

    if n_workers == 2:  # a late worker finds nothing to do and exits 0 at once
        code, out, err = so.finish(so.start("worker", "--storage", pg_url, "--run", "dist"))
        assert code == 0 and "it ran 0 trial(s)" in out, out + err


def test_budget_adds_up_and_run_without_create_only_works_on_the_run(pg_url, data_csv):
    _create(pg_url, data_csv, 2)
    _create(pg_url, data_csv, 3)  # a second --create-only adds to the budget: 5 per family
    out = so.cli("run", data_csv, "--target", "y", "--models", ",".join(FAMILIES), "--trials", 1, "--cv", 2,
                 "--storage", pg_url, "--run", "dist").stdout  # works on the run itself and adds 1 more
    assert "ranked by cross-validated rmse" in out
    so.assert_books_balance(pg_url, "dist", FAMILIES, 6)


def test_worker_given_different_data_is_refused(pg_url, data_csv, tmp_path):
    _create(pg_url, data_csv, 2)
    other = so.write_regression_csv(tmp_path / "other.csv", seed=1)
    result = so.run("worker", "--storage", pg_url, "--run", "dist", "--data", other)  # as a user sees it
    assert result.returncode == 2
    assert "refuses to join run 'dist'" in result.stderr and "fingerprint" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    so.write_regression_csv(data_csv, seed=2)  # the file at the recorded location changed
    result = so.cli("worker", "--storage", pg_url, "--run", "dist", code=2)
    assert "refuses to join run 'dist'" in result.output
    for family in FAMILIES:  # nothing ran
        assert all(t.state == TrialState.WAITING for t in so.family_trials(pg_url, "dist", family))


def test_timeout_budget_starts_with_the_first_worker(pg_url, data_csv):
    out = so.cli("run", data_csv, "--target", "y", "--models", "lasso", "--timeout", 3, "--cv", 2,
                 "--storage", pg_url, "--run", "dist", "--create-only").stdout
    assert "3s from the first worker" in out
    study = so.load_study(pg_url, "dist")
    assert json.loads(study.user_attrs["tuner_budget"]) == {"timeout_s": 3.0, "deadline": None, "early_stop": False}
    out = so.cli("worker", "--storage", pg_url, "--run", "dist").stdout
    assert "time is up" in out
    trials = so.family_trials(pg_url, "dist", "lasso")
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 1
    assert not any(t.state == TrialState.RUNNING for t in trials)
