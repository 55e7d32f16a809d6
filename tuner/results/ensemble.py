"""The run's ensemble: a weighted average of the best trials of its families, as a leaderboard row.

Built from the storage alone (``tuner.storage.out_of_fold``): the ``KEEP`` best complete trials of
each family that kept their out-of-fold predictions are the candidates (a run with one family with
such trials has no ensemble: it asked for that family's model); greedy selection
(``tuner.evaluation.ensemble_selection``) picks the weights, and the fold scores are nested, so
they are as honest as a family's. The result is stored on the run's study with the candidates it
was built from (``tuner.workflow.derived.store_ensemble``, at the end of every run and worker); a
reader that finds the candidates changed since works the selection out in memory and stores nothing.

The row appears when the selection keeps at least two models; ``tuner export --model ensemble``
refits its members on all training rows (``tuner.deploy.export``).
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import TrialState

from tuner.config import RunConfig
from tuner.evaluation.ensemble_selection import select
from tuner.evaluation.metrics import metrics_for
from tuner.models.ensemble import NAME
from tuner.storage import out_of_fold

RESULT_ATTR = "ensemble"
VERSION = 1  # of the stored result: a result of another version is built again


def candidates(config: RunConfig, trials_by_family: dict[str, list]) -> list[tuple[str, object]]:
    """(family, trial) of each family's best complete trials with kept predictions, best first overall."""
    greater = config.direction == "maximize"
    found = []
    for family, trials in trials_by_family.items():
        kept = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and out_of_fold.TRIAL_ATTR in t.user_attrs]
        kept.sort(key=lambda t: t.value, reverse=greater)
        found += [(family, t) for t in kept[:out_of_fold.KEEP]]
    found.sort(key=lambda ft: ft[1].value, reverse=greater)
    return found


def run_study(storage, config: RunConfig) -> optuna.Study | None:
    """The run's own study (where the selection is stored), or None."""
    try:
        return optuna.load_study(study_name=config.run, storage=storage)
    except KeyError:
        return None


def selection(storage, config: RunConfig, trials_by_family: dict[str, list]) -> tuple[dict | None, bool]:
    """(the ensemble of these candidates, whether it is the stored one). A missing or stale stored
    selection is worked out in memory and not stored: ``tuner.workflow.derived.store_ensemble``
    writes it. (None, True) when there is nothing to ensemble (candidates of fewer than two
    families, no stored layout)."""
    found = candidates(config, trials_by_family)
    if len({family for family, _ in found}) < 2:  # a run of one family asked for that family's model
        return None, True
    study = run_study(storage, config)
    if study is None:
        return None, True
    key = [[family, t.number] for family, t in found]
    stored = study.user_attrs.get(RESULT_ATTR)
    if stored and stored.get("version") == VERSION and stored.get("key") == key:
        return stored, True
    layout = out_of_fold.load_layout(study)
    if layout is None:
        return None, True
    result = select_members(config, found, layout)
    result["key"] = key
    return result, False


def select_members(config: RunConfig, found: list[tuple[str, object]], layout: dict) -> dict:
    """Select over ``found`` on the run's folds; the stored result (members, weights, fold scores)."""
    rows = layout["test_rows"]
    y = layout["y"][rows]
    w = None if layout["weights"] is None else layout["weights"][rows]
    preds = [out_of_fold.widen(out_of_fold.unpack(t.user_attrs[out_of_fold.TRIAL_ATTR]), config.task) for _, t in found]
    usable = [i for i, p in enumerate(preds) if len(p) == len(rows)]  # a stale trial of another layout: skipped
    found, preds = [found[i] for i in usable], [preds[i] for i in usable]
    if len(found) < 2:
        return {"version": VERSION, "members": [], "why_not": "fewer than two candidates share the run's folds"}
    folds_per_repeat = max(1, len(layout["fold_sizes"]) // max(1, config.cv_repeats))
    selection = select(preds, y, w, layout["fold_sizes"], folds_per_repeat, config.task, len(config.classes),
                       config.metric, forward=bool(config.time_column))
    members = [{"model": family, "trial_number": t.number, "weight": float(wt), "params": dict(t.params),
                "fit_time_s": t.user_attrs.get("fit_time_s"),
                "predict_time_ms_per_1k": t.user_attrs.get("predict_time_ms_per_1k")}
               for (family, t), wt in zip(found, selection.weights) if wt > 0]
    metrics = {}
    for m in metrics_for(config.task, config.metric):
        values = np.array([s.get(m.name, np.nan) for s in selection.fold_scores], dtype=float)
        finite = values[np.isfinite(values)]
        metrics[m.name] = {"mean": float(finite.mean()) if finite.size else None,
                           "std": float(finite.std(ddof=1)) if finite.size > 1 else 0.0 if finite.size else None,
                           "folds": [float(v) if np.isfinite(v) else None for v in values]}
    return {"version": VERSION, "members": members, "metrics": metrics, "candidates": len(found)}


def row(config: RunConfig, result: dict | None) -> dict | None:
    """The leaderboard row of a stored ensemble, or None when it keeps fewer than two models."""
    if not result or len(result.get("members") or []) < 2:
        return None
    members = result["members"]
    fit = [m.get("fit_time_s") for m in members]
    predict = [m.get("predict_time_ms_per_1k") for m in members]
    return {
        "rank": None, "model": NAME, "status": "ok",
        "trials": {"complete": 0, "pruned": 0, "failed": 0},  # its members' trials are their families'

        "metrics": {name: {"mean": v["mean"], "std": v["std"]} for name, v in result["metrics"].items()},
        "fold_scores": {name: v["folds"] for name, v in result["metrics"].items()},
        "fit_time_s": None if None in fit else float(sum(fit)),
        "predict_time_ms_per_1k": None if None in predict else float(sum(predict)),
        "params": {"members": [{k: m[k] for k in ("model", "trial_number", "weight", "params")} for m in members]},
        "trial_number": None,
        "members": [{k: m[k] for k in ("model", "trial_number", "weight")} for m in members],
    }


__all__ = ["NAME", "RESULT_ATTR", "candidates", "run_study", "selection", "select_members", "row"]
