"""The decision threshold of a binary model: from which probability of the positive class it answers
"positive".

Which metric it serves: the run's when that is a label metric (accuracy, balanced_accuracy,
precision, recall, f1, f_beta@B, mcc); otherwise ``--threshold-metric`` (default ``accuracy``). A
class-balanced or resampled model read at 0.5 over-predicts a rare class; the cut chosen for
accuracy gives labels at least as good as always answering the majority class on the rows it
was chosen on.

How it is chosen: on the out-of-fold predictions of the row (a family's best trial, or the
ensemble's blend), every distinct predicted probability is a candidate cut; the label metrics of
all cuts come from cumulated (weighted) counts after one sort, scored by the metric registry's own
functions on confusion matrices (``tuner.evaluation.metrics.Counts``). Among equally good cuts the
one nearest 0.5 wins; the cut is half-way between two neighbouring predicted values.

Honest CV: each fold is scored with the cut chosen on the other folds of its repeat (forward
folds: on the earlier ones; the first fold keeps 0.5), as the ensemble's weights are. The cut kept
for the model is chosen on every fold's rows, unless those cross-fitted scores are no better than
0.5's on the same folds (by ``folds.MIN_GAIN_SE`` standard errors of the per-fold gains): then the model keeps 0.5 (its most probable class), because a cut that
does not carry over to held-back rows is noise. ``precision`` or ``recall`` alone pull the cut to an
end of the range (few or all positives): ``f_beta@B`` weighs the two.
"""

from __future__ import annotations

import numpy as np

from tuner.errors import TunerError
from tuner.evaluation.folds import carries_over, other_folds
from tuner.evaluation.metrics import Counts, check_metric, get_metric, metrics_for, score_splits

PLAIN = 0.5  # the most probable class, what the model answers without a tuned cut
DEFAULT_METRIC = "accuracy"
CUSTOM_CUTS = 101  # cuts tried for a user's own label metric (``package.module:function``)


def metric_for(run_metric: str, chosen: str = "") -> str:
    """The label metric the threshold serves (``chosen``: ``--threshold-metric``)."""
    if chosen:
        return chosen
    return run_metric if get_metric(run_metric).needs == "label" else DEFAULT_METRIC


def check(name: str, task: str) -> str:
    """``--threshold-metric``: a label metric of a binary task; its canonical name."""
    if task != "binary":
        raise TunerError(f"--threshold-metric applies to binary tasks; this one is {task} "
                         "(multiclass predictions are the most probable class)")
    metric = check_metric(name, task)
    if metric.needs != "label":
        labels = ", ".join(m.name for m in metrics_for(task) if m.needs == "label")
        raise TunerError(f"--threshold-metric {name!r} does not score labels, so no cut changes it; "
                         f"choose one of: {labels}, f_beta@BETA")
    return metric.name


