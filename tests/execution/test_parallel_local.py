"""Local parallelism: `--n-jobs J` runs J worker processes on the default embedded SQLite
storage without "database is locked", spends the budget exactly, and shares the cores."""

from __future__ import annotations

import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
from optuna.trial import TrialState

import _scaleout as so
import tuner
from tuner.execution import budget
from tuner.storage.runs import open_storage, require_config

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

FAMILIES = ["lasso", "elastic_net"]


def test_four_local_processes_on_the_embedded_storage(tmp_path):
    data = so.write_regression_csv(tmp_path / "small.csv")
    target = 10
    # the default storage (sqlite:///tuner.db in the working folder)
    result = so.run("run", data, "--target", "y", "--models", ",".join(FAMILIES), "--trials", target, "--cv", 2,
                    "--n-jobs", 4, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "database is locked" not in result.stdout + result.stderr
    assert result.stderr == ""  # no warnings, no tracebacks from the children
    assert "ranked by cross-validated rmse" in result.stdout
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    ran = int(re.search(r"(\d+) trial\(s\) in", result.stdout).group(1))
    so.assert_books_balance(url, "small", FAMILIES, target, ran_by_workers=ran)
    # every process took its share, each recorded heartbeats, and the file is in WAL mode
    assert sqlite3.connect(tmp_path / "tuner.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    # and the same command again adds `--trials` more per family
    result = so.run("run", data, "--target", "y", "--models", "lasso", "--trials", 3, "--n-jobs", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    so.assert_books_balance(url, "small", ["lasso"], target + 3)


def test_python_api_runs_dataframes_in_local_processes(tmp_path):
    rng = np.random.default_rng(3)
    df = pd.DataFrame(rng.normal(size=(90, 3)), columns=["a", "b", "c"])
    df["label"] = np.where(df["a"] + rng.normal(scale=0.5, size=90) > 0, "yes", "no")
    url = f"sqlite:///{tmp_path / 'api.db'}"
    board = tuner.tune(df, target="label", models=["logistic_regression"], trials=6, cv=2, storage=url,
                       run="api", n_jobs=2)
    assert int(board.loc[0, "trials_complete"]) == 6
    so.assert_books_balance(url, "api", ["logistic_regression"], 6)


def test_pruned_trials_do_not_count_towards_the_budget(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(200, 5)), columns=list("abcde"))
    df["y"] = np.where(df["a"] + 0.5 * rng.normal(size=200) > 0, "p", "n")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    tuner.tune(df, target="y", models=["logistic_regression"], trials=8, cv=5, storage=url, run="p")
    trials = so.family_trials(url, "p", "logistic_regression")
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 8
    assert any(t.state == TrialState.PRUNED for t in trials)  # ... which were run on top of the 8


def test_budget_is_stored_and_accumulates(tmp_path, mixed_frame):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=2, cv=3, storage=url, run="b")
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=3, cv=3, storage=url, run="b")
    store = open_storage(url, create=False)
    spent = budget.read(store, require_config(store, "b"))
    assert spent.targets == {"logistic_regression": 5} and spent.deadline is None
    assert spent.describe() == "5 complete trials per family"
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], timeout=1, cv=3, storage=url, run="b")
    spent = budget.read(store, require_config(store, "b"))
    from tuner.deploy.final_fit import reserve_s

    # the trials' clock: the timeout less what the run keeps for its final fit
    assert spent.targets == {"logistic_regression": None} and spent.timeout_s == pytest.approx(1 - reserve_s(1))


@pytest.mark.parametrize("workers, cores, expected", [(1, 8, 1), (2, 2, 1), (2, 8, 4), (3, 8, 2), (16, 8, 1)])
def test_threads_per_worker_never_oversubscribe(monkeypatch, workers, cores, expected):
    from tuner.execution import cores as cores_module

    monkeypatch.setattr(cores_module, "cpu_count", lambda: cores)
    assert cores_module.threads_per_worker(workers) == expected
    assert workers * cores_module.threads_per_worker(workers) <= max(cores, workers)


def test_n_jobs_must_be_positive(tmp_path):
    from typer.testing import CliRunner

    from tuner.cli import app

    data = so.write_regression_csv(tmp_path / "small.csv")
    result = CliRunner().invoke(app, ["run", str(data), "--target", "y", "--n-jobs", "0"])
    assert result.exit_code == 2 and "--n-jobs must be at least 1" in result.output
    result = CliRunner().invoke(app, ["worker", "--run", "x", "--storage", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 2 and "no storage at" in result.output


def test_under_a_clock_every_process_stores_the_trials_it_ran(tmp_path):
    import optuna

    data = so.write_regression_csv(tmp_path / "small.csv")
    result = so.run("run", data, "--target", "y", "--models", ",".join(FAMILIES), "--timeout", 10, "--cv", 2,
                    "--n-jobs", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    ran = int(re.search(r"(\d+) trial\(s\) in", result.stdout).group(1))
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    stored = 0
    for family in FAMILIES:
        trials = optuna.load_study(study_name=f"small::{family}", storage=url).get_trials()
        assert [t.number for t in trials] == list(range(len(trials)))  # two writers, one numbering
        assert all(t.state.is_finished() for t in trials)
        stored += len(trials)
    assert stored == ran > 2 * len(FAMILIES)  # what both processes ran (shown by the parent), all stored
