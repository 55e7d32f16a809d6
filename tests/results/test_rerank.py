"""Re-ranking stored results by another metric, and the best K trials across families."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import FloatDistribution
from typer.testing import CliRunner

import tuner
from tuner import api
from tuner.cli import app
from tuner.data.dataset import prepare
from tuner.results import leaderboard as lb
from tuner.results import top_trials
from tuner.search.run_setup import make_config
from tuner.storage.runs import family_study_name, open_storage, require_config, save_config

# (roc_auc, accuracy, log_loss) per trial; ranking by each metric orders the families differently:
#   roc_auc:  lr (trial 0: 0.90) > rf (0.88)
#   accuracy: rf (0.80) > lr (trial 1: 0.75)
#   log_loss: svm (0.15) < rf (0.20) < lr (0.30), lower is better
TRIALS = {
    "logistic_regression": [(0.90, 0.70, 0.30), (0.85, 0.75, 0.40)],
    "random_forest": [(0.88, 0.80, 0.20)],
    "svm": [(0.70, 0.60, 0.15)],
}


def _metrics(auc, acc, ll):
    out = {}
    for name, value in {"roc_auc": auc, "accuracy": acc, "log_loss": ll, "precision": acc, "recall": acc, "f1": acc}.items():
        folds = [value - 0.01, value, value + 0.01]
        out[name] = {"mean": value, "std": 0.01, "folds": folds}
    return out


@pytest.fixture
def crafted_run(mixed_frame, storage_url):
    """A run whose trials carry hand-made scores, written the way the driver stores them."""
    store = open_storage(storage_url, create=True)
    config = make_config(prepare(mixed_frame, "churned"), run="r", metric="roc_auc", models=list(TRIALS), cv=3, seed=0)
    save_config(store, config)
    for family, trials in TRIALS.items():
        study = optuna.create_study(study_name=family_study_name("r", family), storage=store, direction="maximize")
        for i, (auc, acc, ll) in enumerate(trials):
            study.add_trial(optuna.trial.create_trial(
                params={"C": float(i + 1)}, distributions={"C": FloatDistribution(0.1, 10)}, value=auc,
                user_attrs={"metrics": _metrics(auc, acc, ll), "fit_time_s": 0.1}))
    return store, config


def test_reranking_by_another_metric_changes_order_and_best_trial(crafted_run):
    store, config = crafted_run
    by_auc = lb.build(store, config)
    assert [r["model"] for r in by_auc] == ["logistic_regression", "random_forest", "svm"]
    assert by_auc[0]["trial_number"] == 0
    by_acc = lb.build(store, config, "accuracy")
    assert [r["model"] for r in by_acc] == ["random_forest", "logistic_regression", "svm"]
    assert {r["model"]: r["trial_number"] for r in by_acc}["logistic_regression"] == 1  # its best by accuracy
    by_loss = lb.build(store, config, "log_loss")
    assert [r["model"] for r in by_loss] == ["svm", "random_forest", "logistic_regression"]


def test_cli_metric_option_and_validation(crafted_run, storage_url):
    runner = CliRunner()
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--metric", "accuracy", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["model"] for r in rows] == ["random_forest", "logistic_regression", "svm"]
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--metric", "accuracy"])
    assert res.exit_code == 0
    assert "ranked by cross-validated accuracy" in " ".join(res.stdout.split())
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--metric", "rmse"])
    assert res.exit_code == 2
    assert "does not apply to a binary task" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_top_trials_across_families(crafted_run, storage_url):
    store, config = crafted_run
    best = top_trials.build(store, config, "roc_auc", 3)
    assert [(r["model"], r["trial_number"]) for r in best] == [
        ("logistic_regression", 0), ("random_forest", 0), ("logistic_regression", 1)]
    assert best[0]["mean"] == 0.90 and best[0]["std"] == 0.01 and best[0]["params"] == {"C": 1.0}
    assert [r["rank"] for r in best] == [1, 2, 3]
    by_loss = top_trials.build(store, config, "log_loss", 2)
    assert [r["model"] for r in by_loss] == ["svm", "random_forest"]

    runner = CliRunner()
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--top-trials", "2", "--metric", "accuracy",
                              "--format", "json"])
    assert res.exit_code == 0, res.output
    assert [(r["model"], r["trial_number"]) for r in json.loads(res.stdout)] == [
        ("random_forest", 0), ("logistic_regression", 1)]
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--top-trials", "10"])
    assert res.exit_code == 0 and "best 4 trial(s)" in res.stdout and "C=2" in res.stdout
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--top-trials", "0"])
    assert res.exit_code == 2 and "at least 1" in res.output


def test_reranking_a_real_run_sorts_by_the_chosen_metric(mixed_frame, storage_url):
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression", "random_forest"], trials=2, cv=3,
               storage=storage_url, run="r")
    for metric, greater in (("f1", True), ("log_loss", False)):
        board = api.leaderboard(storage=storage_url, run="r", metric=metric)
        means = list(board[f"{metric}_mean"])
        assert means == sorted(means, reverse=greater)
        store = open_storage(storage_url, create=False)
        for row in lb.build(store, require_config(store, "r"), metric, ensemble=False):
            study = optuna.load_study(study_name=family_study_name("r", row["model"]), storage=storage_url)
            values = [t.user_attrs["metrics"][metric]["mean"] for t in study.trials if t.state.is_finished()
                      and "metrics" in t.user_attrs]
            assert row["metrics"][metric]["mean"] == (max(values) if greater else min(values))
