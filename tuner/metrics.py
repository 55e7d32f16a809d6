"""Metric registry: name -> how to compute it, its direction, and the tasks it fits.

Multiclass averaging: precision / recall / F1 are macro averages (every class
counts the same); ROC-AUC is one-vs-rest, macro averaged; top-k accuracy uses
k = min(3, n_classes - 1). For binary problems the positive class is the second of
the sorted class labels (index 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import TunerError


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    tasks: tuple[str, ...]
    needs: str  # "label" (predicted class), "proba" (class probabilities), "value" (regression)
    fn: Callable

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"


# Classification metrics in NumPy, from one confusion matrix or one ranking: every fold of
# every trial scores all of them twice (test rows and training rows), and scikit-learn's
# input validation costs 5-12 ms per call — about 0.5 s of a trial on small data, more
# than the models themselves. tests/test_metrics.py checks them against scikit-learn.
def _confusion(y, p, k):
    y, p = np.asarray(y, dtype=np.int64), np.asarray(p, dtype=np.int64)
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k)  # rows: true class, columns: predicted


def _ratio(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)  # zero_division=0


def _prf(y, p, k):
    cm = _confusion(y, p, max(k, 2))
    tp = np.diag(cm).astype(float)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
    f1 = _ratio(2 * tp, predicted + actual)
    if k == 2:  # the positive class is code 1
        return precision[1], recall[1], f1[1]
    return precision.mean(), recall.mean(), f1.mean()  # macro over every class 0..K-1


def _accuracy(y, p, k):
    return float(np.mean(np.asarray(y) == np.asarray(p)))


def _precision(y, p, k):
    return float(_prf(y, p, k)[0])


def _recall(y, p, k):
    return float(_prf(y, p, k)[1])


def _f1(y, p, k):
    return float(_prf(y, p, k)[2])


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n+ n-), ties counted half: the area under the ROC curve."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")  # undefined on a split with one class
    ranks = average_ranks(np.asarray(score, dtype=float))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average: ``scipy.stats.rankdata`` without its
    per-call overhead (~0.1 ms, paid per class on every fold)."""
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    new_value = np.empty(len(x), dtype=bool)
    new_value[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_value[1:])
    starts = np.flatnonzero(new_value)
    sizes = np.diff(np.append(starts, len(x)))
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(starts + (sizes + 1) / 2, sizes)
    return ranks


def column_ranks(x: np.ndarray) -> np.ndarray:
    """:func:`average_ranks` of every column of a 2-D array at once (one sort for all classes)."""
    n, k = x.shape
    order = np.argsort(x, axis=0, kind="mergesort")
    ordered = np.take_along_axis(x, order, axis=0)
    new_value = np.ones((n, k), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=new_value[1:])
    group = np.cumsum(new_value, axis=0) - 1 + np.arange(k) * n  # tie groups, numbered apart per column
    positions = np.broadcast_to(np.arange(1, n + 1, dtype=float)[:, None], (n, k)).ravel()
    sums = np.bincount(group.ravel(), weights=positions, minlength=n * k)
    sizes = np.bincount(group.ravel(), minlength=n * k)
    ranks = np.empty((n, k))
    np.put_along_axis(ranks, order, (sums / np.maximum(sizes, 1))[group], axis=0)
    return ranks


def _roc_auc(y, proba, k):
    y = np.asarray(y)
    if k == 2:
        return _binary_auc(y == 1, proba[:, 1])
    # one-vs-rest, macro: class c's scores against every other row, all classes in one ranking pass
    proba = np.asarray(proba, dtype=float)
    positive = y[:, None] == np.arange(k)
    n_pos = positive.sum(axis=0).astype(float)
    n_neg = len(y) - n_pos
    if np.any(n_pos == 0) or np.any(n_neg == 0):
        return float("nan")  # undefined on a split without some class
    rank_sums = (column_ranks(proba) * positive).sum(axis=0)
    return float(np.mean((rank_sums - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)))


def _log_loss(y, proba, k):
    picked = np.asarray(proba, dtype=float)[np.arange(len(y)), np.asarray(y, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(picked, 1e-15, 1.0))))


def _top_k(y, proba, k):
    top = np.argsort(proba, axis=1, kind="mergesort")[:, ::-1][:, :top_k_for(k)]
    return float(np.mean((top == np.asarray(y)[:, None]).any(axis=1)))


def _diff(y, p):
    return np.asarray(y, dtype=float) - np.asarray(p, dtype=float)


def _mse(y, p):
    return float(np.mean(_diff(y, p) ** 2))


def _r2(y, p):
    y = np.asarray(y, dtype=float)
    residual = float(np.sum(_diff(y, p) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:  # a constant target on this split: as scikit-learn (force_finite)
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total


def top_k_for(n_classes: int) -> int:
    return max(1, min(3, n_classes - 1))


_CLS = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", True, _CLS, "label", _accuracy),
        Metric("precision", True, _CLS, "label", _precision),
        Metric("recall", True, _CLS, "label", _recall),
        Metric("f1", True, _CLS, "label", _f1),
        Metric("roc_auc", True, _CLS, "proba", _roc_auc),
        Metric("log_loss", False, _CLS, "proba", _log_loss),
        Metric("top_k_accuracy", True, ("multiclass",), "proba", _top_k),
        Metric("mse", False, ("regression",), "value", lambda y, p, k: _mse(y, p)),
        Metric("rmse", False, ("regression",), "value", lambda y, p, k: float(np.sqrt(_mse(y, p)))),
        Metric("mae", False, ("regression",), "value", lambda y, p, k: float(np.mean(np.abs(_diff(y, p))))),
        Metric("r2", True, ("regression",), "value", lambda y, p, k: _r2(y, p)),
    ]
}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise TunerError(f"unknown metric {name!r}; choose one of: {', '.join(METRICS)}") from None


def metrics_for(task: str) -> list[Metric]:
    return [m for m in METRICS.values() if task in m.tasks]


def check_metric(name: str | None, task: str) -> Metric:
    """The metric to optimise for ``task``: the default when ``name`` is None."""
    metric = get_metric(name or DEFAULT_METRIC[task])
    if task not in metric.tasks:
        valid = ", ".join(m.name for m in metrics_for(task))
        raise TunerError(f"metric {metric.name!r} does not apply to a {task} task; choose one of: {valid}")
    return metric


def _label_scores(y, p, k) -> dict[str, float]:
    """accuracy, precision, recall and F1 from one confusion matrix (each alone builds its own)."""
    precision, recall, f1 = _prf(y, p, k)
    return {"accuracy": _accuracy(y, p, k), "precision": float(precision), "recall": float(recall), "f1": float(f1)}


def score_all(task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int) -> dict[str, float]:
    """Every metric of ``task`` on one evaluation split (on every fold of every trial: kept cheap)."""
    out = _label_scores(y_true, y_pred, n_classes) if task in _CLS else {}
    for m in metrics_for(task):
        if m.name in out:
            continue
        arg = proba if m.needs == "proba" else y_pred
        if arg is None:
            out[m.name] = float("nan")
            continue
        try:
            out[m.name] = float(m.fn(y_true, arg, n_classes))  # NaN where undefined on this split
        except ValueError:  # e.g. ROC-AUC on a fold that holds one class only
            out[m.name] = float("nan")
    return out
