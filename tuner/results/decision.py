"""How each row of a classification run's leaderboard turns its model's outputs into answers: its
calibration map (``tuner.evaluation.calibration``), then, for a binary run, its decision threshold
(``tuner.evaluation.threshold``) chosen on the calibrated probabilities. Calibrating alone never
changes a binary model's labels: without a tuned cut it answers as before, from the calibrated
probability its own 0.5 maps to. Both are worked out from the
out-of-fold predictions kept in the storage (``tuner.storage.out_of_fold``): a family's best trial's
own, the ensemble's as its members' blended with its weights. Read only: a row without kept
predictions (a table too large to keep them, a best trial by another metric outside the kept few)
has neither, and its model answers its most probable class with its own probabilities.

The ensemble's blend uses the weights chosen on every fold (its nested fold weights are not
kept): its cross-fitted scores are honest about the cut and the map, a little kind about the blend.
"""

from __future__ import annotations

import numpy as np

from tuner.config import RunConfig
from tuner.evaluation import calibration, threshold
from tuner.models.calibrated import apply_map
from tuner.models.ensemble import NAME as ENSEMBLE
from tuner.storage import out_of_fold


def _kept(trials, number) -> np.ndarray | None:
    for t in trials:
        if t.number == number:
            packed = t.user_attrs.get(out_of_fold.TRIAL_ATTR)
            return None if packed is None else np.asarray(out_of_fold.unpack(packed), dtype=np.float64)
    return None


def row_predictions(row: dict, trials_by_family: dict[str, list], n_rows: int) -> np.ndarray | None:
    """A row's out-of-fold predictions as stored (a binary row: its positive class' probability), or
    None when not kept."""
    if row["model"] == ENSEMBLE:
        parts = [(m["weight"], _kept(trials_by_family.get(m["model"], []), m["trial_number"])) for m in row["members"]]
        if any(p is None or len(p) != n_rows for _, p in parts):
            return None
        return sum(w * p for w, p in parts) / sum(w for w, _ in parts)
    p = _kept(trials_by_family.get(row["model"], []), row.get("trial_number"))
    return p if p is not None and len(p) == n_rows else None


def attach(run_study, config: RunConfig, rows: list[dict], trials_by_family: dict[str, list]) -> None:
    """Give each ``ok`` row of a classification run whose predictions are kept ``calibration``
    (``calibration.decide``'s entry) and, binary, ``threshold`` (``threshold.decide``'s result)."""
    if config.task == "regression" or run_study is None:
        return
    layout = out_of_fold.load_layout(run_study)
    if layout is None:
        return
    order = layout["test_rows"]
    y = layout["y"][order].astype(np.int64)
    w = None if layout["weights"] is None else layout["weights"][order]
    folds_per_repeat = max(1, len(layout["fold_sizes"]) // max(1, config.cv_repeats))
    forward = bool(config.time_column)
    metric = threshold.metric_for(config.metric, getattr(config, "threshold_metric", ""))
    for row in rows:
        if row["status"] != "ok":
            continue
        stored = row_predictions(row, trials_by_family, len(order))
        if stored is None:
            continue
        raw = out_of_fold.widen(stored, config.task)
        row["calibration"], proba = calibration.decide(y, raw, w, layout["fold_sizes"], folds_per_repeat,
                                                       forward=forward)
        if config.task == "binary":
            cal = row["calibration"]
            own = None if not cal["method"] else (  # the model's own labels, and the calibrated cut giving them
                threshold.labels(raw[:, 1], None), float(apply_map(cal["method"], cal["parameters"], [[0.5, 0.5]])[0, 1]))
            row["threshold"] = threshold.decide(y, proba[:, 1], w, layout["fold_sizes"], folds_per_repeat, metric,
                                                forward=forward, own=own)


__all__ = ["row_predictions", "attach"]
