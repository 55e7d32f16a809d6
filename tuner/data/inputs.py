"""Check a table of new rows against a model's input schema and put it in the
representation the pipeline was fitted on.

Used by ``tuner.load(...).predict``, ``tuner predict`` and ``tuner serve``, so the three
decide every case the same way:

* a missing column is an error naming it (and every other missing one); a column given
  twice is an error;
* extra columns are ignored, with a note; the order of the columns does not matter;
* numbers are coerced where that is safe (``"3.5"`` → 3.5, ``True`` → 1.0); empty text and
  the words pandas reads as missing in a CSV file (``NA``, ``NaN``, ``null``, ``None``, ``N/A``, ...)
  are missing; text that is not a number in a numeric column is an error naming the column,
  the value and the row;
* infinite numbers, and numbers too large for a float (``1e999``, ``10**400``), are missing,
  with a note;
* missing values (NaN, None, blanks) are imputed by the model's pipeline, as in training;
* categorical values become text (``3`` and ``3.0`` both → ``"3"``); categories not seen in
  training are allowed (the encoders treat them as unknown) and counted in a note; empty
  text and the missing-value words are missing unless training saw them as a category;
* zero rows give zero predictions (the columns are still checked).
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections import Counter

import numpy as np
import pandas as pd

from tuner.data.number_text import plain_number
from tuner.data.schema import Schema
from tuner.errors import TunerError

# How many bad values an error message quotes.
_QUOTE = 3

# Text read as a missing value: what pandas.read_csv reads as NaN by default, so a value means
# the same in a CSV file (`tuner predict`), a DataFrame (`tuner.load().predict`) and JSON (`tuner serve`).
NA_TEXT = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate (not valid Unicode text; JSON's ``\\ud800`` escape can carry
    one) replaced by U+FFFD, so pandas' Arrow strings and the encoders can hold it."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def without_surrogates(value):
    """``clean_text`` applied to every string (keys included) of a parsed JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {clean_text(k): without_surrogates(v) for k, v in value.items()}
    return value


class InputError(TunerError):
    """New rows do not fit the model's input schema (``column``; ``row``: 0-based position in the frame)."""

    def __init__(self, message: str, column: str | None = None, row: int | None = None):
        super().__init__(message)
        self.column = column
        self.row = row


class InputWarning(UserWarning):
    """A note about new rows (extra columns ignored, unseen categories, out-of-range numbers)."""


