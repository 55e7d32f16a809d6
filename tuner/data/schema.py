"""The schema of a table's features (which columns, numeric or categorical, which
categories and dates) and the task inferred from its target.

Why a module of its own: the schema is what training and prediction share; preprocessing,
new-row checks (:mod:`tuner.data.inputs`) and the model artifact all read it, so it sits
below them and imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tuner.data.number_text import to_numbers

TASKS = ("binary", "multiclass", "regression")
# An integer target with at most this many distinct values is read as classes.
MAX_CLASSES_FOR_INT_TARGET = 20
# How many values of a categorical column one-hot encoding keeps (the rarer ones share one
# "infrequent" column): the encoder's limit (tuner.data.preprocessing), and the limit
# prepare() names when a column has more values.
MAX_ONEHOT_CATEGORIES = 30


@dataclass
class Schema:
    """The input columns a model expects: names in order, and their kind."""

    numeric: list[str]
    categorical: list[str]  # text columns, dates and free text included (they arrive as text)
    categories: dict[str, list[str]] = field(default_factory=dict)
    datetime: list[str] = field(default_factory=list)  # the text columns holding dates
    # numeric columns whose few text values training read as missing ("?", "n/a"): the same
    # words are missing at prediction time too (any other text there is an input error)
    missing_words: dict[str, list[str]] = field(default_factory=dict)
    # the text columns holding free text (names, titles): word features (tuner.data.text)
    text: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def encoded(self) -> list[str]:
        """Text columns that are categories (encoded), as opposed to dates (expanded) and free text (words)."""
        return [c for c in self.categorical if c not in self.datetime and c not in self.text]

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical, "categories": self.categories,
                "datetime": self.datetime, "missing_words": self.missing_words, "text": self.text}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls(list(d["numeric"]), list(d["categorical"]), dict(d.get("categories", {})),
                   list(d.get("datetime", [])), dict(d.get("missing_words", {})), list(d.get("text", [])))


def infer_task(y: pd.Series) -> tuple[str, str]:
    """Binary / multiclass / regression from the target's values, with the reason."""
    n = int(y.nunique(dropna=True))
    if is_categorical_dtype(y):
        kind = "binary" if n == 2 else "multiclass"
        return kind, f"target is {dtype_name(y)} with {n} distinct values"
    if n == 2:
        return "binary", "target has exactly 2 distinct values"
    if pd.api.types.is_integer_dtype(y) and n <= MAX_CLASSES_FOR_INT_TARGET:
        return "multiclass", f"integer target with {n} distinct values (≤ {MAX_CLASSES_FOR_INT_TARGET})"
    if pd.api.types.is_float_dtype(y):
        return "regression", f"float target with {n} distinct values"
    return "regression", f"integer target with {n} distinct values (> {MAX_CLASSES_FOR_INT_TARGET})"


def is_categorical_dtype(s: pd.Series) -> bool:
    """Whether a column is read as categories: boolean, category or text dtype."""
    return (
        pd.api.types.is_bool_dtype(s)
        or isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
    )


def dtype_name(s: pd.Series) -> str:
    """How a categorical column's dtype is named in notes: boolean, category or text."""
    if pd.api.types.is_bool_dtype(s):
        return "boolean"
    if isinstance(s.dtype, pd.CategoricalDtype):
        return "category"
    return "text"


def normalise_categorical(col: pd.Series) -> pd.Series:
    """Object dtype holding strings, with NaN for missing: one representation for every fold."""
    values = np.array([np.nan if pd.isna(v) else str(v) for v in col.to_numpy(dtype=object)], dtype=object)
    return pd.Series(values, index=col.index, dtype=object)


def coerce_features(X: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Put ``X`` in the representation the pipeline was fitted on (columns in schema order)."""
    columns: dict[str, pd.Series] = {}
    for c in schema.numeric:
        col = X[c]
        if not pd.api.types.is_numeric_dtype(col):  # text: plain or written as '$1,234' (tuner.data.number_text)
            col = to_numbers(col.astype(str).str.strip().where(col.notna()))[0]
        columns[c] = pd.to_numeric(col, errors="coerce").astype(float).replace([np.inf, -np.inf], np.nan)
    for c in schema.categorical:
        columns[c] = normalise_categorical(X[c])
    return pd.DataFrame(columns, index=X.index, columns=schema.columns)  # one block: wide tables stay fast
