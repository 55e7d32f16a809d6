"""Every core by default: how `tuner` splits them between worker processes and model threads,
what the banner says, and that a fixed seed and trial count still give the same run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import _scaleout as so
import tuner
import tuner.api
from tuner.errors import TunerError
from tuner.execution import cores


@pytest.fixture
def every_core(monkeypatch):
    """No TUNER_N_JOBS (the suite sets it to 1) and a machine of the given core count."""
    monkeypatch.delenv(cores.ENV, raising=False)

    def machine(n: int):
        monkeypatch.setattr(cores, "cpu_count", lambda: n)

    return machine


@pytest.mark.parametrize("n, clocked, families, expected", [
    (8, False, 6, (1, 8)),  # a trial count: one process, every core as model threads (reproducible)
    (8, True, 6, (6, 1)),  # a clock alone: one process per family, up to the cores
    (16, True, 6, (6, 2)),  # the cores left over become threads
    (2, True, 6, (2, 1)),
    (4, True, 1, (1, 4)),  # one family: no second process to share its TPE with
    (1, True, 6, (1, 1)),
])
def test_the_default_uses_every_core(every_core, n, clocked, families, expected):
    every_core(n)
    split = cores.plan(None, clocked=clocked, n_families=families)
    assert (split.workers, split.threads) == expected and split.chosen
    assert split.cores <= n
    assert "every core" in split.describe()


def test_an_explicit_n_jobs_keeps_its_meaning(every_core, monkeypatch):
    every_core(8)
    assert (cores.plan(1, clocked=True, n_families=6).workers, cores.plan(1, clocked=True, n_families=6).threads) == (1, 1)
    split = cores.plan(2, clocked=False, n_families=6)
    assert (split.workers, split.threads, split.chosen) == (2, 4, False)
    assert "--n-jobs" in split.describe()
    monkeypatch.setenv(cores.ENV, "3")  # the environment variable stands in for a missing --n-jobs
    assert cores.plan(None, clocked=True, n_families=6).workers == 3
    assert cores.plan(1, clocked=True, n_families=6).workers == 1  # the argument wins
    assert cores.refit_threads(None) == 3


@pytest.mark.parametrize("value, message", [("0", "must be at least 1"), ("many", "whole number"), ("-2", "at least 1")])
def test_a_bad_environment_variable_is_one_clear_error(every_core, monkeypatch, value, message):
    monkeypatch.setenv(cores.ENV, value)
    with pytest.raises(TunerError, match=message):
        cores.plan(None, clocked=True, n_families=6)


def test_the_banner_says_how_the_cores_are_used(every_core, tmp_path):
    every_core(2)
    data = so.write_regression_csv(tmp_path / "small.csv")
    url = f"sqlite:///{tmp_path / 't.db'}"
    out = so.cli("run", data, "--target", "y", "--models", "lasso", "--trials", 2, "--cv", 2, "--storage", url).output
    assert "Using 2 cores (every core): 1 process × 2 threads per model" in out
    out = so.cli("run", data, "--target", "y", "--models", "lasso", "--trials", 1, "--cv", 2, "--storage", url,
                 "--n-jobs", 1).output
    assert "Using 1 core (--n-jobs): 1 process × 1 thread per model" in out
    result = so.cli("run", data, "--target", "y", "--n-jobs", 0, "--storage", url, code=2)
    assert "--n-jobs must be at least 1" in result.output


def test_a_clocked_default_run_hands_the_driver_one_process_per_core(every_core, monkeypatch, tmp_path):
    every_core(2)
    seen = {}
    from tuner.workflow import run as workflow_run  # the run object makes the driver

    real = workflow_run.Driver

    class Recording(real):
        def __init__(self, *args, **kwargs):
            seen.update(n_jobs=kwargs["n_jobs"], threads=kwargs["threads"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(workflow_run, "Driver", Recording)
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
    df["y"] = df["a"] * 2 + rng.normal(size=60)
    tuner.tune(df, target="y", models=["lasso", "elastic_net"], timeout=6, cv=2,
               storage=f"sqlite:///{tmp_path / 'c.db'}", run="clock")
    assert seen == {"n_jobs": 2, "threads": 1}


def test_a_fixed_seed_and_trial_count_give_the_same_run_on_every_core(every_core, tmp_path):
    """The default for a trial count is one process with every core as threads: the same trials,
    the same scores, run after run (several processes would make TPE depend on timing)."""
    every_core(2)
    rng = np.random.default_rng(7)
    df = pd.DataFrame(rng.normal(size=(150, 4)), columns=list("abcd"))
    df["cat"] = rng.choice(["x", "y", "z"], size=150)
    df["label"] = np.where(df["a"] - df["b"] + (df["cat"] == "x") + rng.normal(scale=0.7, size=150) > 0, "p", "n")
    boards = []
    for i in range(2):
        board = tuner.tune(df, target="label", models=["random_forest", "xgboost", "logistic_regression"], trials=4,
                           cv=3, seed=5, storage=f"sqlite:///{tmp_path / f'r{i}.db'}", run="same")
        boards.append(board.sort_values("model").reset_index(drop=True))
    cols = ["model", "roc_auc_mean", "roc_auc_std", "log_loss_mean", "params", "trials_complete"]
    pd.testing.assert_frame_equal(boards[0][cols], boards[1][cols])
