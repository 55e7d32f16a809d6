"""Metric registry: name -> how to compute it, its direction, and the tasks it fits.

Multiclass averaging: precision / recall / F1 are macro averages (every class
counts the same); ROC-AUC is one-vs-rest, macro averaged; top-k accuracy uses
k = min(3, n_classes - 1). For binary problems the positive class is the second of
the sorted class labels (index 1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn import exceptions as skm_exceptions
from sklearn import metrics as skm

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


def _precision(y, p, k):
    return skm.precision_score(y, p, average="binary" if k == 2 else "macro", labels=None if k == 2 else range(k), zero_division=0)


def _recall(y, p, k):
    return skm.recall_score(y, p, average="binary" if k == 2 else "macro", labels=None if k == 2 else range(k), zero_division=0)


def _f1(y, p, k):
    return skm.f1_score(y, p, average="binary" if k == 2 else "macro", labels=None if k == 2 else range(k), zero_division=0)


def _roc_auc(y, proba, k):
    if k == 2:
        return skm.roc_auc_score(y, proba[:, 1])
    return skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=list(range(k)))


def _log_loss(y, proba, k):
    return skm.log_loss(y, np.clip(proba, 1e-15, 1.0), labels=list(range(k)))


def _top_k(y, proba, k):
    return skm.top_k_accuracy_score(y, proba, k=top_k_for(k), labels=list(range(k)))


def top_k_for(n_classes: int) -> int:
    return max(1, min(3, n_classes - 1))


_CLS = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", True, _CLS, "label", lambda y, p, k: skm.accuracy_score(y, p)),
        Metric("precision", True, _CLS, "label", _precision),
        Metric("recall", True, _CLS, "label", _recall),
        Metric("f1", True, _CLS, "label", _f1),
        Metric("roc_auc", True, _CLS, "proba", _roc_auc),
        Metric("log_loss", False, _CLS, "proba", _log_loss),
        Metric("top_k_accuracy", True, ("multiclass",), "proba", _top_k),
        Metric("mse", False, ("regression",), "value", lambda y, p, k: skm.mean_squared_error(y, p)),
        Metric("rmse", False, ("regression",), "value", lambda y, p, k: skm.root_mean_squared_error(y, p)),
        Metric("mae", False, ("regression",), "value", lambda y, p, k: skm.mean_absolute_error(y, p)),
        Metric("r2", True, ("regression",), "value", lambda y, p, k: skm.r2_score(y, p)),
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


def score_all(task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int) -> dict[str, float]:
    """Every metric of ``task`` on one evaluation split."""
    out = {}
    for m in metrics_for(task):
        arg = proba if m.needs == "proba" else y_pred
        if arg is None:
            out[m.name] = float("nan")
            continue
        try:
            with warnings.catch_warnings():  # undefined on this split: recorded as NaN, not printed
                warnings.simplefilter("ignore", skm_exceptions.UndefinedMetricWarning)
                out[m.name] = float(m.fn(y_true, arg, n_classes))
        except ValueError:  # e.g. ROC-AUC on a fold that holds one class only
            out[m.name] = float("nan")
    return out
