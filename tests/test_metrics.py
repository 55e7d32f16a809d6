"""The metric registry: directions, tasks, multiclass averaging, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tuner.errors import TunerError
from tuner.metrics import DEFAULT_METRIC, METRICS, check_metric, metrics_for, score_all


def test_every_contract_metric_is_registered_with_a_direction():
    expected = {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "top_k_accuracy", "mse", "rmse", "mae", "r2"}
    assert expected <= set(METRICS)
    assert not METRICS["log_loss"].greater_is_better and not METRICS["rmse"].greater_is_better
    assert METRICS["roc_auc"].greater_is_better and METRICS["r2"].greater_is_better
    assert DEFAULT_METRIC == {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def test_metrics_per_task():
    assert {m.name for m in metrics_for("regression")} == {"mse", "rmse", "mae", "r2"}
    assert "top_k_accuracy" not in {m.name for m in metrics_for("binary")}
    assert "top_k_accuracy" in {m.name for m in metrics_for("multiclass")}


def test_metric_errors():
    with pytest.raises(TunerError, match="unknown metric 'auc'.*roc_auc"):
        check_metric("auc", "binary")
    with pytest.raises(TunerError, match="does not apply to a regression task"):
        check_metric("f1", "regression")
    assert check_metric(None, "multiclass").name == "accuracy"


def test_multiclass_scores_use_macro_and_ovr():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2, 3], 25)
    proba = rng.dirichlet(np.ones(4), size=100)
    pred = proba.argmax(1)
    s = score_all("multiclass", y, pred, proba, 4)
    assert s["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert s["top_k_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, proba, k=3))
    assert set(s) == {m.name for m in metrics_for("multiclass")}


def test_binary_and_regression_scores():
    y = np.array([0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    s = score_all("binary", y, proba.argmax(1), proba, 2)
    assert s["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert s["recall"] == pytest.approx(2 / 3)
    r = score_all("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), None, 0)
    assert r["mse"] == pytest.approx(4 / 3) and r["rmse"] == pytest.approx(np.sqrt(4 / 3)) and r["mae"] == pytest.approx(2 / 3)