def sweep(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(cuts, scores): every candidate cut (positive when ``p >= cut``) and ``metric`` at it."""
    order = np.argsort(-p, kind="mergesort")
    values = p[order]
    weight = np.ones(len(p)) if w is None else np.asarray(w, dtype=float)[order]
    positive = y[order] == 1
    last = np.r_[np.flatnonzero(values[1:] != values[:-1]), len(values) - 1] if len(values) else np.zeros(0, int)
    tp = np.r_[0.0, np.cumsum(weight * positive)[last]]
    fp = np.r_[0.0, np.cumsum(weight * ~positive)[last]]
    distinct = values[last]
    below = np.r_[distinct[1:], -np.inf]
    middle = np.where(np.isfinite(below), (distinct + below) / 2, distinct)
    middle = np.where(middle > below, middle, distinct)  # neighbouring floats: the upper one
    cuts = np.r_[np.nextafter(distinct[0], np.inf) if len(distinct) else PLAIN, middle]
    if ":" in metric:  # a user's label metric reads labels, not counts: at most CUSTOM_CUTS cuts, each scored
        return _scored_cuts(y, p, w, metric, cuts)
    p_total, n_total = tp[-1], fp[-1]
    confusion = np.stack([np.stack([n_total - fp, fp], axis=1), np.stack([p_total - tp, tp], axis=1)], axis=1)
    return cuts, np.asarray(get_metric(metric).per_split(Counts(confusion)), dtype=float)


def _scored_cuts(y, p, w, metric: str, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(cuts) > CUSTOM_CUTS:
        cuts = np.unique(np.r_[cuts[0], np.quantile(cuts[1:], np.linspace(0, 1, CUSTOM_CUTS - 1))])[::-1]
    splits = [(y, (p >= c).astype(np.int64), None, w) for c in cuts]
    return cuts, np.array([s[metric] for s in score_splits("binary", splits, 2, names=[metric], metric=metric)])


def best_cut(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, metric: str) -> float:
    """The cut with the best ``metric`` on these rows (ties: the one nearest 0.5)."""
    if len(y) == 0:
        return PLAIN
    cuts, scores = sweep(y, p, w, metric)
    sign = 1.0 if get_metric(metric).greater_is_better else -1.0
    scores = np.where(np.isfinite(scores), sign * scores, -np.inf)
    if not np.isfinite(scores.max()):
        return PLAIN
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(cuts[best[np.argmin(np.abs(cuts[best] - PLAIN))]])


def _labels(p: np.ndarray, cut: float | None) -> np.ndarray:
    """Labels at ``cut`` (None: the most probable class, as ``argmax`` of the two columns)."""
    return (p > PLAIN).astype(np.int64) if cut is None else (p >= cut).astype(np.int64)


def decide(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, fold_sizes: list[int], folds_per_repeat: int,
           metric: str, *, forward: bool = False, own: tuple[np.ndarray, float] | None = None) -> dict:
    """The threshold a binary row keeps, and its cross-fitted label metrics (module docstring).

    ``p``: the positive class' out-of-fold probability of every fold's test rows, folds one after
    another (``fold_sizes``), ``y`` / ``w`` the same rows' codes / weights. ``own``: for probabilities
    that went through a calibration map, (the model's own labels, the cut on ``p`` that gives them):
    what the model answers without a tuned cut, so calibrating alone never changes its labels.
    """
    starts = np.concatenate(([0], np.cumsum(fold_sizes))).astype(int)
    folds = [np.arange(starts[f], starts[f + 1]) for f in range(len(fold_sizes))]
    tuned, plain, fold_cuts = [], [], []
    for f, test in enumerate(folds):
        others = other_folds(f, folds_per_repeat, forward)
        cut = None
        if others:
            sel = np.concatenate([folds[g] for g in others])
            cut = best_cut(y[sel], p[sel], None if w is None else w[sel], metric)
        fold_cuts.append(cut)
        wt = None if w is None else w[test]
        tuned.append((y[test], _labels(p[test], cut), None, wt))
        plain.append((y[test], _labels(p[test], None) if own is None else own[0][test], None, wt))
    names = [m.name for m in metrics_for("binary", metric) if m.needs == "label"]
    tuned_scores = score_splits("binary", tuned, 2, names=names, metric=metric)
    plain_scores = score_splits("binary", plain, 2, names=names, metric=metric)
    sign = 1.0 if get_metric(metric).greater_is_better else -1.0

    def mean(scores, name):
        values = np.array([s[name] for s in scores], dtype=float)
        return float(np.nanmean(values)) if np.isfinite(values).any() else None

    # better on held-back folds by more than the folds' noise
    keep = carries_over(sign * np.array([t[metric] - q[metric] for t, q in zip(tuned_scores, plain_scores)], dtype=float))
    scores = tuned_scores if keep else plain_scores
    summary = {}
    for name in names:
        values = np.array([s[name] for s in scores], dtype=float)
        finite = values[np.isfinite(values)]
        summary[name] = {"mean": float(finite.mean()) if finite.size else None,
                         "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0 if finite.size else None}
    return {
        "threshold": best_cut(y, p, w, metric) if keep else None if own is None else float(own[1]),
        "tuned": bool(keep),  # False: the model's own labels (its most probable class before any calibration)
        "metric": metric,
        "cv": summary,  # label metrics at the cut, each fold's chosen on the other folds
        "at_plain": {name: mean(plain_scores, name) for name in names},  # the same folds, the model's own labels
        "fold_thresholds": [None if c is None else float(c) for c in fold_cuts],
        "rows": int(len(y)),
    }


def labels(proba_positive: np.ndarray, threshold: float | None) -> np.ndarray:
    """Class codes (0 / 1) of a binary model's rows at its ``threshold`` (None: the most probable class)."""
    return _labels(np.asarray(proba_positive, dtype=float), threshold)


__all__ = ["PLAIN", "DEFAULT_METRIC", "metric_for", "check", "sweep", "best_cut", "decide", "labels"]
