"""A user's own metrics, importable by other processes (tests/evaluation/test_custom_metric.py)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import fbeta_score, make_scorer, mean_absolute_error

import tuner


@tuner.metric(greater_is_better=True, needs="label")
def recall_weighted_f(y_true, y_pred, sample_weight=None):
    """F-beta with beta 3, the positive class is 1."""
    return fbeta_score(y_true, y_pred, beta=3, sample_weight=sample_weight, zero_division=0)


@tuner.metric(greater_is_better=False, needs="proba")
def mean_miss(y_true, proba, sample_weight=None):
    """Mean probability given to the wrong answer (binary: proba is the positive class')."""
    return float(np.average(np.abs(np.asarray(y_true) - proba), weights=sample_weight))


@tuner.metric(greater_is_better=False, needs="value")
def median_error(y_true, y_pred, sample_weight=None):
    return float(np.median(np.abs(np.asarray(y_true) - y_pred)))


def undeclared(y_true, y_pred):
    return 0.0


@tuner.metric(greater_is_better=True, needs="label")
def one_argument(y_true):
    return 0.0


@tuner.metric(greater_is_better=True, needs="label")
def broken(y_true, y_pred, sample_weight=None):
    raise ZeroDivisionError("oops")


mae_scorer = make_scorer(mean_absolute_error, greater_is_better=False)
mae_scorer.needs = "value"  # a regression scorer says so
