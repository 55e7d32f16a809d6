"""Columns that describe the rows rather than feature them: ``--groups``, ``--time-column`` and ``--weights``.

Neither is a feature. The group column says which rows belong together (a patient, a customer,
a store): folds and the held-out test set then keep each group on one side
(``tuner.evaluation.folds``, ``tuner.data.dataset.split_holdout``). The time column orders the
rows: prepared data is sorted by it (a stable sort: rows at the same time keep their file
order), folds go forward in time and the held-out test set is the latest rows. Because the
time column is not a feature, ``tuner predict`` and ``tuner serve`` never need it; a table
whose dates carry signal (season, weekday) can keep a copy of the column under another name,
which becomes calendar features like any other date column. The weight column says how much
each row counts, in every fit and every metric (``tuner.evaluation.weights``); a weight of 0
leaves a row out of both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tuner.data.columns import listing
from tuner.data.features import infer_dayfirst, parse_dates
from tuner.errors import TunerError


def check_names(df: pd.DataFrame, target: str, groups: str | None, time_column: str | None,
                weights: str | None = None) -> None:
    """Exit-2 errors for a group / time / weight column that is absent, is the target, or is another one."""
    named = [(flag, name) for flag, name in (("--groups", groups), ("--time-column", time_column),
                                              ("--weights", weights)) if name]
    for i, (flag, name) in enumerate(named):
        for other, same in named[:i]:
            if same == name:
                raise TunerError(f"{name!r} is given as both {other} and {flag}; use it for one of them")
    for flag, name in (("--groups", groups), ("--time-column", time_column), ("--weights", weights)):
        if not name:
            continue
        if name == target:
            raise TunerError(f"{flag} {name!r} is the target column; choose another column for {flag}")
        if name not in df.columns:
            close = [c for c in df.columns if str(c).lower() == str(name).lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else f"; columns are: {', '.join(map(str, df.columns[:20]))}"
            raise TunerError(f"{flag} column {name!r} is not in the data{hint}")
    if groups and time_column:
        raise TunerError("--groups and --time-column together are not supported: forward folds would split "
                         "groups; use --time-column for data whose future is predicted, --groups otherwise")


def group_codes(col: pd.Series) -> np.ndarray:
    """The group of each row as 0..G-1 (in order of first appearance); missing values are refused."""
    missing = int(col.isna().sum())
    if missing:
        raise TunerError(f"group column {col.name!r} is empty in {missing} row(s); fill those rows (a group of "
                         "their own each, if they are independent) or drop them")
    codes, _ = pd.factorize(col, sort=False)
    return codes.astype(np.int64)


def time_values(col: pd.Series) -> pd.Series:
    """The time column as numbers or timestamps that sort; missing or unreadable values are refused."""
    missing = int(col.isna().sum())
    if missing:
        raise TunerError(f"time column {col.name!r} is empty in {missing} row(s); fill or drop those rows")
    if pd.api.types.is_bool_dtype(col):
        raise TunerError(f"time column {col.name!r} holds true/false values, not times; choose a date or number column")
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
        return col
    text = col.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        return numbers
    try:
        parsed = parse_dates(text.to_numpy(), infer_dayfirst(text.to_numpy())).set_axis(col.index)
    except (ValueError, TypeError, OverflowError):
        parsed = pd.Series(pd.NaT, index=col.index)
    bad = parsed.isna()
    if bad.any():
        examples = listing([repr(v) for v in dict.fromkeys(col[bad].astype(str).head(3).tolist())])
        raise TunerError(f"time column {col.name!r} has {int(bad.sum())} value(s) that are neither dates nor numbers "
                         f"(e.g. {examples}); fix them, or choose another --time-column")
    return parsed


def weight_values(col: pd.Series) -> np.ndarray:
    """The weight of each row: finite numbers ≥ 0, not all 0; anything else is refused."""
    numbers = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_bool_dtype(col) else col.astype(float)
    values = numbers.to_numpy(dtype=float, na_value=np.nan)
    empty, unreadable = int(col.isna().sum()), int((numbers.isna() & col.notna()).sum())
    if unreadable:
        examples = listing([repr(v) for v in dict.fromkeys(col[numbers.isna() & col.notna()].astype(str).head(3))])
        raise TunerError(f"weight column {col.name!r} has {unreadable} value(s) that are not numbers (e.g. {examples}); "
                         "fix them, or choose another --weights")
    if empty:
        raise TunerError(f"weight column {col.name!r} is empty in {empty} row(s); give those rows a weight "
                         "(0 leaves a row out) or drop them")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise TunerError(f"weight column {col.name!r} has {int(bad.sum())} negative or infinite value(s) "
                         f"(e.g. {values[bad][0]:g}); weights must be finite numbers ≥ 0")
    if not (values > 0).any():
        raise TunerError(f"every weight in {col.name!r} is zero: no row would count; check the column")
    return values


def time_order(values: pd.Series) -> np.ndarray:
    """Row positions sorted by time; rows with equal times keep their order (stable)."""
    return np.argsort(values.to_numpy(), kind="stable")


def describe_span(values: pd.Series) -> str:
    """'from A to B' for a note, in the column's own terms."""
    first, last = values.min(), values.max()
    if isinstance(first, pd.Timestamp):
        fmt = "%Y-%m-%d %H:%M:%S" if (first.hour, first.minute, first.second, last.hour, last.minute,
                                       last.second) != (0,) * 6 else "%Y-%m-%d"
        return f"from {first.strftime(fmt)} to {last.strftime(fmt)}"
    return f"from {first:g} to {last:g}"


__all__ = ["check_names", "group_codes", "time_values", "weight_values", "time_order", "describe_span"]
