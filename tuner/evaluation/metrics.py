"""Metric registry: name -> how to compute it, its direction, and the tasks it fits.

With row weights (``--weights``) every metric is its weighted form, as scikit-learn's
``sample_weight`` defines it: weighted means (accuracy, log-loss, MSE, MAE), a weighted
confusion matrix (precision, recall, F1), weighted sums of squares around the weighted mean
(R²), and ROC-AUC over weighted pairs (scikit-learn's own, per split).

Multiclass averaging: precision / recall / F1 / F-beta are macro averages (every class
counts the same); ROC-AUC and PR-AUC are one-vs-rest, macro averaged; balanced accuracy is the
mean recall over the classes present; MCC is its multiclass form (scikit-learn's); Brier score
is the mean squared distance between the probabilities and the one-hot truth (summed over the
classes; binary: of the positive class only, as ``brier_score_loss``); cosine similarity is the
per-row cosine between the probabilities and the one-hot truth (Keras' ``CosineSimilarity``), and
for regression the cosine between the true and predicted value vectors of the split. For binary
problems the positive class is the second of the sorted class labels (index 1).

Metrics with a parameter are named ``NAME@VALUE``: ``top_k_accuracy@5`` (plain ``top_k_accuracy``
uses k = min(3, n_classes - 1)) and ``f_beta@2`` (β; F-beta has no default β).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from functools import partial
from typing import Callable

import numpy as np

from tuner.errors import TunerError


class Splits:
    """Several evaluation splits (a trial's folds) stacked into one set of arrays, so that each
    metric is computed for all of them in a few NumPy calls: a call costs about the same for
    one small split as for twenty, and every fold of every trial is scored.

    A split is ``(y, pred, proba)`` or ``(y, pred, proba, weights)``; ``w`` is None when no split
    has weights. ``y``, ``pred`` and ``proba`` hold the splits one after another; ``group`` numbers each row's
    split (non-decreasing), ``sizes`` and ``starts`` give each split's rows. Every per-split
    sum adds the same rows in the same order whether a split is scored alone or with others,
    so the scores are bit-identical either way.

    The metrics are NumPy, not scikit-learn's: scikit-learn validates its inputs on every call,
    which costs more than the metric itself on a fold's few hundred rows, and every fold of
    every trial is scored (tests/evaluation/test_metrics.py checks that the values agree).
    """

    def __init__(self, splits: list[tuple], n_classes: int):
        self.k = n_classes
        self.n = len(splits)
        self._confusion = None
        self._prf = None
        weights = [split[3] if len(split) > 3 else None for split in splits]
        self.w = None
        if any(w is not None for w in weights):
            self.w = np.concatenate([np.ones(len(split[0])) if w is None else np.asarray(w, dtype=float)
                                     for split, w in zip(splits, weights)])
        splits = [split[:3] for split in splits]
        if self.n == 1:  # a fold's headline, after every fold: the same arrays without the stacking
            y, pred, proba = splits[0]
            self.y, self.pred = np.asarray(y), np.asarray(pred)
            self.sizes = np.array([len(self.y)], dtype=np.int64)
            self.starts = np.zeros(1, dtype=np.int64)
            self.group = np.zeros(len(self.y), dtype=np.int64)
            self.proba = None if proba is None else np.asarray(proba, dtype=float)
            return
        self.sizes = np.array([len(y) for y, _, _ in splits], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(self.sizes)[:-1])).astype(np.int64)
        self.group = np.repeat(np.arange(self.n), self.sizes)
        self.y = np.concatenate([np.asarray(y) for y, _, _ in splits]) if splits else np.zeros(0)
        self.pred = np.concatenate([np.asarray(p) for _, p, _ in splits]) if splits else np.zeros(0)
        probas = [q for _, _, q in splits]
        self.proba = None if not splits or any(q is None for q in probas) else np.concatenate(
            [np.asarray(q, dtype=float) for q in probas])

    def per_split(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` (one per row) over each split's rows."""
        return np.bincount(self.group, weights=values, minlength=self.n)

    def weigh(self, values: np.ndarray) -> np.ndarray:
        """``values`` times each row's weight (unchanged without weights)."""
        return values if self.w is None else values * self.w

    def mean(self, values: np.ndarray) -> np.ndarray:
        """Mean of ``values`` over each split's rows (weighted: NaN where a split's weights are all 0)."""
        if self.w is None:
            return self.per_split(values) / np.maximum(self.sizes, 1)
        total = self.per_split(self.w)
        return np.divide(self.per_split(values * self.w), total, out=np.full(self.n, np.nan), where=total > 0)

    def confusion(self) -> np.ndarray:
        """(splits, true class, predicted class) counts, shared by the label metrics."""
        if self._confusion is None:
            k = max(self.k, 2)
            y, p = self.y.astype(np.int64), self.pred.astype(np.int64)
            cells = np.bincount((self.group * k + y) * k + p, weights=self.w, minlength=self.n * k * k)
            self._confusion = cells.reshape(self.n, k, k)
        return self._confusion


class Counts:
    """Confusion matrices alone, (n, K, K) weighted counts, for the label metrics (which read only
    ``confusion()``): a threshold sweep scores one matrix per candidate cut without a row per cut."""

    def __init__(self, confusion: np.ndarray):
        self._confusion = np.asarray(confusion, dtype=float)
        self.n, self.k = self._confusion.shape[0], self._confusion.shape[1]
        self._prf = None

    def confusion(self) -> np.ndarray:
        return self._confusion


def _ratio(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)  # zero_division=0


def _prf(s: Splits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 per split: of class 1 (binary) or macro over classes 0..K-1."""
    if s._prf is None:
        s._prf = _precision_recall_f1(s)
    return s._prf


def _precision_recall_f1(s: Splits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cm = s.confusion()
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    predicted, actual = cm.sum(axis=1), cm.sum(axis=2)
    precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
    f1 = _ratio(2 * tp, predicted + actual)
    if s.k == 2:  # the positive class is code 1
        return precision[:, 1], recall[:, 1], f1[:, 1]
    return precision.mean(axis=1), recall.mean(axis=1), f1.mean(axis=1)


def _f_beta(s: Splits, beta: float) -> np.ndarray:
    cm = s.confusion()
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    predicted, actual = cm.sum(axis=1), cm.sum(axis=2)
    b2 = beta * beta
    f = _ratio((1 + b2) * tp, b2 * actual + predicted)
    return f[:, 1] if s.k == 2 else f.mean(axis=1)


def _totals(cm: np.ndarray) -> np.ndarray:
    return cm.sum(axis=(1, 2)).astype(float)


def _accuracy(s: Splits) -> np.ndarray:
    cm = s.confusion()
    total = _totals(cm)
    return np.divide(np.trace(cm, axis1=1, axis2=2), total, out=np.full(len(cm), np.nan), where=total > 0)


def _balanced_accuracy(s: Splits) -> np.ndarray:
    """Mean recall over the classes present in the split (scikit-learn's, without ``adjusted``)."""
    cm = s.confusion()
    actual = cm.sum(axis=2)
    recall = _ratio(np.diagonal(cm, axis1=1, axis2=2), actual)
    present = actual > 0
    return np.divide((recall * present).sum(axis=1), present.sum(axis=1), out=np.full(len(cm), np.nan),
                     where=present.any(axis=1))


def _mcc(s: Splits) -> np.ndarray:
    """Matthews correlation, multiclass (Gorodkin's R_K, as ``matthews_corrcoef``); 0 where undefined."""
    cm = s.confusion().astype(float)
    t, p = cm.sum(axis=2), cm.sum(axis=1)
    c, n = np.trace(cm, axis1=1, axis2=2), _totals(cm)
    cov = c * n - (t * p).sum(axis=1)
    den = np.sqrt((n * n - (p * p).sum(axis=1)) * (n * n - (t * t).sum(axis=1)))
    return _ratio(cov, den)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average: ``scipy.stats.rankdata`` without its
    per-call input handling (it ranks every fold of every trial, and pruning ranks after each
    fold)."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    new_value = np.empty(len(x), dtype=bool)
    new_value[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new_value[1:])
    starts = np.flatnonzero(new_value)
    sizes = np.diff(np.append(starts, len(x)))
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(starts + (sizes + 1) / 2, sizes)  # exact: halves of small integers
    return ranks


def split_ranks(x: np.ndarray, group: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties sharing their average) of every column of ``x`` within each
    split: rows of split ``s`` are ``group == s``, contiguous from ``starts[s]``. One sort for
    all splits and columns."""
    n, k = x.shape
    if len(starts) == 1 and k == 1:  # a binary fold's headline ROC-AUC: the same values, sooner
        return average_ranks(x[:, 0])[:, None]
    order = np.lexsort((x, np.broadcast_to(group[:, None], (n, k))), axis=0)  # by split, then value
    ordered = np.take_along_axis(x, order, axis=0)
    ordered_group = group[order]
    new_value = np.ones((n, k), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=new_value[1:])
    new_value[1:] |= ordered_group[1:] != ordered_group[:-1]
    positions = (np.arange(1, n + 1)[:, None] - starts[ordered_group]).astype(float)  # rank inside the split
    tie = np.cumsum(new_value, axis=0) - 1 + np.arange(k) * n  # tie groups, numbered apart per column
    sums = np.bincount(tie.ravel(), weights=positions.ravel(), minlength=n * k)
    sizes = np.bincount(tie.ravel(), minlength=n * k)
    ranks = np.empty((n, k))
    np.put_along_axis(ranks, order, (sums / np.maximum(sizes, 1))[tie], axis=0)
    return ranks


def _roc_auc(s: Splits) -> np.ndarray:
    """Mann-Whitney U / (n+ n-), ties counted half; multiclass: one-vs-rest, macro over the
    classes; NaN on a split without some class (undefined there)."""
    if s.w is not None:
        return _weighted_roc_auc(s)
    if s.k == 2:
        scores, positive = s.proba[:, 1:2], (s.y == 1)[:, None]
    else:
        scores, positive = s.proba, s.y[:, None] == np.arange(s.k)
    c = scores.shape[1]
    cells = (s.group[:, None] * c + np.arange(c)).ravel()
    n_pos = np.bincount(cells, weights=positive.ravel().astype(float), minlength=s.n * c).reshape(s.n, c)
    rank_sums = np.bincount(cells, weights=(split_ranks(scores, s.group, s.starts) * positive).ravel(),
                            minlength=s.n * c).reshape(s.n, c)
    n_neg = s.sizes[:, None] - n_pos
    pairs = n_pos * n_neg  # 0 on a split without some class: NaN there, and in the split's mean
    auc = np.divide(rank_sums - n_pos * (n_pos + 1) / 2, pairs, out=np.full_like(pairs, np.nan), where=pairs > 0)
    return auc.mean(axis=1)


def _weighted_roc_auc(s: Splits) -> np.ndarray:
    """scikit-learn's ROC-AUC with ``sample_weight``, split by split (weighted runs only)."""
    from sklearn.metrics import roc_auc_score

    out = np.full(s.n, np.nan)
    for i, (start, size) in enumerate(zip(s.starts, s.sizes)):
        rows = slice(start, start + size)
        y, proba, w = s.y[rows], s.proba[rows], s.w[rows]
        try:
            if s.k == 2:
                out[i] = roc_auc_score(y, proba[:, 1], sample_weight=w)
            else:
                out[i] = roc_auc_score(y, proba, sample_weight=w, multi_class="ovr", average="macro",
                                       labels=np.arange(s.k))
        except ValueError:  # a class missing (or weighing nothing) on this split: undefined, as unweighted
            pass
    return out


def _log_loss(s: Splits) -> np.ndarray:
    picked = s.proba[np.arange(len(s.y)), s.y.astype(np.int64)]
    return s.mean(-np.log(np.clip(picked, 1e-15, 1.0)))


def _top_k(s: Splits, k: int | None = None) -> np.ndarray:
    top = np.argsort(s.proba, axis=1, kind="mergesort")[:, ::-1][:, :k or top_k_for(s.k)]
    return s.mean((top == s.y[:, None]).any(axis=1).astype(float))


def _one_hot(s: Splits) -> np.ndarray:
    return s.y.astype(np.int64)[:, None] == np.arange(s.proba.shape[1])


def _brier(s: Splits) -> np.ndarray:
    if s.k == 2:
        return s.mean((s.proba[:, 1] - (s.y == 1)) ** 2)
    return s.mean(((s.proba - _one_hot(s)) ** 2).sum(axis=1))


def _cosine_classes(s: Splits) -> np.ndarray:
    """Per row: the cosine between the probabilities and the one-hot truth, p[y] / |p|."""
    norm = np.sqrt((s.proba ** 2).sum(axis=1))
    picked = s.proba[np.arange(len(s.y)), s.y.astype(np.int64)]
    return s.mean(_ratio(picked, norm))


def _cosine_values(s: Splits) -> np.ndarray:
    """The cosine between the split's true and predicted value vectors (weighted: of sqrt(w) * each)."""
    y, p = s.y.astype(float), s.pred.astype(float)
    dot, yy, pp = s.per_split(s.weigh(y * p)), s.per_split(s.weigh(y * y)), s.per_split(s.weigh(p * p))
    return _ratio(dot, np.sqrt(yy * pp))


def _average_precision(s: Splits) -> np.ndarray:
    """Area under the precision-recall curve as ``average_precision_score``: sum over the distinct
    scores (highest first) of the recall gained times the precision there; one-vs-rest, macro over
    the classes present for multiclass; NaN on a split without positives."""
    columns = [(s.proba[:, 1], s.y == 1)] if s.k == 2 else [(s.proba[:, j], s.y == j) for j in range(s.k)]
    w = np.ones(len(s.y)) if s.w is None else s.w
    out = np.full((s.n, len(columns)), np.nan)
    for i, (start, size) in enumerate(zip(s.starts, s.sizes)):
        rows = slice(start, start + size)
        for j, (score, positive) in enumerate(columns):
            out[i, j] = _ap(score[rows], positive[rows], w[rows])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a split without some class: NaN there
        return np.nanmean(out, axis=1) if s.k > 2 else out[:, 0]


def _ap(score: np.ndarray, positive: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(-score, kind="mergesort")
    score, positive, w = score[order], positive[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]  # the last row of each distinct score
    tp = np.cumsum(w * positive)[last]
    fp = np.cumsum(w * ~positive)[last]
    if len(tp) == 0 or tp[-1] <= 0:
        return np.nan
    precision = _ratio(tp, tp + fp)
    recall_gain = np.diff(np.r_[0.0, tp]) / tp[-1]
    return float((recall_gain * precision).sum())


def _squared(s: Splits) -> np.ndarray:
    return (s.y.astype(float) - s.pred.astype(float)) ** 2


def _r2(s: Splits) -> np.ndarray:
    y = s.y.astype(float)
    residual = s.per_split(s.weigh(_squared(s)))
    total = s.per_split(s.weigh((y - s.mean(y)[s.group]) ** 2))
    # a constant target on a split: 1 for a perfect prediction, else 0, as scikit-learn (force_finite)
    r2 = np.where(residual == 0, 1.0, 0.0)
    np.subtract(1.0, np.divide(residual, total, out=np.zeros_like(total), where=total > 0), out=r2, where=total > 0)
    return r2


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    tasks: tuple[str, ...]
    needs: str  # "label" (predicted class), "proba" (class probabilities), "value" (regression)
    per_split: Callable[[Splits], np.ndarray]  # the metric on every split at once
    parameter: str = ""  # the name of its parameter (``NAME@VALUE``), if it takes one

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"

    def fn(self, y, arg, n_classes: int) -> float:
        """The metric on one split; ``arg`` is the predictions (or probabilities: ``needs``)."""
        proba = arg if self.needs == "proba" else None
        pred = np.asarray(arg).argmax(axis=1) if self.needs == "proba" else arg
        return float(self.per_split(Splits([(np.asarray(y), np.asarray(pred), proba)], n_classes))[0])


def top_k_for(n_classes: int) -> int:
    return max(1, min(3, n_classes - 1))


_CLS = ("binary", "multiclass")
METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("accuracy", True, _CLS, "label", _accuracy),
        Metric("balanced_accuracy", True, _CLS, "label", _balanced_accuracy),
        Metric("precision", True, _CLS, "label", lambda s: _prf(s)[0]),
        Metric("recall", True, _CLS, "label", lambda s: _prf(s)[1]),
        Metric("f1", True, _CLS, "label", lambda s: _prf(s)[2]),
        Metric("mcc", True, _CLS, "label", _mcc),
        Metric("roc_auc", True, _CLS, "proba", _roc_auc),
        Metric("pr_auc", True, _CLS, "proba", _average_precision),
        Metric("log_loss", False, _CLS, "proba", _log_loss),
        Metric("brier", False, _CLS, "proba", _brier),
        Metric("cosine_similarity", True, _CLS, "proba", _cosine_classes),
        Metric("top_k_accuracy", True, ("multiclass",), "proba", _top_k, parameter="k"),
        Metric("mse", False, ("regression",), "value", lambda s: s.mean(_squared(s))),
        Metric("rmse", False, ("regression",), "value", lambda s: np.sqrt(s.mean(_squared(s)))),
        Metric("mae", False, ("regression",), "value",
               lambda s: s.mean(np.abs(s.y.astype(float) - s.pred.astype(float)))),
        Metric("r2", True, ("regression",), "value", _r2),
    ]
}
# The regression form of cosine_similarity shares the name: which one applies is the task's.
_REGRESSION_COSINE = Metric("cosine_similarity", True, ("regression",), "value", _cosine_values)
# Metrics that exist only with their parameter (NAME@VALUE): none of their values is a default.
_PARAMETRISED = {"f_beta": Metric("f_beta", True, _CLS, "label", _f_beta, parameter="beta")}
DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


def _known() -> str:
    return ", ".join([*METRICS, "f_beta@BETA", "top_k_accuracy@K", "package.module:function"])


def get_metric(name: str, task: str | None = None) -> Metric:
    """The metric called ``name`` (``NAME@VALUE`` for one with a parameter); ``task`` picks the
    regression form of a name two tasks share."""
    if task == "regression" and name == _REGRESSION_COSINE.name:
        return _REGRESSION_COSINE
    if name in METRICS:
        return METRICS[name]
    if ":" in name:  # a user's own, by reference (tuner.evaluation.custom_metric)
        from tuner.evaluation import custom_metric

        d = custom_metric.load(name)
        return Metric(d.name, d.greater_is_better, d.tasks, d.needs, d.per_split)
    base, at, value = name.partition("@")
    metric = METRICS.get(base) or _PARAMETRISED.get(base)
    if metric is None:
        raise TunerError(f"unknown metric {name!r}; choose one of: {_known()}")
    if not at:  # f_beta alone
        raise TunerError(f"metric {base!r} needs its {metric.parameter}: e.g. {base}@2 "
                         f"(recall counts twice as much as precision) or {base}@0.5")
    if not metric.parameter:
        raise TunerError(f"metric {base!r} takes no parameter; use {base!r}")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if metric.parameter == "k":
        if not number.is_integer() or number < 1:
            raise TunerError(f"metric {name!r}: k must be a whole number of at least 1, e.g. {base}@5")
        return replace(metric, name=f"{base}@{int(number)}", per_split=partial(_top_k, k=int(number)))
    if not np.isfinite(number) or number <= 0:
        raise TunerError(f"metric {name!r}: beta must be a positive number, e.g. {base}@2")
    return replace(metric, name=f"{base}@{number:g}", per_split=partial(metric.per_split, beta=number))


def metrics_for(task: str, metric: str | None = None) -> list[Metric]:
    """Every metric of ``task``; with ``metric`` (the run's), that one too when it has a parameter."""
    out = [m for m in METRICS.values() if task in m.tasks] + ([_REGRESSION_COSINE] if task == "regression" else [])
    if metric and metric not in METRICS and metric != _REGRESSION_COSINE.name:  # NAME@VALUE, module:function
        extra = get_metric(metric, task)
        if task in extra.tasks and all(m.name != extra.name for m in out):
            out.append(extra)
    return out


def check_metric(name: str | None, task: str) -> Metric:
    """The metric to optimise for ``task``: the default when ``name`` is None."""
    metric = get_metric(name or DEFAULT_METRIC[task], task)
    if task not in metric.tasks:
        valid = ", ".join(m.name for m in metrics_for(task))
        raise TunerError(f"metric {metric.name!r} does not apply to a {task} task; choose one of: {valid}")
    return metric


def score_splits(task: str, splits: list[tuple], n_classes: int,
                 names: list[str] | None = None, metric: str | None = None) -> list[dict[str, float]]:
    """Every metric of ``task`` (or just ``names``) on each split ``(y_true, y_pred, proba)`` or
    ``(y_true, y_pred, proba, weights)``: one dict per split, computed for all splits together
    (a trial's folds at its end). ``metric``: the run's, scored too when it has a parameter."""
    if not splits:
        return []
    s = Splits(splits, n_classes)
    out: list[dict[str, float]] = [{} for _ in splits]
    wanted = metrics_for(task, metric or next((n for n in names or () if n not in METRICS), None))
    for m in wanted:
        if names is not None and m.name not in names:
            continue
        if m.needs == "proba" and s.proba is None:
            values = np.full(s.n, np.nan)
        else:
            try:
                values = np.asarray(m.per_split(s), dtype=float)  # NaN where undefined on a split
            except (ValueError, IndexError):  # predictions that do not fit the classes
                values = np.full(s.n, np.nan)
        for scores, value in zip(out, values):
            scores[m.name] = float(value)
    return out


def score_all(task: str, y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, n_classes: int,
              weights: np.ndarray | None = None, metric: str | None = None) -> dict[str, float]:
    """Every metric of ``task`` on one evaluation split (weighted when ``weights`` is given)."""
    return score_splits(task, [(y_true, y_pred, proba, weights)], n_classes, metric=metric)[0]
