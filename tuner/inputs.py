"""Check a table of new rows against a model's input schema and put it in the
representation the pipeline was fitted on.

Used by ``tuner.load(...).predict``, ``tuner predict`` and ``tuner serve``:

* a missing column is an error naming it;
* extra columns are ignored, with a note;
* numbers are coerced where that is safe (``"3.5"`` → 3.5, ``True`` → 1.0, empty text → missing);
  text that is not a number in a numeric column is an error naming the column and the value;
* categorical values become text (``3`` and ``3.0`` both → ``"3"``); categories not seen in
  training are allowed (the encoders treat them as unknown) and counted in a note.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .data import Schema
from .errors import TunerError

# How many bad values an error message quotes.
_QUOTE = 3


class InputError(TunerError):
    """New rows do not fit the model's input schema (``column``; ``row``: 0-based position in the frame)."""

    def __init__(self, message: str, column: str | None = None, row: int | None = None):
        super().__init__(message)
        self.column = column
        self.row = row


def check_columns(columns, schema: Schema) -> list[str]:
    """Notes about ``columns`` against the schema; a missing column raises :class:`InputError`."""
    present = set(map(str, columns))
    missing = [c for c in schema.columns if c not in present]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise InputError(
            f"missing input column{'s' if len(missing) > 1 else ''} {shown}; the model needs: "
            f"{', '.join(schema.columns[:30])}{' ...' if len(schema.columns) > 30 else ''}",
            column=missing[0],
        )
    expected = set(schema.columns)
    extra = [str(c) for c in columns if str(c) not in expected]
    if extra:
        shown = ", ".join(repr(c) for c in extra[:10]) + (f" and {len(extra) - 10} more" if len(extra) > 10 else "")
        return [f"ignored {len(extra)} column(s) the model does not use: {shown}"]
    return []


def _numeric(name: str, col: pd.Series, row_offset: int) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    if pd.api.types.is_numeric_dtype(col):
        out = col.astype(float)
    else:
        values = col.astype(object)
        blank = values.map(lambda v: isinstance(v, str) and not v.strip())
        values = values.mask(blank, np.nan)
        values = values.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v)
        out = pd.to_numeric(values, errors="coerce").astype(float)
        bad = out.isna() & values.notna()
        if bad.any():
            positions = np.flatnonzero(bad.to_numpy())
            examples = ", ".join(repr(values.iloc[i]) for i in positions[:_QUOTE])
            first_row = row_offset + int(positions[0]) + 1
            raise InputError(
                f"column {name!r} must be numeric but holds {examples} "
                f"({len(positions)} value(s), first in data row {first_row}); fix or blank those values",
                column=name, row=int(positions[0]),
            )
    return out.replace([np.inf, -np.inf], np.nan)


def _category_text(v) -> object:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
        return np.nan
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():  # 3.0 read from a float column -> "3", as in training
        v = int(v)
    return str(v)


def _categorical(col: pd.Series) -> pd.Series:
    raw = col.to_numpy(dtype=object)
    if col.dtype == object:
        nested = [i for i, v in enumerate(raw) if isinstance(v, (dict, list, tuple, set))]
        if nested:
            raise InputError(f"column {col.name!r} must hold text or numbers but holds {raw[nested[0]]!r} "
                             f"(first in data row {nested[0] + 1})", column=str(col.name), row=nested[0])
    values = np.array([_category_text(v) for v in raw], dtype=object)
    return pd.Series(values, index=col.index, dtype=object)


def _numeric_block(df: pd.DataFrame, names: list[str], row_offset: int) -> np.ndarray:
    block = np.empty((len(df), len(names)), dtype=float)
    for j, c in enumerate(names):
        col = df[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            block[:, j] = col.to_numpy(dtype=float, na_value=np.nan)
        else:
            block[:, j] = _numeric(c, col, row_offset).to_numpy(dtype=float)
    block[~np.isfinite(block)] = np.nan
    return block


def coerce(df: pd.DataFrame, schema: Schema, *, row_offset: int = 0, check: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """``(X in schema order and fitted representation, notes)``; raises :class:`InputError`.

    ``row_offset`` is the number of data rows before ``df`` (so messages name file rows when
    a file is read in chunks).
    """
    notes = check_columns(df.columns, schema) if check else []
    X = pd.DataFrame(_numeric_block(df, schema.numeric, row_offset), columns=list(schema.numeric), index=df.index)
    if schema.categorical:
        cats = pd.DataFrame({c: _categorical(df[c]) for c in schema.categorical}, index=df.index)
        X = pd.concat([X, cats], axis=1) if schema.numeric else cats
    for c in schema.categorical:
        known = schema.categories.get(c)
        if known is None:
            continue
        mask = X[c].notna() & ~X[c].isin(known)
        if mask.any():
            examples = sorted(set(X[c][mask]))[:_QUOTE]
            notes.append(
                f"column {c!r}: {int(mask.sum())} value(s) not seen in training (e.g. {', '.join(map(repr, examples))}) "
                "are treated as an unknown category"
            )
    return X, notes


def column_errors(df: pd.DataFrame, schema: Schema) -> list[InputError]:
    """Every column's type problem (one per column), for callers that report them all at once."""
    errors = []
    for c in schema.numeric:
        col = df[c]
        if not (pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col)):
            try:
                _numeric(c, col, 0)
            except InputError as exc:
                errors.append(exc)
    for c in schema.categorical:
        try:
            _categorical(df[c])
        except InputError as exc:
            errors.append(exc)
    return errors
