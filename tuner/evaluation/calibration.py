"""Whether a classifier's probabilities mean what they say, and the map that makes them.

Class-balanced weights, SMOTE and over-sampling are searched because they help a model rank a
rare class; each one also inflates that class' probabilities. A row of the leaderboard is
calibrated on its out-of-fold predictions (every row was scored by a model that never saw it):

- binary: ``sigmoid`` (Platt scaling, two numbers), and from ``ISOTONIC_MIN_ROWS`` rows with at least
  ``ISOTONIC_MIN_MINORITY`` of the rarer class also ``isotonic`` (a step function needs many rows per
  step); the one with the lower cross-fitted log loss;
- multiclass: ``temperature`` scaling (one number, so it keeps every row's most probable class).

The maps themselves are ``tuner.models.calibrated``'s; fitting them uses scikit-learn's public
``IsotonicRegression`` and ``LogisticRegression`` and SciPy's ``minimize_scalar``. Not
``CalibratedClassifierCV``: with ``cv`` it would refit the model once per fold again at the final
fit (time the clock does not have, for predictions the run already holds), and on a frozen,
already fitted model it would calibrate on the rows that model was trained on.

Honest CV, as the decision threshold's (``tuner.evaluation.threshold``): each fold's predictions
are mapped by a map fitted on the other folds (forward folds: the earlier ones; the first keeps
its raw probabilities), and the map is kept when those cross-fitted log losses are lower than the
raw ones on average. A map is one or two numbers (or a monotone step function) scored on other rows
than it was fitted on, so no margin is asked for beyond that: unlike a sweep over cuts, there is no
search that finds noise. A model already calibrated keeps its probabilities, or gets a map that
barely moves them. Reported with it: log loss, Brier score and expected calibration error
(``ece``, ``ECE_BINS`` equal-width bins) of the raw and the calibrated predictions.
"""

from __future__ import annotations

import warnings

import numpy as np

from tuner.evaluation.folds import other_folds
from tuner.evaluation.metrics import score_splits
from tuner.models.calibrated import apply_map

ISOTONIC_MIN_ROWS = 2000
ISOTONIC_MIN_MINORITY = 100
ECE_BINS = 10
TEMPERATURE_ROWS = 20_000  # one number to fit: a seeded sample of this many rows is plenty
SCORES = ("log_loss", "brier", "ece")


def methods_for(y: np.ndarray, n_classes: int) -> list[str]:
    """The maps tried on a row's ``y`` (class codes): by the task and the rows there are."""
    if n_classes > 2:
        return ["temperature"]
    minority = int(min(np.sum(y == 0), np.sum(y == 1)))
    big = len(y) >= ISOTONIC_MIN_ROWS and minority >= ISOTONIC_MIN_MINORITY
    return ["sigmoid", "isotonic"] if big else ["sigmoid"]


def fit_map(method: str, y: np.ndarray, proba: np.ndarray, w: np.ndarray | None) -> dict | None:
    """The parameters of ``method`` fitted on (``y``, ``proba`` (n, K)); None when these rows cannot
    fit one (a single class)."""
    y = np.asarray(y, dtype=np.int64)
    if len(np.unique(y)) < 2:
        return None
    if method == "temperature":
        return {"t": _temperature(y, proba, w)}
    p = np.asarray(proba, dtype=np.float64)[:, 1]
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(p, y, sample_weight=w)
        return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}
    from sklearn.linear_model import LogisticRegression

    from tuner.models.calibrated import _logit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(C=1e4, max_iter=1000).fit(_logit(p).reshape(-1, 1), y, sample_weight=w)
    return {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}


def _temperature(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None) -> float:
    from scipy.optimize import minimize_scalar

    if len(y) > TEMPERATURE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(len(y), TEMPERATURE_ROWS, replace=False))
        y, proba, w = y[rows], np.asarray(proba)[rows], None if w is None else np.asarray(w)[rows]
    logp = np.log(np.maximum(np.asarray(proba, dtype=np.float64), 1e-12))
    weight = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)

    def loss(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z -= z.max(axis=1, keepdims=True)
        picked = z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))
        return float(-(weight * picked).sum() / weight.sum())

    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


def _binned(y, proba, w, bins: int):
    """Per equal-width bin of the predicted probability (binary: of the positive class; multiclass: of
    each row's most probable class): (weighted rows, sum of predictions, sum of outcomes)."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if proba.shape[1] == 2:
        conf, hit = proba[:, 1], (y == 1).astype(float)
    else:
        conf, hit = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    weight = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    b = np.minimum((conf * bins).astype(np.int64), bins - 1)
    return np.bincount(b, weight, bins), np.bincount(b, weight * conf, bins), np.bincount(b, weight * hit, bins)


def ece(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None = None, bins: int = ECE_BINS) -> float:
    """Expected calibration error: over equal-width bins of the predicted probability, the (weighted)
    share of rows in the bin times |observed rate - mean predicted probability|. Binary: of the positive
    class; multiclass: of each row's most probable class (its confidence against its accuracy)."""
    mass, predicted, observed = _binned(y, proba, w, bins)
    total = mass.sum()
    return float(np.abs(observed - predicted).sum() / total) if total > 0 else float("nan")


