"""Cross-validate one estimator on fixed, seeded folds.

The folds (``tuner.evaluation.folds``) depend only on the target, the number of folds, the
seed and the run's groups / time order, so every family and every trial of a run is scored
on the same rows: scores are paired.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from tuner.evaluation.metrics import score_splits
from tuner.evaluation.weights import fit_params as weight_params


@dataclass
class FoldResult:
    index: int
    scores: dict[str, float]
    fit_time_s: float
    predict_time_s: float
    n_predicted: int
    train_scores: dict[str, float] | None = None  # on (a sample of) the fold's own training rows
    train_predict_time_s: float = 0.0
    # (y_true, y_pred, proba) of the test rows and of the training sample, kept until
    # ``score_folds`` scores every metric of a trial's folds together
    outputs: tuple | None = None
    train_outputs: tuple | None = None

    @property
    def model_time_s(self) -> float:
        """Time spent inside the model (and its preprocessing): fit and every predict."""
        return self.fit_time_s + self.predict_time_s + self.train_predict_time_s


def rare_class_note(y: np.ndarray, task: str, cv: int, classes: list) -> str | None:
    """A note when a multiclass target has a class with fewer rows than folds."""
    if task != "multiclass":
        return None
    counts = np.bincount(y, minlength=len(classes))
    rare = [f"{classes[i]!r} ({int(c)})" for i, c in enumerate(counts) if c < cv]
    if not rare:
        return None
    return (f"class(es) {', '.join(rare[:5])}{' …' if len(rare) > 5 else ''} have fewer rows than the {cv} folds: "
            "some test folds do not contain them (accuracy and f1 still score those folds)")


def predict_outputs(estimator, X: pd.DataFrame, task: str, n_classes: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(predictions, class probabilities with one column per class 0..K-1 or None)."""
    if task == "regression":
        return np.asarray(estimator.predict(X), dtype=float), None
    proba = np.asarray(estimator.predict_proba(X), dtype=float)
    classes = np.asarray(estimator.classes_, dtype=int)
    if len(classes) != n_classes:  # a class absent from the training fold: pad with zeros
        full = np.zeros((len(X), n_classes))
        full[:, classes] = proba
        proba = full
    totals = proba.sum(axis=1, keepdims=True)  # float32 models (XGBoost) drift from 1 by ~1e-7
    proba = np.divide(proba, totals, out=np.full_like(proba, 1.0 / n_classes), where=totals > 0)
    return proba.argmax(axis=1), proba


