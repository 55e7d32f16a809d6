"""The metric registry: directions, tasks, multiclass averaging, errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tuner.errors import TunerError
from tuner.evaluation.metrics import DEFAULT_METRIC, METRICS, check_metric, metrics_for, score_all


def test_every_contract_metric_is_registered_with_a_direction():
    expected = {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "top_k_accuracy", "mse", "rmse", "mae", "r2"}
    assert expected <= set(METRICS)
    assert not METRICS["log_loss"].greater_is_better and not METRICS["rmse"].greater_is_better
    assert METRICS["roc_auc"].greater_is_better and METRICS["r2"].greater_is_better
    assert DEFAULT_METRIC == {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def test_metrics_per_task():
    assert {m.name for m in metrics_for("regression")} == {"mse", "rmse", "mae", "r2", "cosine_similarity"}
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


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", range(6))
def test_numpy_classification_metrics_match_scikit_learn(k, seed):
    """tuner's NumPy metrics (fast: every fold scores all of them twice) equal scikit-learn's."""
    from sklearn import metrics as skm

    from tuner.evaluation.metrics import METRICS, top_k_for

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    y = rng.integers(0, k, n)
    if seed == 0:
        y[:] = np.arange(n) % k  # every class present
    proba = rng.dirichlet(np.ones(k), n)
    if seed == 1:
        proba = np.round(proba, 1)  # ties in the ranking
        proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1) if seed % 2 else rng.integers(0, k, n)
    labels = None if k == 2 else list(range(k))
    average = "binary" if k == 2 else "macro"
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average=average, labels=labels, zero_division=0),
        "recall": skm.recall_score(y, pred, average=average, labels=labels, zero_division=0),
        "f1": skm.f1_score(y, pred, average=average, labels=labels, zero_division=0),
        "log_loss": skm.log_loss(y, np.clip(proba, 1e-15, 1.0), labels=list(range(k))),
    }
    present = len(np.unique(y))
    if k == 2 and present == 2:
        expected["roc_auc"] = skm.roc_auc_score(y, proba[:, 1])
    elif k > 2 and present == k:
        expected["roc_auc"] = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(k)))
    if k > 2:
        expected["top_k_accuracy"] = skm.top_k_accuracy_score(y, proba, k=top_k_for(k), labels=list(range(k)))
    for name, value in expected.items():
        arg = proba if METRICS[name].needs == "proba" else pred
        assert METRICS[name].fn(y, arg, k) == pytest.approx(value, rel=1e-9, abs=1e-12), name
    if present < k:  # a class missing from the split: ROC-AUC is undefined, NaN
        assert np.isnan(METRICS["roc_auc"].fn(y, proba, k))
    # score_all (what every fold calls) shares one confusion matrix between the label metrics
    scored = score_all("binary" if k == 2 else "multiclass", y, pred, proba, k)
    assert list(scored) == [m.name for m in metrics_for("binary" if k == 2 else "multiclass")]
    for name, value in expected.items():
        assert scored[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("seed", range(20))
def testaverage_ranks_match_scipy_rankdata(seed):
    from scipy.stats import rankdata

    from tuner.evaluation.metrics import average_ranks

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    x = rng.integers(0, int(rng.integers(1, 12)), n).astype(float) if seed % 2 else rng.normal(size=n)
    assert np.array_equal(average_ranks(x), rankdata(x))


@pytest.mark.parametrize("seed", range(12))
def test_split_ranks_match_scipy_rankdata_split_by_split_and_column_by_column(seed):
    from scipy.stats import rankdata

    from tuner.evaluation.metrics import split_ranks

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, int(rng.integers(1, 5)))
    n, k = int(sizes.sum()), int(rng.integers(1, 6))
    x = rng.integers(0, int(rng.integers(1, 6)), (n, k)).astype(float) if seed % 2 else rng.normal(size=(n, k))
    group = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ranks = split_ranks(x, group, starts)
    for s, (start, size) in enumerate(zip(starts, sizes)):
        assert np.array_equal(ranks[start:start + size], rankdata(x[start:start + size], axis=0))


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 3), ("multiclass", 11), ("regression", 0)])
@pytest.mark.parametrize("seed", range(4))
def test_a_trials_folds_scored_together_equal_each_fold_scored_alone_bit_for_bit(task, k, seed):
    """The driver scores a fold's headline metric alone (for the pruner) and every metric of
    all folds together at the trial's end: the two must agree exactly."""
    from tuner.evaluation.metrics import score_splits

    rng = np.random.default_rng(seed)
    splits = []
    for size in rng.integers(3, 60, 6):
        if task == "regression":
            y = rng.normal(size=size) * 10
            splits.append((y, y + rng.normal(size=size), None))
        else:
            y = rng.integers(0, k, size)
            proba = rng.dirichlet(np.ones(k), size)
            if seed % 2:
                proba = np.round(proba, 1)  # ties
            splits.append((y, proba.argmax(axis=1), proba))
    together = score_splits(task, splits, k)
    assert [list(t) for t in together] == [[m.name for m in metrics_for(task)]] * len(splits)
    for split, scores in zip(splits, together):
        alone = score_all(task, *split, k)
        assert alone.keys() == scores.keys()
        for name in scores:
            assert (np.isnan(alone[name]) and np.isnan(scores[name])) or alone[name] == scores[name], name
            assert score_splits(task, [split], k, names=[name]) == [{name: alone[name]}] or np.isnan(alone[name])


