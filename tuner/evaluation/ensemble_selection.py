"""Greedy ensemble selection (Caruana et al., 2004) on out-of-fold predictions, scored honestly.

Selection: start from nothing; in each of ``ROUNDS`` rounds add (with replacement) the candidate
whose addition gives the best score of the averaged predictions (stopping after ``PATIENCE``
rounds without a better one); keep the round that scored best. A candidate's weight is how often it was picked over the rounds kept. Classification
averages class probabilities (the predicted class is the most probable one), regression averages
values.

Honest CV score: the weights that score fold ``k`` are chosen on the other folds of the same
repeat, never with fold ``k``'s rows (on a time-ordered run, on the earlier folds only; the
first fold then scores the plain average). So an ensemble of models that only fit noise gets no
lift over its members from the selection itself. The weights kept for the exported model are
chosen on every fold's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tuner.evaluation.folds import other_folds
from tuner.evaluation.metrics import get_metric, score_splits

ROUNDS = 25
PATIENCE = 5  # rounds without a better score before the selection stops early
# Weights are chosen on at most this many rows (a seeded sample): the selection's cost grows with
# rows x candidates x rounds, and its weights change little beyond it. Fold scores use every row.
SELECTION_ROWS = 5_000


@dataclass
class Selection:
    weights: np.ndarray  # one per candidate, summing to 1: the model that is exported
    fold_scores: list[dict[str, float]]  # every metric of the task, per fold (nested, as above)


def _splits(blends: list[np.ndarray], y: np.ndarray, w: np.ndarray | None, task: str) -> list[tuple]:
    if task == "regression":
        return [(y, b, None, w) for b in blends]
    return [(y, b.argmax(axis=1), b, w) for b in blends]


def greedy_weights(preds: list[np.ndarray], y: np.ndarray, w: np.ndarray | None, task: str, n_classes: int,
                   metric: str, rounds: int = ROUNDS) -> np.ndarray:
    """Weights (summing to 1) over ``preds`` (each candidate's predictions on the same rows)."""
    sign = 1.0 if get_metric(metric).greater_is_better else -1.0
    if len(y) > SELECTION_ROWS:
        keep = np.sort(np.random.default_rng(len(y)).choice(len(y), SELECTION_ROWS, replace=False))
        preds, y, w = [p[keep] for p in preds], y[keep], None if w is None else w[keep]
    counts = np.zeros(len(preds))
    total = None
    best_score, best_counts, best_round = -np.inf, None, 0
    for r in range(rounds):
        blends = preds if total is None else [(total + p) / (r + 1) for p in preds]
        # one call per blend: a single split takes the metrics' fast path (ROC-AUC: one argsort)
        scores = np.array([score_splits(task, [split], n_classes, names=[metric])[0][metric]
                           for split in _splits(blends, y, w, task)])
        scores = np.where(np.isfinite(scores), sign * scores, -np.inf)
        pick = int(np.argmax(scores))  # ties: the earlier candidate (candidates come best first)
        counts[pick] += 1
        total = preds[pick].copy() if total is None else total + preds[pick]
        if scores[pick] > best_score:
            best_score, best_counts, best_round = scores[pick], counts.copy(), r
        elif best_counts is not None and r - best_round >= PATIENCE:
            break
    if best_counts is None:  # every blend scored NaN: the best candidate alone
        best_counts = np.eye(len(preds))[0]
    return best_counts / best_counts.sum()


def blend(preds: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return sum(wt * p for wt, p in zip(weights, preds) if wt > 0)


def select(preds: list[np.ndarray], y: np.ndarray, w: np.ndarray | None, fold_sizes: list[int], folds_per_repeat: int,
           task: str, n_classes: int, metric: str, *, forward: bool = False) -> Selection:
    """Nested selection over the folds (see the module docstring).

    ``preds``: each candidate's predictions on every fold's test rows, folds one after another
    (``fold_sizes`` rows each); ``y`` / ``w``: the true values / row weights of those rows in the same
    order; folds ``r * folds_per_repeat ...`` form repeat ``r``. ``forward``: a time-ordered run.
    """
    starts = np.concatenate(([0], np.cumsum(fold_sizes)))
    rows = [np.arange(starts[f], starts[f + 1]) for f in range(len(fold_sizes))]
    uniform = np.full(len(preds), 1.0 / len(preds))
    fold_splits = []
    for f, test in enumerate(rows):
        others = other_folds(f, folds_per_repeat, forward)
        if others:
            sel = np.concatenate([rows[g] for g in others])
            weights = greedy_weights([p[sel] for p in preds], y[sel], None if w is None else w[sel], task, n_classes,
                                     metric)
        else:
            weights = uniform
        fold_splits.append(_splits([blend([p[test] for p in preds], weights)], y[test],
                                   None if w is None else w[test], task)[0])
    fold_scores = score_splits(task, fold_splits, n_classes, metric=metric)
    return Selection(greedy_weights(preds, y, w, task, n_classes, metric), fold_scores)


__all__ = ["ROUNDS", "PATIENCE", "SELECTION_ROWS", "Selection", "greedy_weights", "blend", "select"]
