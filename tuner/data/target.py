"""Encode the target column: numbers for regression, class codes 0..K-1 for
classification, with the positive class of a binary target as code 1.

Why a module of its own: the class order is part of every run and model (binary metrics
score code 1, the model card lists the classes by code), so it is decided in one place
and recomputed the same way when a run's data is reloaded (:func:`run_pos_label`).
"""

from __future__ import annotations

import shlex

import numpy as np
import pandas as pd

from tuner.errors import TunerError

_POSITIVE_METRICS = "precision, recall, f1 and roc_auc"


def check_target_values(df: pd.DataFrame, target: str) -> None:
    """Refuse a numeric target holding infinities, naming the first row."""
    col = df[target]
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        values = col.to_numpy(dtype=float, na_value=np.nan)
        bad = np.flatnonzero(np.isinf(values))
        if bad.size:
            raise TunerError(f"target {target!r} holds {bad.size} infinite value(s) (first in data row {bad[0] + 1}); "
                             "remove or correct those rows")


def _same_label(label, wanted) -> bool:
    if isinstance(wanted, str) and not isinstance(label, str):
        if isinstance(label, bool):
            return wanted.strip().lower() == str(label).lower()
        try:
            return float(wanted) == float(label)
        except (TypeError, ValueError):
            return False
    return label == wanted and isinstance(label, bool) == isinstance(wanted, bool)


def positive_class(y: np.ndarray, classes: list, task: str, target: str, pos_label) -> tuple[np.ndarray, list, str | None]:
    """Order binary classes so the positive one is code 1 (what the binary metrics score); the note."""
    if pos_label is not None and task != "binary":
        raise TunerError(f"--pos-label applies to binary targets only; {target!r} is a {task} target"
                         + (f" with {len(classes)} classes" if task == "multiclass" else "") + "; drop --pos-label")
    if task != "binary":
        return y, classes, None
    if pos_label is None:
        return y, classes, (f"positive class for {_POSITIVE_METRICS}: {classes[1]!r} (the second of the sorted "
                            f"labels; to score {classes[0]!r} as positive, pass --pos-label {shlex.quote(str(classes[0]))})")
    match = [c for c in classes if _same_label(c, pos_label)]
    if not match:
        raise TunerError(f"--pos-label {pos_label!r} is not a class of target {target!r}; its classes are "
                         f"{', '.join(map(repr, classes))}")
    if classes.index(match[0]) == 0:
        y, classes = (1 - y).astype(np.int64), [classes[1], classes[0]]
    return y, classes, f"positive class for {_POSITIVE_METRICS}: {classes[1]!r} (set by --pos-label)"


def merge_spaced_labels(y: pd.Series, target: str) -> tuple[pd.Series, str | None]:
    """Text labels that differ only in surrounding spaces ('Yes' and 'Yes ') as one class, and the
    note; a target without such pairs is returned as it is (' <=50K' everywhere keeps its space)."""
    if not (pd.api.types.is_object_dtype(y) or pd.api.types.is_string_dtype(y)):
        return y, None
    text = y.map(lambda v: v.strip() if isinstance(v, str) else v)
    if text.nunique(dropna=True) == y.nunique(dropna=True):
        return y, None
    changed = (y != text) & y.notna()
    pairs = dict.fromkeys(zip(y[changed].tolist(), text[changed].tolist()))
    shown = ", ".join(f"{a!r} → {b!r}" for a, b in list(pairs)[:3]) + (" ..." if len(pairs) > 3 else "")
    return text, (f"target {target!r} has labels that differ only in surrounding spaces: read as one class "
                  f"each, without the spaces ({shown})")


def run_pos_label(config):
    """The positive class a run was made with (binary runs), to re-encode its data the same way."""
    if getattr(config, "task", None) == "binary" and len(getattr(config, "classes", []) or []) == 2:
        return config.classes[1]
    return None


def encode_target(y_raw: pd.Series, task: str, target: str) -> tuple[np.ndarray, list]:
    """(y, classes): floats for regression, class codes 0..K-1 with the sorted labels for classification."""
    if task == "regression":
        y = pd.to_numeric(y_raw, errors="coerce")
        if y.isna().any():
            bad = y_raw[y.isna()].iloc[0]
            raise TunerError(
                f"target {target!r} has non-numeric value {bad!r}; regression needs numbers (or use --task multiclass)"
            )
        y = y.to_numpy(dtype=float)
        if not np.isfinite(y).all():
            raise TunerError(f"target {target!r} holds infinite values; remove or correct those rows")
        return y, []
    labels, codes = _sorted_labels(y_raw)
    if len(labels) < 2:
        raise TunerError(
            f"target {target!r} has a single class ({labels[0]!r}); classification needs at least two"
        )
    if task == "binary" and len(labels) != 2:
        raise TunerError(f"--task binary needs 2 classes but {target!r} has {len(labels)}; use --task multiclass")
    return codes, labels


def _sorted_labels(y: pd.Series) -> tuple[list, np.ndarray]:
    values = y.to_numpy()
    uniques = pd.unique(values)
    try:
        labels = sorted(uniques.tolist())
    except TypeError:  # mixed types: order by text
        labels = sorted(uniques.tolist(), key=str)
    labels = [_native(v) for v in labels]
    index = {label: i for i, label in enumerate(labels)}
    codes = np.array([index[_native(v)] for v in values], dtype=np.int64)
    return labels, codes


def _native(v):
    """numpy scalars → Python scalars, so class labels go to JSON and back unchanged."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v
