"""Which columns a model relies on: permutation importance on rows it did not train on.

For each of the table's own columns (the prepared features: before one-hot, polynomial or word
features, so a categorical or free-text column is one entry), its values are shuffled among the
held-out rows and the run's metric is scored again; the importance is how much worse the metric
gets, in its own units (a fall in roc_auc, a rise in rmse; scikit-learn's
``permutation_importance``, weighted on a ``--weights`` run); near 0 or below: the model does
not need the column. The held-out rows
are the ``--test-size`` part when the run has one (the model refit on the training part), else
the test rows of up to ``MAX_FOLDS`` of the run's own CV folds (one fit per fold). The spread is
the standard deviation over every shuffle of every fold. A column that matters only together
with a correlated one can look unimportant: shuffling one leaves the other.
"""

from __future__ import annotations

import numpy as np

from tuner.evaluation.cross_validation import fit_quietly, predict_outputs
from tuner.evaluation.estimator import build_estimator, space_context
from tuner.evaluation.folds import folds_for_run
from tuner.evaluation.metrics import get_metric, score_all
from tuner.evaluation.weights import fit_params

MAX_FOLDS = 3  # CV folds refit for the importances when there is no held-out test part
MAX_ROWS = 2_000  # held-out rows shuffled per fold (a seeded sample above that)
REPEATS = 5  # shuffles per column and fold


def fit_estimate_s(config, row: dict | None, *, whole: bool) -> float | None:
    """Seconds one fit of ``row``'s configuration should take, from its measured mean fold fit: on a
    fold's training rows, or (``whole``) on all of the run's training rows. None: no measurement."""
    fit = (row or {}).get("fit_time_s")
    if fit is None or fit != fit:
        return None
    return float(fit) * (config.cv / max(1, config.cv - 1) if whole else 1.0)


def shuffle_estimate_s(row: dict | None, n_columns: int, n_rows: int, repeats: int) -> float | None:
    """Seconds the shuffles of one fold should take: a prediction of ``n_rows`` rows per column and
    repeat (and one unshuffled), from ``row``'s measured prediction time. None: no measurement."""
    ms = (row or {}).get("predict_time_ms_per_1k")
    if ms is None or ms != ms:
        return None
    return float(ms) / 1e6 * min(n_rows, MAX_ROWS) * (1 + repeats * n_columns)


def permutation_importances(config, family: str, params: dict, train, test=None, *, n_jobs: int = 1,
                            repeats: int = REPEATS, on_step=None, row: dict | None = None) -> dict:
    """``{"metric", "family", "where", "repeats", "columns": [{"column", "mean", "std"}, ...]}``,
    most important first; ``repeats`` ≥ 2 shuffles per column and fold. ``on_step(text, estimate_s)``:
    called as each refit and each fold's shuffles start (``estimate_s`` from ``row``, the family's
    leaderboard row, when given; else None)."""
    from sklearn.inspection import permutation_importance

    repeats = max(2, int(repeats))
    n_columns = train.X.shape[1]
    sign = 1.0 if get_metric(config.metric).greater_is_better else -1.0
    k = len(config.classes)

    def scorer(estimator, X, y, sample_weight=None) -> float:
        pred, proba = predict_outputs(estimator, X, config.task, k)
        value = score_all(config.task, y, pred, proba, k, sample_weight, config.metric)[config.metric]
        return sign * value  # greater is better, as permutation_importance expects

    def held_out(fit_rows, fit_y, fit_w, X, y, w, seed: int, where: str = "") -> np.ndarray:
        if on_step is not None:
            on_step(f"importance{where}: refitting {family} on {len(fit_y)} rows",
                    fit_estimate_s(config, row, whole=test is not None))
        estimator = build_estimator(config, family, params, space_context(config, n_jobs))
        fit_quietly(estimator, fit_rows, fit_y, **fit_params(estimator, fit_w))
        if len(y) > MAX_ROWS:
            keep = np.sort(np.random.default_rng(seed).choice(len(y), MAX_ROWS, replace=False))
            X, y, w = X.iloc[keep], y[keep], None if w is None else w[keep]
        if on_step is not None:
            on_step(f"importance{where}: shuffling {n_columns} column(s) × {repeats} on {len(y)} held-out rows",
                    shuffle_estimate_s(row, n_columns, len(y), repeats))
        result = permutation_importance(estimator, X, y, scoring=scorer, n_repeats=repeats, random_state=seed,
                                        sample_weight=w, n_jobs=1)
        return result.importances  # (columns, repeats): how much worse the metric gets, in its units

    if test is not None:
        drops = [held_out(train.X, train.y, train.weights, test.X.reset_index(drop=True), test.y, test.weights,
                          config.seed, " (the held-out test part)")]
        where = f"the held-out test part ({len(test.y)} rows), the model refit on the training part"
    else:
        drops = []
        folds = folds_for_run(config, train, repeats=1)[:MAX_FOLDS]
        for i, (tr, te) in enumerate(folds):
            w = train.weights
            drops.append(held_out(train.X.iloc[tr], train.y[tr], None if w is None else w[tr],
                                  train.X.iloc[te].reset_index(drop=True), train.y[te], None if w is None else w[te],
                                  config.seed + i, f", fold {i + 1} of {len(folds)}"))
        where = f"the test rows of {len(folds)} CV fold(s), the model refit on each fold's training rows"
    values = np.concatenate(drops, axis=1)
    columns = [{"column": str(c), "mean": float(m), "std": float(s)}
               for c, m, s in zip(train.X.columns, values.mean(axis=1), values.std(axis=1, ddof=1))]
    columns.sort(key=lambda r: r["mean"], reverse=True)
    return {"metric": config.metric, "family": family, "where": where, "repeats": repeats, "columns": columns}


__all__ = ["permutation_importances", "fit_estimate_s", "shuffle_estimate_s", "MAX_FOLDS", "MAX_ROWS", "REPEATS"]
