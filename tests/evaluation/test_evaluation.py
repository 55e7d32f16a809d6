"""Folds are seeded and shared; per-fold scores and times are recorded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from search_spaces import Preprocessing, SpaceContext
from tuner.data.dataset import prepare
from tuner.data.preprocessing import build_pipeline
from tuner.errors import TunerError
from tuner.evaluation.cross_validation import cross_validate, summarise
from tuner.evaluation.folds import make_folds


def test_folds_are_deterministic_stratified_and_cover_every_row():
    y = np.array([0] * 30 + [1] * 10)
    a = make_folds(y, "binary", 5, seed=3)
    b = make_folds(y, "binary", 5, seed=3)
    assert all((x[1] == z[1]).all() for x, z in zip(a, b))
    assert sorted(np.concatenate([te for _, te in a]).tolist()) == list(range(40))
    assert all(np.bincount(y[te]).tolist() == [6, 2] for _, te in a)
    assert any((x[1] != z[1]).any() for x, z in zip(a, make_folds(y, "binary", 5, seed=4)))


def test_repeated_folds():
    y = np.arange(30, dtype=float)
    assert len(make_folds(y, "regression", 3, seed=0, repeats=2)) == 6


def test_fold_errors():
    with pytest.raises(TunerError, match="rarest class has only 2"):
        make_folds(np.array([0] * 20 + [1] * 2), "binary", 5, seed=0)
    # multiclass: a class rarer than the folds is kept (some test folds lack it)
    folds = make_folds(np.array([0] * 20 + [1] * 20 + [2] * 3), "multiclass", 5, seed=0)
    assert len(folds) == 5 and all(2 in np.array([0] * 20 + [1] * 20 + [2] * 3)[tr] for tr, _ in folds)
    with pytest.raises(TunerError, match="rarest class has only 1"):
        make_folds(np.array([0] * 20 + [1] * 20 + [2] * 1), "multiclass", 5, seed=0)
    with pytest.raises(TunerError, match="at least 2"):
        make_folds(np.zeros(10), "regression", 1, seed=0)


def test_cross_validate_records_every_metric_and_times(mixed_frame):
    ds = prepare(mixed_frame, "churned")
    ctx = SpaceContext(task="binary", n_rows=120, n_features=3, n_classes=2)
    est = build_pipeline(LogisticRegression(), {}, ctx, Preprocessing(), ds.schema)
    folds = make_folds(ds.y, ds.task, 4, seed=0)
    results = cross_validate(est, ds.X, ds.y, folds, ds.task, 2)
    assert len(results) == 4 and all(r.fit_time_s > 0 for r in results)
    summary = summarise(results)
    assert set(summary["metrics"]) == {"accuracy", "balanced_accuracy", "precision", "recall", "f1", "mcc",
                                        "roc_auc", "pr_auc", "log_loss", "brier", "cosine_similarity"}
    assert len(summary["metrics"]["roc_auc"]["folds"]) == 4
    assert summary["metrics"]["roc_auc"]["mean"] > 0.8
    assert summary["predict_time_ms_per_1k"] > 0


def test_a_fold_from_a_builder_scores_as_a_clone_and_training_rows_only_when_asked(mixed_frame):
    from tuner.evaluation.cross_validation import evaluate_fold

    ds = prepare(mixed_frame, "churned")
    ctx = SpaceContext(task="binary", n_rows=120, n_features=3, n_classes=2)

    def build():
        return build_pipeline(LogisticRegression(), {}, ctx, Preprocessing(), ds.schema)

    fold = make_folds(ds.y, ds.task, 4, seed=0)[1]
    cloned, _ = evaluate_fold(build(), ds.X, ds.y, fold, 1, ds.task, 2)
    built, _ = evaluate_fold(build, ds.X, ds.y, fold, 1, ds.task, 2)
    assert built.scores == cloned.scores and built.train_scores == cloned.train_scores
    assert cloned.train_scores["roc_auc"] > 0.5 and cloned.train_predict_time_s > 0
    test_only, _ = evaluate_fold(build, ds.X, ds.y, fold, 1, ds.task, 2, score_train=False)
    assert test_only.scores == cloned.scores
    assert test_only.train_scores is None and test_only.train_predict_time_s == 0.0
    # summarise: the training-row means come from the folds that scored them
    summary = summarise([cloned, test_only])
    assert summary["train_metrics"]["roc_auc"] == pytest.approx(cloned.train_scores["roc_auc"])


def test_a_fold_scored_on_its_headline_alone_gets_every_metric_from_score_folds(mixed_frame):
    """The driver scores each fold's headline metric (the pruner's) and every metric of a
    complete trial's folds together at its end: the same scores as scoring each fold fully."""
    from tuner.evaluation.cross_validation import evaluate_fold, score_folds

    ds = prepare(mixed_frame, "churned")
    ctx = SpaceContext(task="binary", n_rows=120, n_features=3, n_classes=2)

    def build():
        return build_pipeline(LogisticRegression(), {}, ctx, Preprocessing(), ds.schema)

    folds = make_folds(ds.y, ds.task, 4, seed=0)
    full = [evaluate_fold(build, ds.X, ds.y, f, i, ds.task, 2, score_train=i < 2)[0] for i, f in enumerate(folds)]
    lazy = [evaluate_fold(build, ds.X, ds.y, f, i, ds.task, 2, score_train=i < 2, headline="roc_auc")[0]
            for i, f in enumerate(folds)]
    assert all(list(r.scores) == ["roc_auc"] and r.outputs is not None for r in lazy)
    assert [r.scores["roc_auc"] for r in lazy] == [r.scores["roc_auc"] for r in full]
    score_folds(lazy, ds.task, 2)
    assert [r.scores for r in lazy] == [r.scores for r in full]
    assert [r.train_scores for r in lazy] == [r.train_scores for r in full]
    assert lazy[3].train_scores is None
    assert all(r.outputs is None and r.train_outputs is None for r in lazy)  # predictions let go
