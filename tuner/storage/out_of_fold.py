"""Out-of-fold predictions kept in the run's storage, for the ensemble (``tuner.results.ensemble``).

What is kept, and why it stays small:

- per run, once (attribute ``oof_layout`` of the run's study): the target codes / values, the row
  weights (``--weights``) and the rows of every fold's test part, in fold order; so the ensemble
  can be (re)built from the storage alone, by any process, with no data file at hand;
- per trial (user attribute ``oof``), only for a complete trial that is among the ``KEEP`` best
  of its family when it ends: its predictions on every fold's test rows, in fold order, as
  float32 (the positive class' probability for a binary task, every class' for a multiclass one,
  the predicted value for regression).

Arrays are stored as text (zlib-compressed, base64) inside Optuna's JSON user attributes, which
every Optuna storage keeps (SQLite, PostgreSQL, journal files, workers' in-memory studies).
"""

from __future__ import annotations

import base64
import zlib

import numpy as np
import optuna

TRIAL_ATTR = "oof"
LAYOUT_ATTR = "oof_layout"
KEEP = 3  # a family's best trials that keep their predictions (and are the ensemble's candidates)
# No predictions are kept for a trial beyond this many values (rows x repeats x stored columns):
# on such tables the ensemble is not built (the leaderboard says so).
MAX_VALUES = 2_000_000


def pack(array: np.ndarray) -> dict:
    """A JSON-able form of ``array`` (dtype and shape kept)."""
    array = np.ascontiguousarray(array)
    raw = zlib.compress(array.tobytes(), 6)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "data": base64.b64encode(raw).decode("ascii")}


def unpack(packed: dict) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(packed["data"]))
    return np.frombuffer(raw, dtype=np.dtype(packed["dtype"])).reshape(packed["shape"]).copy()


def trial_predictions(fold_outputs: list[np.ndarray], task: str) -> np.ndarray:
    """One trial's kept predictions from each fold's (test rows) outputs, in fold order: values
    (regression) or class probabilities; binary keeps the positive class only."""
    stacked = np.concatenate([np.asarray(o, dtype=np.float32) for o in fold_outputs])
    if task == "binary" and stacked.ndim == 2:
        stacked = stacked[:, 1]
    return stacked


def widen(stored: np.ndarray, task: str) -> np.ndarray:
    """Back to what the metrics take: class probabilities (n, K) or values (n,), as float64."""
    values = np.asarray(stored, dtype=np.float64)
    if task == "binary":
        return np.column_stack([1.0 - values, values])
    return values


def fits(n_values: int) -> bool:
    return n_values <= MAX_VALUES


def save_layout(study: optuna.Study, y: np.ndarray, weights: np.ndarray | None, folds: list) -> None:
    """Store the run's fold layout on the run's study (once: identical on every call for a run)."""
    if LAYOUT_ATTR in study.user_attrs:
        return
    tests = [np.asarray(test, dtype=np.int32) for _, test in folds]
    study.set_user_attr(LAYOUT_ATTR, {
        "y": pack(np.asarray(y)),
        "weights": None if weights is None else pack(np.asarray(weights, dtype=np.float64)),
        "test_rows": pack(np.concatenate(tests)),
        "fold_sizes": [int(len(t)) for t in tests],
    })


def load_layout(study: optuna.Study) -> dict | None:
    """(y, weights, test_rows, fold_sizes) as arrays, or None when the run has no layout stored."""
    raw = study.user_attrs.get(LAYOUT_ATTR)
    if not raw:
        return None
    return {"y": unpack(raw["y"]), "weights": None if raw.get("weights") is None else unpack(raw["weights"]),
            "test_rows": unpack(raw["test_rows"]), "fold_sizes": list(raw["fold_sizes"])}


__all__ = ["TRIAL_ATTR", "LAYOUT_ATTR", "KEEP", "MAX_VALUES", "pack", "unpack", "trial_predictions", "widen",
           "fits", "save_layout", "load_layout"]