def fit_quietly(estimator, X, y, **fit_params):
    """Fit, keeping convergence chatter out of the user's terminal (recorded per trial instead)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        estimator.fit(X, y, **fit_params)
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def evaluate_fold(
    estimator, X: pd.DataFrame, y: np.ndarray, fold: tuple[np.ndarray, np.ndarray], index: int,
    task: str, n_classes: int, fit_params: dict | None = None, *, score_train: bool = True,
    headline: str | None = None, weights: np.ndarray | None = None,
) -> tuple[FoldResult, list[str]]:
    """Fit ``estimator`` on the fold's training rows and score its test rows.

    ``estimator`` is an unfitted estimator (cloned) or a function returning the estimator to
    fit: the driver's returns its trial's one pipeline, refitted fold after fold (``clone`` of a
    pipeline costs far more than building it from the trial's parameters, and would be paid on
    every fold).
    ``score_train``: also score (a sample of) the training rows, for the overfitting gap.
    ``headline``: score only this metric now and keep the predictions, for :func:`score_folds`
    to score every metric of all the trial's folds at once (the driver: a pruned trial needs
    only its headline). ``weights``: every row's weight (``--weights``), in the fit and the scores.
    """
    train, test = fold
    est = clone(estimator) if hasattr(estimator, "fit") else estimator()
    w_train, w_test = (None, None) if weights is None else (weights[train], weights[test])
    start = time.perf_counter()
    notes = fit_quietly(est, X.iloc[train], y[train], **(fit_params or {}), **weight_params(est, w_train))
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():  # e.g. an inverse target transform overflowing: the fold fails below, quietly
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        pred, proba = predict_outputs(est, X.iloc[test], task, n_classes)
    predict_time = time.perf_counter() - start
    if task == "regression" and not np.isfinite(pred).all():
        raise ValueError("the model predicted non-finite values")
    result = FoldResult(index, {}, fit_time, predict_time, len(test), outputs=(y[test], pred, proba, w_test))
    if score_train:
        seen = _train_sample(train, index)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            train_pred, train_proba = predict_outputs(est, X.iloc[seen], task, n_classes)
        result.train_predict_time_s = time.perf_counter() - start
        if task == "regression" and not np.isfinite(train_pred).all():
            train_pred = np.nan_to_num(train_pred, nan=float(np.mean(y[seen])), posinf=float(np.max(y[seen])),
                                       neginf=float(np.min(y[seen])))
        result.train_outputs = (y[seen], train_pred, train_proba, None if weights is None else weights[seen])
    if headline is None:
        score_folds([result], task, n_classes)
    else:  # the headline is the run's metric
        result.scores = score_splits(task, [result.outputs], n_classes, names=[headline])[0]
    return result, notes


def score_folds(results: list[FoldResult], task: str, n_classes: int, metric: str | None = None) -> None:
    """Score every metric of each result's kept predictions (test rows, and training rows where
    kept), all folds together (``tuner.evaluation.metrics.score_splits``), then let the predictions go.
    ``metric``: the run's (scored too when it has a parameter, e.g. ``f_beta@2``)."""
    tested = [r for r in results if r.outputs is not None]
    for r, scores in zip(tested, score_splits(task, [r.outputs for r in tested], n_classes, metric=metric)):
        r.scores, r.outputs = scores, None
    trained = [r for r in results if r.train_outputs is not None]
    for r, scores in zip(trained, score_splits(task, [r.train_outputs for r in trained], n_classes, metric=metric)):
        r.train_scores, r.train_outputs = scores, None


TRAIN_SCORE_ROWS = 5000  # training rows scored per fold for the overfitting gap


def _train_sample(train: np.ndarray, index: int) -> np.ndarray:
    if len(train) <= TRAIN_SCORE_ROWS:
        return train
    return np.sort(np.random.default_rng(index).choice(train, TRAIN_SCORE_ROWS, replace=False))


def cross_validate(
    estimator, X: pd.DataFrame, y: np.ndarray, folds, task: str, n_classes: int,
    on_fold: Callable[[FoldResult], None] | None = None, fit_params_for: Callable[[int], dict] | None = None,
    weights: np.ndarray | None = None,
) -> list[FoldResult]:
    """Score ``estimator`` on every fold; ``on_fold`` sees each result as it comes (and may stop the loop)."""
    results = []
    for i, fold in enumerate(folds):
        result, _ = evaluate_fold(estimator, X, y, fold, i, task, n_classes, fit_params_for(i) if fit_params_for else None,
                                  weights=weights)
        results.append(result)
        if on_fold is not None:
            on_fold(result)
    return results


def summarise(results: list[FoldResult]) -> dict:
    """Mean, std and per-fold values of every metric, plus timings."""
    names = results[0].scores.keys()
    metrics = {}
    for name in names:
        values = [r.scores[name] for r in results]
        arr = np.asarray(values, dtype=float)
        finite = arr[np.isfinite(arr)]
        metrics[name] = {
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0 if finite.size else None,
            "folds": [None if not np.isfinite(v) else float(v) for v in arr],
        }
    n_pred = sum(r.n_predicted for r in results)
    train = {}
    for name in names:
        values = np.asarray([r.train_scores[name] for r in results if r.train_scores], dtype=float)
        values = values[np.isfinite(values)]
        train[name] = float(values.mean()) if values.size else None
    return {
        "metrics": metrics,
        "train_metrics": train,
        "fit_time_s": float(np.mean([r.fit_time_s for r in results])),
        "predict_time_ms_per_1k": float(1e6 * sum(r.predict_time_s for r in results) / max(1, n_pred)),
    }