def test_scoring_no_split_and_a_split_without_probabilities():
    from tuner.evaluation.metrics import score_splits

    assert score_splits("binary", [], 2) == []
    scores = score_all("binary", np.array([0, 1, 1]), np.array([0, 1, 0]), None, 2)
    assert scores["accuracy"] == pytest.approx(2 / 3) and np.isnan(scores["roc_auc"]) and np.isnan(scores["log_loss"])


@pytest.mark.parametrize("seed", range(4))
def test_numpy_regression_metrics_match_scikit_learn(seed):
    from sklearn import metrics as skm

    from tuner.evaluation.metrics import METRICS

    rng = np.random.default_rng(seed)
    y = rng.normal(size=30) * 100
    if seed == 3:
        y[:] = 7.0  # constant target
    pred = y + rng.normal(size=30) * (0 if seed == 2 else 10)
    expected = {"mse": skm.mean_squared_error(y, pred), "rmse": skm.root_mean_squared_error(y, pred),
                "mae": skm.mean_absolute_error(y, pred), "r2": skm.r2_score(y, pred)}
    for name, value in expected.items():
        assert METRICS[name].fn(y, pred, 0) == pytest.approx(value, rel=1e-9, abs=1e-12), name


def _reference(name, y, pred, proba, k, w):
    """scikit-learn's value of ``name`` (Brier multiclass: the sum of the per-class binary scores)."""
    average = "binary" if k == 2 else "macro"
    if name == "balanced_accuracy":
        return skm.balanced_accuracy_score(y, pred, sample_weight=w)
    if name == "mcc":
        return skm.matthews_corrcoef(y, pred, sample_weight=w)
    if name.startswith("f_beta@"):
        return skm.fbeta_score(y, pred, beta=float(name.split("@")[1]), average=average, sample_weight=w,
                               zero_division=0)
    if name == "pr_auc":
        if k == 2:
            return skm.average_precision_score(y, proba[:, 1], sample_weight=w)
        return skm.average_precision_score(np.eye(k)[y], proba, average="macro", sample_weight=w)
    if name == "brier":
        if k == 2:
            return skm.brier_score_loss(y, proba[:, 1], sample_weight=w)
        return sum(skm.brier_score_loss(y == j, proba[:, j], sample_weight=w) for j in range(k))
    if name.startswith("top_k_accuracy@"):
        return skm.top_k_accuracy_score(y, proba, k=int(name.split("@")[1]), labels=np.arange(k), sample_weight=w)
    raise AssertionError(name)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name, k", [(name, k) for name in ("balanced_accuracy", "mcc", "f_beta@2", "f_beta@0.5",
                                                            "pr_auc", "brier") for k in (2, 5)]
                         + [("top_k_accuracy@2", 5)])  # top-k: a multiclass metric
def test_the_new_metrics_match_scikit_learn_weighted_and_not(name, k, weighted):
    rng = np.random.default_rng(k * 10 + weighted)
    n = 400
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[:, 0] = np.round(proba[:, 0], 1)  # ties among scores, as trees give
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    w = rng.uniform(0, 3, n) if weighted else None
    task = "binary" if k == 2 else "multiclass"
    got = score_all(task, y, pred, proba, k, w, metric=name)[name]
    assert got == pytest.approx(_reference(name, y, pred, proba, k, w), abs=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_cosine_similarity_matches_keras(weighted):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 200)
    proba = rng.dirichlet(np.ones(4), 200)
    w = rng.uniform(0, 2, 200) if weighted else None
    got = score_all("multiclass", y, proba.argmax(axis=1), proba, 4, w)["cosine_similarity"]
    reference = keras.metrics.CosineSimilarity()
    reference.update_state(np.eye(4)[y], proba, sample_weight=w)
    assert got == pytest.approx(float(reference.result()), abs=1e-6)
    # regression: the cosine of the true and predicted value vectors, weighted as sqrt(w) * each
    values, predicted = rng.normal(size=200), rng.normal(size=200)
    got = score_all("regression", values, predicted, None, 0, w)["cosine_similarity"]
    scale = np.ones(200) if w is None else np.sqrt(w)
    expected = -float(keras.losses.cosine_similarity(scale * values, scale * predicted, axis=-1))
    assert got == pytest.approx(expected, abs=1e-6)


def test_metrics_with_a_parameter_are_named_and_checked():
    assert check_metric("top_k_accuracy@5", "multiclass").name == "top_k_accuracy@5"
    assert check_metric("f_beta@0.50", "binary").name == "f_beta@0.5"
    assert "f_beta@2" in {m.name for m in metrics_for("binary", "f_beta@2")}
    assert "f_beta@2" not in {m.name for m in metrics_for("binary")}
    with pytest.raises(TunerError, match="needs its beta: e.g. f_beta@2"):
        check_metric("f_beta", "binary")
    with pytest.raises(TunerError, match="k must be a whole number"):
        check_metric("top_k_accuracy@1.5", "multiclass")
    with pytest.raises(TunerError, match="beta must be a positive number"):
        check_metric("f_beta@-1", "binary")
    with pytest.raises(TunerError, match="takes no parameter"):
        check_metric("accuracy@3", "binary")
    with pytest.raises(TunerError, match="does not apply to a binary task"):
        check_metric("top_k_accuracy@2", "binary")
