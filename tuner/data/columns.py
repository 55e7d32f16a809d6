"""Screen the feature columns of a table before any model sees them: drop the ones that
cannot help (empty, constant, identifiers) and read as numbers the text columns that are
numbers with a few stray words ("?", "n/a") or numbers written as "$1,234" or "12%".

Why: these decisions use no target, so they are safe before cross-validation, and they
say what they did in notes the user sees.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tuner.data.number_text import to_numbers
from tuner.data.schema import is_categorical_dtype

_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key|index|idx)$|^(id|uuid|guid|index)[_\s-]", re.I)
_CAMEL_ID = re.compile(r"[a-z](Id|ID|Key|Index)$")  # PassengerId, customerID, RowIndex
# A unique integer per row spread over at most this many times the rows is a count: the row numbers
# of a table, or of a sample of one (75 % of 1..N has a range of 1.33 N).
ID_SPAN = 2.0


def listing(items: list[str], limit: int = 10) -> str:
    """The first ``limit`` items joined by commas, with how many more there are."""
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def useless_reason(name: str, col: pd.Series, n_rows: int) -> str | None:
    """Why the column cannot help a model (empty, constant, identifier-like), or None."""
    non_null = col.dropna()
    if non_null.empty:
        return "all values missing"
    n_unique = int(non_null.nunique())
    if n_unique == 1:
        return "constant"
    if n_rows < 20 or pd.api.types.is_float_dtype(col) or pd.api.types.is_bool_dtype(col):
        return None
    if is_categorical_dtype(col) and n_unique == len(non_null):
        return "identifier-like: a different text value in every row"
    if pd.api.types.is_integer_dtype(col) and n_unique == len(non_null) == n_rows:
        values = non_null.to_numpy()
        counting = values.max() - values.min() + 1 <= ID_SPAN * n_rows
        if counting or _ID_NAME.search(name) or _CAMEL_ID.search(name):
            return "identifier-like: a unique integer per row"
    return None


def is_text(col: pd.Series) -> bool:
    """Whether a column holds text (not booleans, not a pandas category dtype)."""
    return (is_categorical_dtype(col) and not pd.api.types.is_bool_dtype(col)
            and not isinstance(col.dtype, pd.CategoricalDtype))


# A text column whose values are at least this share numbers is numeric (the rest: missing).
NUMERIC_TEXT_SHARE = 0.95
MAX_MISSING_WORDS = 100  # distinct words of a numeric column remembered as missing


def text_as_numbers(col: pd.Series) -> tuple[float, pd.Series | None, str, list[str]]:
    """(share of the non-missing values that are numbers, the column as floats or None, what the
    text looked like, the other words as stripped text).

    Numbers include those written with a currency sign, thousands separators or a percent sign
    (``tuner.data.number_text``). The floats are given only when the share is at least
    ``NUMERIC_TEXT_SHARE`` and the column is not plain numbers alone (text of plain numbers only
    stays as it was: codes such as zip codes given as text); its other values are then missing.
    """
    values = col.dropna()
    if not is_text(col) or values.empty:
        return 0.0, None, "", []
    parsed, formatted = to_numbers(values.astype(str).str.strip())
    share = float(parsed.notna().mean())
    if share < NUMERIC_TEXT_SHARE or (share == 1.0 and not formatted.any()):
        return share, None, "", []
    words = values[parsed.isna()].astype(str).value_counts()
    shown = [f"written as {values[formatted].iloc[0]!r}"] if formatted.any() else []
    if len(words):
        shown.append(", ".join(f"{w!r} ×{n}" for w, n in words.head(3).items()) + (" ..." if len(words) > 3 else ""))
    out = np.full(len(col), np.nan)
    out[col.notna().to_numpy()] = parsed.to_numpy(dtype=float, na_value=np.nan)  # dropna keeps the order
    stripped = sorted({w.strip() for w in words.index})[:MAX_MISSING_WORDS]
    return share, pd.Series(out, index=col.index), "; ".join(shown), stripped


def numbers_in_text(X: pd.DataFrame) -> tuple[pd.DataFrame, list[str], dict[str, list[str]]]:
    """Text columns that are numbers (maybe written as ``$1,234`` or ``12%``) with a few stray words
    → numeric (the words missing); notes.

    A column where at least ``NUMERIC_TEXT_SHARE`` of the values parse as numbers is read
    as numeric and its other values become missing (imputed inside each fold). A column
    mixing numbers and text more evenly stays categorical, with a note.
    """
    as_numbers, mixed, converted, missing_words = [], [], {}, {}
    for name in X.columns:
        share, numbers, words, stripped = text_as_numbers(X[name])
        if numbers is not None:
            converted[name] = numbers
            missing_words[name] = stripped
            as_numbers.append(f"{name} ({words})")
        elif 0.05 <= share < NUMERIC_TEXT_SHARE:
            mixed.append(f"{name} ({share:.0%} numbers)")
    notes = []
    if converted:
        X = X.copy()
        for name, values in converted.items():
            X[name] = values
        notes.append("read as numbers (a few other text values, if any, as missing: imputed inside each fold): "
                     + listing(as_numbers))
    if mixed:
        notes.append("columns mixing numbers and text, treated as categorical: " + listing(mixed))
    return X, notes, missing_words


def dropped_notes(dropped: dict[str, str]) -> list[str]:
    """Notes naming the dropped columns and why (grouped by reason when there are many)."""
    if len(dropped) <= 10:
        return [f"dropped column {name!r}: {why}" for name, why in dropped.items()]
    by_reason: dict[str, list[str]] = {}
    for name, why in dropped.items():
        by_reason.setdefault(why, []).append(repr(name))
    return [f"dropped {len(names)} column(s), {why}: {listing(names)}" for why, names in by_reason.items()]
