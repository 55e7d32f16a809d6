"""``cv_results_`` in scikit-learn's shape (GridSearchCV / RandomizedSearchCV) from a run's trials.

One entry per trial of every family (complete, pruned or failed), in family order then trial
order, then the run's ensemble (``tuner.results.ensemble``) when it has one. Scores follow scikit-learn's "greater is better" convention, as its ``neg_*`` scorers do:
a metric to minimise (rmse, log_loss, ...) is stored negated. A pruned trial has the folds it ran
and NaN for the others, a failed one NaN everywhere; NaN scores rank last.
"""

from __future__ import annotations

import numpy as np
from optuna.trial import TrialState

from tuner.evaluation.metrics import get_metric
from tuner.storage.runs import load_family_study

_STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def cv_results(storage, config, ensemble: dict | None = None) -> dict:
    """The run's trials as scikit-learn's ``cv_results_`` dict (plus ``model``, ``trial_number``, ``state``);
    ``ensemble``: the run's ensemble row of the leaderboard, one more candidate (trial number -1)."""
    metric = config.metric
    sign = 1.0 if get_metric(metric).greater_is_better else -1.0
    n_folds = config.cv * config.cv_repeats
    entries = []
    for family in config.families:
        study = load_family_study(storage, config.run, family)
        for t in study.get_trials(deepcopy=False, states=tuple(_STATES)) if study is not None else []:
            stored = t.user_attrs.get("metrics", {}).get(metric) or {}
            folds = stored.get("folds")
            if folds is None:  # pruned / failed: the folds it ran
                folds = [t.intermediate_values.get(i) for i in range(n_folds)]
            folds = [np.nan if v is None else sign * float(v) for v in folds][:n_folds]
            folds += [np.nan] * (n_folds - len(folds))
            mean = stored.get("mean")
            entries.append({
                "model": family, "trial_number": t.number, "state": _STATES[t.state],
                "params": {"model": family, **t.params}, "folds": folds,
                "mean": np.nan if mean is None or t.state != TrialState.COMPLETE else sign * float(mean),
                "std": np.nan if stored.get("std") is None else float(stored["std"]),
                "fit_time": float(t.user_attrs.get("fit_time_s") or np.nan),
            })
    if ensemble is not None:
        folds = [np.nan if v is None else sign * float(v) for v in ensemble["fold_scores"][metric]]
        entries.append({
            "model": ensemble["model"], "trial_number": -1, "state": "complete",
            "params": {"model": ensemble["model"], **ensemble["params"]}, "folds": folds,
            "mean": sign * float(ensemble["metrics"][metric]["mean"]),
            "std": float(ensemble["metrics"][metric]["std"] or 0.0), "fit_time": float(ensemble["fit_time_s"] or np.nan),
        })
    out: dict = {}
    out["mean_fit_time"] = np.array([e["fit_time"] for e in entries], dtype=float)
    out["std_fit_time"] = np.full(len(entries), np.nan)  # per-fold fit times are not stored
    out["mean_score_time"] = np.full(len(entries), np.nan)
    out["std_score_time"] = np.full(len(entries), np.nan)
    names = list(dict.fromkeys(k for e in entries for k in e["params"]))
    for name in names:
        values = np.ma.MaskedArray(np.empty(len(entries), dtype=object), mask=True)
        for i, e in enumerate(entries):
            if name in e["params"]:
                values[i] = e["params"][name]
        out[f"param_{name}"] = values
    out["params"] = [e["params"] for e in entries]
    for k in range(n_folds):
        out[f"split{k}_test_score"] = np.array([e["folds"][k] for e in entries], dtype=float)
    means = np.array([e["mean"] for e in entries], dtype=float)
    out["mean_test_score"] = means
    out["std_test_score"] = np.array([e["std"] for e in entries], dtype=float)
    out["rank_test_score"] = _ranks(means)
    out["model"] = np.array([e["model"] for e in entries], dtype=object)
    out["trial_number"] = np.array([e["trial_number"] for e in entries], dtype=int)
    out["state"] = np.array([e["state"] for e in entries], dtype=object)
    return out


def _ranks(means: np.ndarray) -> np.ndarray:
    """1 = best; ties share the lowest rank (scipy's 'min'), NaN ranks after every score, as scikit-learn does."""
    filled = np.where(np.isnan(means), -np.inf, means)
    order = np.argsort(-filled, kind="stable")
    ranks = np.empty(len(means), dtype=np.int32)
    rank = 0
    for position, i in enumerate(order):
        if position == 0 or filled[i] != filled[order[position - 1]]:
            rank = position + 1
        ranks[i] = rank
    return ranks


__all__ = ["cv_results"]