def _listed(names: list[str], limit: int = 10) -> str:
    return ", ".join(repr(c) for c in names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _needs(schema: Schema) -> str:
    return f"the model needs: {', '.join(schema.columns[:30])}{' ...' if len(schema.columns) > 30 else ''}"


def check_columns(columns, schema: Schema) -> list[str]:
    """Notes about ``columns`` against the schema; a missing or repeated column raises :class:`InputError`."""
    names = [str(c) for c in columns]
    present = set(names)
    missing = [c for c in schema.columns if c not in present]
    if missing:
        raise InputError(f"missing input column{'s' if len(missing) > 1 else ''} {_listed(missing)}; {_needs(schema)}",
                         column=missing[0])
    expected = set(schema.columns)
    if len(names) != len(present):
        counts = Counter(names)
        twice = [c for c in schema.columns if counts[c] > 1]
        if twice:
            raise InputError(f"input column {twice[0]!r} is given {counts[twice[0]]} times; keep one",
                             column=twice[0])
    extra = [c for c in names if c not in expected]
    if extra:
        return [f"ignored {len(extra)} column(s) the model does not use: {_listed(extra)}"]
    return []


def record_errors(records: list, schema: Schema, limit: int = 50) -> list[InputError]:
    """Records (dicts keyed by column) that are not objects or lack a column; at most ``limit`` errors.

    ``row`` of each error is the record's position, ``column`` the missing column (None: not an object).
    """
    required = set(schema.columns)
    errors: list[InputError] = []
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            errors.append(InputError(f"record {i} must be an object {{column: value, ...}}, not {type(r).__name__}",
                                     row=i))
        elif not r.keys() >= required:
            missing = [c for c in schema.columns if c not in r]
            errors += [InputError(f"record {i} lacks column {c!r} (give null for a missing value); {_needs(schema)}",
                                  column=c, row=i) for c in missing]
        if len(errors) >= limit:
            break
    return errors[:limit]


def records_frame(records: list, schema: Schema) -> pd.DataFrame:
    """A frame from a list of records; every record must hold every column (null for missing values).

    Numeric columns holding only numbers and nulls become one float block (the common case, and
    the fast one); any other column is kept as Python objects, not pandas' Arrow-backed strings,
    which refuse text that is not valid UTF-8 (a lone surrogate, which JSON's ``\\ud800`` escape
    can carry). Extra keys become empty columns: only their names matter (a note).
    """
    errors = record_errors(records, schema, limit=1)
    if errors:
        raise errors[0]
    n = len(records)
    index = pd.RangeIndex(n)
    fast, other = [], {}
    for c in schema.numeric:
        values = [r[c] for r in records]
        if all(v is None or type(v) is float or (type(v) is int and -2 ** 63 <= v < 2 ** 63) for v in values):
            fast.append(c)  # ints beyond int64 take the object path (_numeric turns them into infinities)
        else:
            other[c] = values
    frame = pd.DataFrame(np.array([[r[c] for c in fast] for r in records], dtype=float).reshape(n, len(fast)),
                         columns=fast, index=index)
    columns = {c: pd.Series(v, index=index, dtype=object) for c, v in other.items()}
    columns.update({c: pd.Series([r[c] for r in records], index=index, dtype=object) for c in schema.categorical})
    seen = set(schema.columns)
    for r in records:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns[clean_text(str(k))] = pd.Series([None] * n, index=index, dtype=object)
    return pd.concat([frame, pd.DataFrame(columns, index=index)], axis=1) if columns else frame


def _prenumeric(v):
    """One value of a text / mixed column on its way to a float: missing words → NaN, bools and ints → float,
    numbers written as ``$1,234`` or ``12%`` → their plain text (as training read them: ``tuner.data.number_text``)."""
    if isinstance(v, str):
        s = v.strip()
        return np.nan if s in NA_TEXT else plain_number(s) or s
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, int):
        try:
            return float(v)
        except OverflowError:  # an integer beyond the float range (10**400)
            return math.inf if v > 0 else -math.inf
    return v


def _one_float(v) -> float:
    """Elementwise fallback for columns pandas cannot convert at once (NaN when not a real number)."""
    if v is None or v is pd.NA or v is pd.NaT or isinstance(v, (complex, np.complexfloating)):
        return np.nan
    if isinstance(v, (numbers.Real, str, bytes)) or type(v).__name__ == "Decimal":
        try:
            return float(v)
        except (TypeError, ValueError, OverflowError):
            return np.nan
    return np.nan


def _numeric(name: str, col: pd.Series, row_offset: int, missing_words=()) -> pd.Series:
    """``missing_words``: text that training read as missing in this column (``Schema.missing_words``)."""
    if _is_real(col.dtype):
        return col.astype(float)
    raw = col.to_numpy(dtype=object)
    if missing_words:
        words = frozenset(missing_words)
        raw = np.array([np.nan if isinstance(v, str) and v.strip() in words else v for v in raw], dtype=object)
    # a list, not Series.map: pandas would infer Arrow strings, which refuse some text
    values = pd.Series([_prenumeric(v) for v in raw], index=col.index, dtype=object)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = pd.to_numeric(values, errors="coerce")
        if not (pd.api.types.is_float_dtype(out) or pd.api.types.is_integer_dtype(out)):
            raise TypeError(f"not real numbers: {out.dtype}")
        out = out.astype(float)
    except (TypeError, ValueError, OverflowError):
        out = pd.Series([_one_float(v) for v in values], index=col.index, dtype=float)
    bad = out.isna() & values.notna()
    if bad.any():
        positions = np.flatnonzero(bad.to_numpy())
        examples = ", ".join(_short(values.iloc[i]) for i in positions[:_QUOTE])
        first_row = row_offset + int(positions[0]) + 1
        raise InputError(
            f"column {name!r} must be numeric but holds {examples} "
            f"({len(positions)} value(s), first in data row {first_row}); fix or blank those values",
            column=name, row=int(positions[0]),
        )
    return out


def _short(v, limit: int = 60) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit] + "..."


