"""A fitted classifier whose class probabilities pass through a calibration map.

The map is fitted on the model's out-of-fold predictions (``tuner.evaluation.calibration``), not
on its own training rows, and is kept as plain numbers in the model card (``calibration``), so a
model folder's files stay what they were and the card says what is applied. Three maps:

- ``sigmoid`` (binary, Platt scaling): ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``;
- ``isotonic`` (binary): ``p'`` interpolated linearly between knots ``(x, y)``, non-decreasing,
  constant beyond the ends, kept within ``[EPS, 1 - EPS]``;
- ``temperature`` (multiclass): ``p' = softmax(log(p) / T)``, which keeps every row's most
  probable class.

Binary maps are monotone in the positive class' probability, so the model's ranking (ROC-AUC,
PR-AUC) does not change; its probabilities, labels at 0.5, log loss and Brier score do.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin

METHODS = ("sigmoid", "isotonic", "temperature")
EPS = 1e-4  # an isotonic map's probabilities stay this far from 0 and 1 (a step to 0 is a certainty it never saw)
_TINY = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p) - np.log1p(-p)


def apply_map(method: str, parameters: dict, proba: np.ndarray) -> np.ndarray:
    """Calibrated class probabilities (n, K) from the model's ``proba`` (n, K)."""
    proba = np.asarray(proba, dtype=np.float64)
    if method == "temperature":
        logits = np.log(np.maximum(proba, _TINY)) / float(parameters["t"])
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)
    p = proba[:, 1]
    if method == "sigmoid":
        q = expit(float(parameters["a"]) * _logit(p) + float(parameters["b"]))
    elif method == "isotonic":
        q = np.clip(np.interp(p, parameters["x"], parameters["y"]), EPS, 1 - EPS)
    else:
        raise ValueError(f"unknown calibration method {method!r}; one of {METHODS}")
    return np.column_stack([1.0 - q, q])


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """``estimator`` (fitted; class codes 0..K-1) whose ``predict_proba`` is mapped by ``method`` with
    ``parameters`` (``apply_map``); ``predict`` is the most probable calibrated class.

    ``fit`` refits the estimator and keeps the map: the map belongs to the configuration (its
    out-of-fold predictions), as its hyperparameters do."""

    __module__ = "tuner.model_types"

    def __init__(self, estimator=None, method: str = "sigmoid", parameters: dict | None = None, n_classes: int = 2):
        self.estimator = estimator
        self.method = method
        self.parameters = parameters
        self.n_classes = n_classes

    @property
    def classes_(self) -> np.ndarray:
        return np.arange(int(self.n_classes))

    def fit(self, X, y, **fit_params):
        self.estimator.fit(X, y, **fit_params)
        return self

    def _model_proba(self, X) -> np.ndarray:
        proba = np.asarray(self.estimator.predict_proba(X), dtype=np.float64)
        seen = np.asarray(self.estimator.classes_, dtype=int)
        if len(seen) != int(self.n_classes):  # a class the refit never saw counts as 0
            full = np.zeros((len(proba), int(self.n_classes)))
            full[:, seen] = proba
            proba = full
        totals = proba.sum(axis=1, keepdims=True)
        return np.divide(proba, totals, out=np.full_like(proba, 1.0 / int(self.n_classes)), where=totals > 0)

    def predict_proba(self, X) -> np.ndarray:
        return apply_map(self.method, self.parameters or {}, self._model_proba(X))

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def __sklearn_is_fitted__(self) -> bool:
        return self.estimator is not None


def wrap(fitted, calibration: dict | None, n_classes: int):
    """``fitted`` behind its card's ``calibration`` map, or ``fitted`` itself when the card keeps none."""
    if not calibration or not calibration.get("method") or isinstance(fitted, CalibratedModel):
        return fitted
    return CalibratedModel(fitted, calibration["method"], calibration["parameters"], n_classes)


def unwrap(fitted):
    """The model under a calibration map (what a model folder's files hold)."""
    return fitted.estimator if isinstance(fitted, CalibratedModel) else fitted


__all__ = ["METHODS", "EPS", "apply_map", "CalibratedModel", "wrap", "unwrap"]