def reliability(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None = None, bins: int = ECE_BINS) -> dict:
    """The reliability diagram's points (as ``ece`` bins them): per non-empty bin, its mean predicted
    probability, observed rate and share of the rows."""
    mass, predicted, observed = _binned(y, proba, w, bins)
    seen = mass > 0
    return {"predicted": (predicted[seen] / mass[seen]).tolist(), "observed": (observed[seen] / mass[seen]).tolist(),
            "share": (mass[seen] / mass.sum()).tolist()}


def _scores(y, proba, w) -> dict:
    split = [(y, proba.argmax(axis=1), proba, w)]
    scored = score_splits("binary" if proba.shape[1] == 2 else "multiclass", split, proba.shape[1],
                          names=["log_loss", "brier"], metric="log_loss")[0]
    return {"log_loss": scored["log_loss"], "brier": scored["brier"], "ece": ece(y, proba, w)}


def cross_fitted(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, fold_sizes: list[int],
                 folds_per_repeat: int, method: str, *, forward: bool = False) -> np.ndarray:
    """Every fold's probabilities mapped by ``method`` fitted on the folds ``other_folds`` names."""
    starts = np.concatenate(([0], np.cumsum(fold_sizes))).astype(int)
    folds = [np.arange(starts[f], starts[f + 1]) for f in range(len(fold_sizes))]
    out = np.array(proba, dtype=np.float64, copy=True)
    for f, test in enumerate(folds):
        others = other_folds(f, folds_per_repeat, forward)
        if not others:
            continue
        sel = np.concatenate([folds[g] for g in others])
        params = fit_map(method, y[sel], proba[sel], None if w is None else w[sel])
        if params is not None:
            out[test] = apply_map(method, params, proba[test])
    return out


def decide(y: np.ndarray, proba: np.ndarray, w: np.ndarray | None, fold_sizes: list[int], folds_per_repeat: int,
           *, forward: bool = False) -> tuple[dict, np.ndarray]:
    """(the row's ``calibration`` entry, the probabilities its decision threshold is chosen on).

    ``proba`` (n, K): the out-of-fold probabilities of every fold's test rows, folds one after another
    (``fold_sizes``); ``y`` / ``w`` the same rows' codes / weights. The entry: ``method`` (None: the
    model keeps its own probabilities), ``parameters`` (the map fitted on every row), ``tried`` (the
    map that was checked), ``raw`` / ``calibrated`` (log loss, Brier, ECE over all rows; the
    calibrated ones cross-fitted) and ``why``.
    """
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    starts = np.concatenate(([0], np.cumsum(fold_sizes))).astype(int)
    folds = list(zip(starts[:-1], starts[1:]))

    def gains(mapped: np.ndarray) -> np.ndarray:  # per fold: how much the map lowered its log loss
        return np.array([_log_loss(y[a:b], proba[a:b], None if w is None else w[a:b])
                         - _log_loss(y[a:b], mapped[a:b], None if w is None else w[a:b]) for a, b in folds])

    tried = {m: cross_fitted(y, proba, w, fold_sizes, folds_per_repeat, m, forward=forward)
             for m in methods_for(y, proba.shape[1])}
    gained = {m: gains(mapped) for m, mapped in tried.items()}
    method = max(tried, key=lambda m: np.nanmean(gained[m]) if np.isfinite(gained[m]).any() else -np.inf)
    mapped = tried[method]
    keep = bool(np.isfinite(gained[method]).any() and np.nanmean(gained[method]) > 0)
    parameters = fit_map(method, y, proba, w) if keep else None
    keep = parameters is not None
    entry = {
        "method": method if keep else None,
        "parameters": parameters,
        "tried": method,
        "raw": _scores(y, proba, w),
        "calibrated": _scores(y, mapped, w),
        "why": (f"{method} map fitted on the out-of-fold predictions; it lowered the held-back folds' log loss"
                if keep else f"no map ({', '.join(tried)}) lowered the held-back folds' log loss: the model's own "
                "probabilities are kept"),
        "rows": int(len(y)),
        "reliability": {"raw": reliability(y, proba, w), "calibrated": reliability(y, mapped, w)},
    }
    return entry, mapped if keep else proba


def _log_loss(y, proba, w) -> float:
    if len(y) == 0:
        return float("nan")
    picked = proba[np.arange(len(y)), y]
    return float(np.average(-np.log(np.clip(picked, 1e-15, 1.0)), weights=w))


__all__ = ["ISOTONIC_MIN_ROWS", "ISOTONIC_MIN_MINORITY", "ECE_BINS", "methods_for", "fit_map", "ece", "reliability",
           "cross_fitted", "decide"]