def _category_text(v, known: frozenset) -> object:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return np.nan
    if isinstance(v, str):
        return np.nan if v.strip() in NA_TEXT and v not in known else clean_text(v)
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and np.isnan(v):
            return np.nan
    if isinstance(v, float) and v.is_integer():  # 3.0 read from a float column -> "3", as in training
        v = int(v)
    return clean_text(str(v))


def _categorical(col: pd.Series, known=None) -> pd.Series:
    raw = col.to_numpy(dtype=object)
    if col.dtype == object:
        nested = [i for i, v in enumerate(raw) if isinstance(v, (dict, list, tuple, set))]
        if nested:
            raise InputError(f"column {col.name!r} must hold text or numbers but holds {_short(raw[nested[0]])} "
                             f"(first in data row {nested[0] + 1})", column=str(col.name), row=nested[0])
    known = frozenset(known or ())
    values = np.array([_category_text(v, known) for v in raw], dtype=object)
    return pd.Series(values, index=col.index, dtype=object)


def _is_real(dtype) -> bool:
    return pd.api.types.is_bool_dtype(dtype) or (pd.api.types.is_numeric_dtype(dtype)
                                                 and not pd.api.types.is_complex_dtype(dtype))


def _numeric_block(df: pd.DataFrame, names: list[str], row_offset: int,
                   missing_words: dict | None = None) -> tuple[np.ndarray, list[str]]:
    dtypes = df.dtypes
    if all(_is_real(dtypes[c]) for c in names):  # one conversion for the whole block
        block = df[names].to_numpy(dtype=float, na_value=np.nan, copy=True).reshape(len(df), len(names))
    else:
        block = np.empty((len(df), len(names)), dtype=float)
        for j, c in enumerate(names):
            col = df[c]
            if _is_real(col.dtype):
                block[:, j] = col.to_numpy(dtype=float, na_value=np.nan)
            else:
                block[:, j] = _numeric(c, col, row_offset, (missing_words or {}).get(c, ())).to_numpy(dtype=float)
    notes = []
    infinite = np.isinf(block)
    if infinite.any():
        for j in np.flatnonzero(infinite.any(axis=0)):
            notes.append(f"column {names[j]!r}: {int(infinite[:, j].sum())} infinite or out-of-range value(s) "
                         "(beyond 1.8e308 in size) are treated as missing")
        block[infinite] = np.nan
    return block, notes


def coerce(df: pd.DataFrame, schema: Schema, *, row_offset: int = 0, check: bool = True) -> tuple[pd.DataFrame, list[str]]:
    """``(X in schema order and fitted representation, notes)``; raises :class:`InputError`.

    ``row_offset`` is the number of data rows before ``df`` (so messages name file rows when
    a file is read in chunks).
    """
    notes = check_columns(df.columns, schema) if check else []
    block, more = _numeric_block(df, schema.numeric, row_offset, getattr(schema, "missing_words", None))
    notes += more
    X = pd.DataFrame(block, columns=list(schema.numeric), index=df.index)
    if schema.categorical:
        cats = pd.DataFrame({c: _categorical(df[c], schema.categories.get(c)) for c in schema.categorical},
                            index=df.index)
        X = pd.concat([X, cats], axis=1) if schema.numeric else cats
    for c in schema.categorical:
        known = schema.categories.get(c)
        if known is None:
            continue
        mask = X[c].notna() & ~X[c].isin(known)
        if mask.any():
            examples = sorted(set(X[c][mask]))[:_QUOTE]
            notes.append(
                f"column {c!r}: {int(mask.sum())} value(s) not seen in training (e.g. {', '.join(map(_short, examples))}) "
                "are treated as an unknown category"
            )
    return X, notes


def column_errors(df: pd.DataFrame, schema: Schema) -> list[InputError]:
    """Every column's type problem (one per column), for callers that report them all at once."""
    errors = []
    dtypes = df.dtypes
    for c in schema.numeric:
        if not _is_real(dtypes[c]):
            try:
                _numeric(c, df[c], 0, (getattr(schema, "missing_words", None) or {}).get(c, ()))
            except InputError as exc:
                errors.append(exc)
    for c in schema.categorical:
        try:
            _categorical(df[c])
        except InputError as exc:
            errors.append(exc)
    return errors
