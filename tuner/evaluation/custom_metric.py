"""A user's own metric: ``--metric package.module:function`` or ``tuner.tune(metric=function)``.

Two shapes are taken:

- a function ``f(y_true, y_pred, sample_weight=None) -> float`` that says what it is, by the
  :func:`metric` decorator or by the attributes it sets (``greater_is_better``: bool; ``needs``:
  ``"label"``, ``"proba"`` or ``"value"``). It gets, per fold, the true class codes (0..K-1 in the
  order of the run's classes; binary: 1 is the positive class) or values, and the predicted codes
  (``label``), the positive class' probability (binary ``proba``), the class probabilities
  (multiclass ``proba``, one column per class) or the predicted values (``value``);
- a scikit-learn scorer (``sklearn.metrics.make_scorer(...)``, or any callable
  ``scorer(estimator, X, y_true, sample_weight=None)``): it is called on a stand-in estimator that
  answers ``predict`` / ``predict_proba`` with the fold's predictions. Greater is better, as for every
  scorer (a loss scorer returns the negated loss).

The run stores the metric by reference (``module:attribute``, its name everywhere: leaderboard,
model card), as plug-in families are: a resumed run, a worker and ``tuner leaderboard --metric`` in
another process import it again. So it must live in a module those processes can import: not in
``__main__``, a notebook or a lambda. It is checked when the run starts (its signature, and a call on
a few made-up rows that must return a finite number); a problem is one line naming it (exit 2).
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from tuner.errors import TunerError

NEEDS = ("label", "proba", "value")


def metric(*, greater_is_better: bool, needs: str):
    """Declare a function a tuner metric: ``@tuner.metric(greater_is_better=True, needs="label")``."""
    if needs not in NEEDS:
        raise TunerError(f"needs must be one of {', '.join(NEEDS)} (got {needs!r})")

    def declare(fn):
        fn.greater_is_better, fn.needs = bool(greater_is_better), needs
        return fn

    return declare


def is_reference(name: str) -> bool:
    return ":" in name


def reference(obj) -> str:
    """The ``module:attribute`` another process imports ``obj`` from; refused when there is none."""
    if isinstance(obj, str):
        return obj
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if qualname is None:  # a scorer instance: it must be a module attribute
        qualname = _attribute_name(obj, module)
    if not module or module == "__main__" or not qualname or "<" in qualname:
        raise TunerError(f"the metric {obj!r} cannot be stored with the run: define it in a module that other "
                         "processes can import (not __main__, a notebook cell or a lambda) and pass it, or "
                         "'module:name', again")
    if _resolve(f"{module}:{qualname}") is not obj:
        raise TunerError(f"the metric {obj!r} is not {module}:{qualname} when imported again: define it at the "
                         "top level of its module")
    return f"{module}:{qualname}"


def _attribute_name(obj, module: str | None) -> str | None:
    try:
        found = importlib.import_module(module) if module else None
    except ImportError:
        return None
    return next((k for k, v in vars(found).items() if v is obj), None) if found is not None else None


def _resolve(ref: str):
    module, _, attr = ref.partition(":")
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        raise TunerError(f"cannot import the module of metric {ref!r}: {exc}; install it or fix the name") from None
    target = found
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise TunerError(f"module {module!r} has no {attr!r}; give --metric MODULE:FUNCTION") from None
    return target


def _is_scorer(fn) -> bool:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0] == "estimator"


class _Predicted(BaseEstimator):
    """A stand-in estimator for a scorer: ``predict`` / ``predict_proba`` return one fold's predictions
    (``X`` is the fold's row numbers)."""

    def __init__(self, pred=None, proba=None, classes=None):
        self.pred, self.proba, self.classes = pred, proba, classes

    def fit(self, X, y=None):
        return self

    def predict(self, X):
        return np.asarray(self.pred)[np.asarray(X).ravel().astype(int)]

    def predict_proba(self, X):
        return np.asarray(self.proba)[np.asarray(X).ravel().astype(int)]


class _PredictedClassifier(ClassifierMixin, _Predicted):
    @property
    def classes_(self):
        return np.asarray(self.classes)


class _PredictedRegressor(RegressorMixin, _Predicted):
    pass


def _call(fn, scorer: bool, needs: str, y, pred, proba, w, n_classes: int) -> float:
    if scorer:
        if needs == "value":
            est = _PredictedRegressor(pred=pred)
        else:
            est = _PredictedClassifier(pred=pred, proba=proba, classes=np.arange(max(n_classes, 2)))
        rows = np.arange(len(y)).reshape(-1, 1)
        return float(fn(est, rows, y) if w is None else fn(est, rows, y, sample_weight=w))
    arg = pred if needs != "proba" else (proba[:, 1] if n_classes == 2 else proba)
    return float(fn(y, arg) if w is None else fn(y, arg, sample_weight=w))


@dataclass(frozen=True)
class Declared:
    """A user's metric as the registry takes it (``tuner.evaluation.metrics.get_metric`` makes the
    ``Metric``): what it is called, its direction, what it reads, and the metric on every split."""

    name: str
    fn: Callable
    scorer: bool
    greater_is_better: bool
    needs: str

    @property
    def tasks(self) -> tuple[str, ...]:
        return ("regression",) if self.needs == "value" else ("binary", "multiclass")

    def per_split(self, s) -> np.ndarray:
        """The metric on each split of ``s`` (a ``tuner.evaluation.metrics.Splits``), one call per split."""
        out = np.full(s.n, np.nan)
        for i, (start, size) in enumerate(zip(s.starts, s.sizes)):
            rows = slice(start, start + size)
            proba = None if s.proba is None else s.proba[rows]
            out[i] = _call(self.fn, self.scorer, self.needs, s.y[rows], s.pred[rows], proba,
                           None if s.w is None else s.w[rows], s.k)
        return out


@lru_cache(maxsize=32)
def load(ref: str) -> Declared:
    """The user's metric ``ref`` (``module:attribute``), its declaration checked."""
    fn = _resolve(ref)
    if not callable(fn):
        raise TunerError(f"metric {ref!r} is a {type(fn).__name__}, not a function or a scikit-learn scorer")
    scorer = _is_scorer(fn)
    if scorer:  # greater is better; it reads labels and / or probabilities, which it is given both of
        return Declared(ref, fn, True, True, "value" if task_hint(fn) == "value" else "proba")
    greater, needs = getattr(fn, "greater_is_better", None), getattr(fn, "needs", None)
    if not isinstance(greater, bool) or needs not in NEEDS:
        raise TunerError(f"metric {ref!r} must say whether greater is better and what it scores: decorate it "
                         "with @tuner.metric(greater_is_better=True, needs='label' | 'proba' | 'value')")
    try:
        inspect.signature(fn).bind(np.zeros(2), np.zeros(2))
    except TypeError as exc:
        raise TunerError(f"metric {ref!r} must take (y_true, y_pred, sample_weight=None): {exc}") from None
    except ValueError:
        pass  # a builtin without a signature: the test call of ``check`` finds out
    return Declared(ref, fn, False, greater, needs)


def task_hint(fn) -> str:
    """A scorer for regression says so with ``needs = "value"`` (set on it); any other scorer is for
    classification."""
    return getattr(fn, "needs", "proba")


def check(ref: str, task: str, weighted: bool) -> None:
    """Call the metric on a few made-up rows of ``task``; a problem raises ``TunerError`` naming it."""
    m = load(ref)
    k = {"binary": 2, "multiclass": 3}.get(task, 0)
    y = np.array([0, 1, 2, 0, 1, 2]) % max(k, 1) if k else np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
    proba = None
    if k:
        proba = np.full((6, k), 1.0 / k) + np.eye(k)[y] * 0.3
        proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1) if k else y + 0.25
    try:
        value = _call(m.fn, m.scorer, m.needs, y, pred, proba, np.linspace(0.5, 1.5, 6) if weighted else None, k)
    except Exception as exc:  # the user's function failed on well-formed input: say how
        raise TunerError(f"metric {ref!r} failed on a test call ({m.needs} predictions of a {task} task"
                         f"{', with sample_weight' if weighted else ''}): {type(exc).__name__}: {exc}") from None
    if not math.isfinite(value):
        raise TunerError(f"metric {ref!r} returned {value!r} on a test call; it must return a finite number")


__all__ = ["metric", "is_reference", "reference", "load", "check", "Declared", "NEEDS"]
