"""Scores of a peer's holdout predictions, computed by ``benchmarks.compare`` (never by the peer),
and the score of the constant predictor that is the zero of the normalised score."""

from __future__ import annotations

import numpy as np
import pandas as pd

HEADLINE = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
SECONDARY = {"binary": "f1", "multiclass": "f1", "regression": "rmse"}
METRIC_COLUMNS = ["roc_auc", "accuracy", "f1", "r2", "rmse"]

def _key(v) -> str:
    """Labels compared by their text: a JSON round trip turns numpy ints into ints, etc."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def classes_of(y_train: pd.Series) -> list[str]:
    """Class keys in sorted order (the order of ``proba`` columns after :func:`aligned_proba`)."""
    keys = {_key(v) for v in y_train.tolist()}
    try:
        return sorted(keys, key=float)
    except ValueError:
        return sorted(keys)


def aligned_proba(preds: dict, classes: list[str]) -> np.ndarray | None:
    if preds.get("proba") is None:
        return None
    proba = np.asarray(preds["proba"], dtype=float)
    cols = [_key(c) for c in preds["proba_classes"]]
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(cols):
        if c in classes:
            out[:, classes.index(c)] = proba[:, j]
    return out


def score(task: str, y_test: pd.Series, preds: dict, classes: list[str] | None = None) -> dict:
    """Every metric of the task from a peer's predictions (see ``benchmarks.peers._common``)."""
    from sklearn import metrics as skm

    out = {m: np.nan for m in METRIC_COLUMNS}
    n = len(y_test)
    if task == "regression":
        values = np.asarray(preds["values"], dtype=float)
        if values.shape != (n,):
            raise ValueError(f"expected {n} predicted values, got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("predictions contain NaN or infinite values")
        y = y_test.to_numpy(dtype=float)
        out["r2"] = skm.r2_score(y, values)
        out["rmse"] = skm.root_mean_squared_error(y, values)
        return out
    classes = classes or classes_of(y_test)
    y = np.array([_key(v) for v in y_test.tolist()], dtype=object)
    labels = np.array([_key(v) for v in preds["labels"]], dtype=object)
    if labels.shape != (n,):
        raise ValueError(f"expected {n} predicted labels, got shape {labels.shape}")
    out["accuracy"] = skm.accuracy_score(y, labels)
    if task == "binary":
        positive = classes[1]
        out["f1"] = skm.f1_score(y, labels, pos_label=positive, zero_division=0)
        proba = aligned_proba(preds, classes)
        if proba is not None:
            s = proba[:, 1]
        elif preds.get("decision") is not None:
            s = np.asarray(preds["decision"], dtype=float)
            if _key(preds["proba_classes"][1]) != positive:
                s = -s
        else:
            raise ValueError("a binary peer must give proba or decision scores (ROC-AUC)")
        if len(set(y)) == 2:
            out["roc_auc"] = skm.roc_auc_score(y == positive, s)
    else:
        out["f1"] = skm.f1_score(y, labels, labels=classes, average="macro", zero_division=0)
        proba = aligned_proba(preds, classes)
        present = [c for c in classes if c in set(y)]
        if proba is not None and len(present) == len(classes):
            try:
                out["roc_auc"] = skm.roc_auc_score(y, proba / np.clip(proba.sum(1, keepdims=True), 1e-12, None),
                                                   multi_class="ovr", labels=classes)
            except ValueError:
                pass
    return out


def constant_score(task: str, y_train: pd.Series, y_test: pd.Series) -> float:
    """Headline score of a constant predictor fitted on the training rows, the zero of the
    normalised score: 0.5 ROC-AUC (prior probabilities), the holdout share of the *training*
    majority class in accuracy (not the worst peer, not the holdout majority), 0 R² (the mean)."""
    if task == "binary":
        return 0.5
    if task == "multiclass":
        majority = _key(y_train.value_counts().idxmax())
        return float(np.mean([_key(v) == majority for v in y_test.tolist()]))
    return 0.0
