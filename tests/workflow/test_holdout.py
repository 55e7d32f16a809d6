"""Held-out test set: split before tuning, refit each family's best on the training part, score once."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.data.dataset import load_for_run, load_split_for_run, prepare, read_table, split_holdout
from tuner.errors import TunerError
from tuner.evaluation.cross_validation import predict_outputs
from tuner.evaluation.estimator import build_estimator, space_context
from tuner.evaluation.folds import make_folds
from tuner.evaluation.metrics import score_all
from tuner.evaluation.threshold import labels as threshold_labels
from tuner.models import calibrated
from tuner.results import leaderboard as lb
from tuner.storage.runs import open_storage, require_config
from tuner.workflow import derived


@pytest.fixture
def churn_csv(tmp_path, mixed_frame):
    path = tmp_path / "churn.csv"
    mixed_frame.to_csv(path, index=False)
    return str(path)


def test_split_is_stratified_seeded_and_complete(mixed_frame):
    ds = prepare(mixed_frame, "churned")
    train, test = split_holdout(ds, 0.25, seed=3)
    again_train, again_test = split_holdout(ds, 0.25, seed=3)
    assert len(test.y) == 40 and len(train.y) == 120
    pd_eq = lambda a, b: a.X.equals(b.X) and np.array_equal(a.y, b.y)  # noqa: E731
    assert pd_eq(train, again_train) and pd_eq(test, again_test)
    other_train, _ = split_holdout(ds, 0.25, seed=4)
    assert not np.array_equal(other_train.y, train.y) or not other_train.X.equals(train.X)
    # stratified: class shares agree to within one row
    share = np.bincount(ds.y) / len(ds.y)
    assert np.all(np.abs(np.bincount(test.y) - share * len(test.y)) <= 1)
    # disjoint and complete: the rows of both parts are the rows of the data
    rows = lambda d: {tuple(map(str, r)) for r in d.X.itertuples(index=False)}  # noqa: E731
    assert rows(train) | rows(test) == rows(ds) and not rows(train) & rows(test)
    assert train.fingerprint == test.fingerprint == ds.fingerprint
    assert any("held out 40 of 160 rows" in n for n in train.notes)


def test_regression_split_and_bad_fractions(regression_frame):
    ds = prepare(regression_frame, "price")
    train, test = split_holdout(ds, 0.2, seed=0)
    assert len(test.y) == 30 and len(train.y) == 120
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(TunerError, match="between 0 and 1"):
            split_holdout(ds, bad, seed=0)


def test_tuning_sees_only_the_training_part_and_test_scores_equal_an_independent_refit(churn_csv, storage_url):
    tuner.tune(churn_csv, target="churned", models=["logistic_regression", "random_forest"], trials=2, cv=3,
               test_size=0.25, storage=storage_url, run="r")
    store = open_storage(storage_url, create=False)
    config = require_config(store, "r")
    assert config.test_size == 0.25 and config.n_rows == 120

    # the split, made independently of tuner's helper
    full = prepare(read_table(churn_csv), "churned")
    idx_train, idx_test = train_test_split(np.arange(160), test_size=0.25, random_state=0, stratify=full.y)
    idx_train, idx_test = np.sort(idx_train), np.sort(idx_test)
    train, test = load_split_for_run(config)
    assert train.X.equals(full.X.iloc[idx_train].reset_index(drop=True))
    assert np.array_equal(test.y, full.y[idx_test])
    assert load_for_run(config).X.equals(train.X)  # what export refits on: the training part

    rows = lb.build(store, config)
    assert all("test_scores" in r for r in rows)  # the ensemble's too: its members refit on the training part
    assert all("train_scores" in r for r in rows if r["model"] != "ensemble")  # from the CV folds' training rows
    for r in rows:
        est = build_estimator(config, r["model"], r["params"], space_context(config))
        est.fit(full.X.iloc[idx_train], full.y[idx_train])
        est = calibrated.wrap(est, r.get("calibration"), 2)  # as the row's model answers: through its map ...
        pred, proba = predict_outputs(est, full.X.iloc[idx_test], "binary", 2)
        cut = (r.get("threshold") or {}).get("threshold")
        if cut is not None:  # ... and labelled at its decision threshold
            pred = threshold_labels(proba[:, 1], cut)
        expected = score_all("binary", full.y[idx_test], pred, proba, 2)
        assert set(r["test_scores"]) == set(expected)  # every metric of the task
        for name, value in expected.items():
            assert r["test_scores"][name] == pytest.approx(value, abs=1e-12), (r["model"], name)
        if r["model"] == "ensemble":
            continue
        # train−CV: mean score on each CV fold's own training rows, minus the CV score
        fold_train_aucs = []
        for tr, _ in make_folds(train.y, "binary", 3, seed=0):
            fold_est = build_estimator(config, r["model"], r["params"], space_context(config)).fit(train.X.iloc[tr], train.y[tr])
            pred, proba = predict_outputs(fold_est, train.X.iloc[tr], "binary", 2)
            fold_train_aucs.append(score_all("binary", train.y[tr], pred, proba, 2)["roc_auc"])
        assert r["train_scores"]["roc_auc"] == pytest.approx(np.mean(fold_train_aucs), abs=1e-9)
        assert r["overfitting"]["roc_auc"] == pytest.approx(np.mean(fold_train_aucs) - r["metrics"]["roc_auc"]["mean"])

    # stored in the family study, keyed by the best trial's number
    study = optuna.load_study(study_name="r::logistic_regression", storage=storage_url)
    entry = study.user_attrs["holdout"][str(rows[[r["model"] for r in rows].index("logistic_regression")]["trial_number"])]
    assert entry["n_test"] == 40 and entry["n_train"] == 120


def test_leaderboard_output_says_ranking_is_by_cv_and_rescoring_after_a_new_best(churn_csv, storage_url):
    runner = CliRunner()
    res = runner.invoke(app, ["run", churn_csv, "--target", "churned", "--models", "logistic_regression",
                              "--trials", "1", "--cv", "3", "--test-size", "0.25", "--storage", storage_url, "--run", "r"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "held out 40 of 160 rows" in text
    assert "ranked by cross-validated roc_auc" in text and "looked at once after tuning" in text
    assert "roc_auc (test)" in text and "train−CV" in text

    board = json.loads(runner.invoke(app, ["leaderboard", "--storage", storage_url, "--format", "json"]).stdout)
    before = board[0]["test_scores"]
    # forget the stored scores (as if the best trial were new): the leaderboard scores it again, once
    study = optuna.load_study(study_name="r::logistic_regression", storage=storage_url)
    study.set_user_attr("holdout", {})
    store = open_storage(storage_url, create=False)
    assert "test_scores" not in lb.build(store, require_config(store, "r"))[0]
    board = json.loads(runner.invoke(app, ["leaderboard", "--storage", storage_url, "--format", "json"]).stdout)
    assert board[0]["test_scores"] == pytest.approx(before)
    assert list(optuna.load_study(study_name="r::logistic_regression", storage=storage_url).user_attrs["holdout"]) == [
        str(board[0]["trial_number"])]

    # continuing without --test-size keeps the split; a different one is refused
    res = runner.invoke(app, ["run", churn_csv, "--target", "churned", "--trials", "1", "--storage", storage_url, "--run", "r"])
    assert res.exit_code == 0, res.output
    assert "held out 40 of 160 rows" in res.stdout
    res = runner.invoke(app, ["run", churn_csv, "--target", "churned", "--trials", "1", "--test-size", "0.3",
                              "--storage", storage_url, "--run", "r"])
    assert res.exit_code == 2 and "--test-size" in res.output
    res = runner.invoke(app, ["run", churn_csv, "--target", "churned", "--test-size", "2", "--storage", storage_url])
    assert res.exit_code == 2 and "between 0 and 1" in res.output


def test_regression_run_without_test_split_still_shows_overfitting(regression_frame, storage_url):
    board = tuner.tune(regression_frame, target="price", models=["lasso"], trials=1, cv=3, storage=storage_url, run="r")
    assert "overfitting_rmse" in board.columns and "test_rmse" not in board.columns
    store = open_storage(storage_url, create=False)
    row = lb.build(store, require_config(store, "r"))[0]
    assert "test_scores" not in row
    assert row["overfitting"]["rmse"] == pytest.approx(row["train_scores"]["rmse"] - row["metrics"]["rmse"]["mean"])
    # without a test split nothing is refit, so reading the leaderboard never needs the data
    assert derived.ensure_scores(store, require_config(store, "r")) is None
    study = optuna.load_study(study_name="r::lasso", storage=storage_url)
    assert "holdout" not in study.user_attrs


def test_the_driver_refuses_the_full_data_of_a_run_with_a_test_set(churn_csv, storage_url):
    from tuner.search.driver import Driver

    tuner.tune(churn_csv, target="churned", models=["logistic_regression"], trials=1, cv=3, test_size=0.25,
               storage=storage_url, run="r")
    store = open_storage(storage_url, create=False)
    config = require_config(store, "r")
    with pytest.raises(TunerError, match="holds out a test set"):
        Driver(store, config, prepare(read_table(churn_csv), "churned"))
    Driver(store, config, load_for_run(config))  # the training part is what it tunes on


def test_the_final_model_is_scored_as_it_is_not_refit_again(mixed_frame, storage_url, monkeypatch):
    """With a test part the run's final model comes first; the held-out scores reuse it for its family."""
    from tuner.results import holdout as holdout_scores

    calls = []
    real = holdout_scores.refit_and_score

    def spy(config, family, params, train, test, n_jobs=1, fitted=None, **more):
        calls.append((family, fitted is not None))
        return real(config, family, params, train, test, n_jobs, fitted=fitted, **more)

    monkeypatch.setattr(derived, "refit_and_score", spy)
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression", "random_forest"], trials=2, cv=3,
               test_size=0.25, storage=storage_url, run="r")
    kept = optuna.load_study(study_name="r", storage=storage_url).user_attrs["final_model"]
    reused = [family for family, was_fitted in calls if was_fitted]
    assert reused == [kept["family"]]
    assert len(calls) == len({family for family, _ in calls})  # one scoring per row, none twice
    store = open_storage(storage_url, create=False)
    rows = {r["model"]: r for r in lb.build(store, require_config(store, "r"))}
    assert rows[kept["family"]]["test_scores"]
