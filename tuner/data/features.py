"""Feature extraction that scikit-learn lacks: calendar features from date/time text.

A date column can't be one-hot encoded usefully (nearly every value is new) and is
not a number; inside the pipeline (so it is refit per fold and shipped with the
model) it becomes year, month, day, weekday, hour and days since 1970.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

PARTS = ("year", "month", "day", "weekday", "hour", "days")


# A date of numbers only with the year last (03/04/2021, 3.4.21, 03-04-2021 10:00): day-first or month-first
_NUMERIC_DATE = re.compile(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:[ T].*)?")


def infer_dayfirst(values) -> bool:
    """Whether the dates of numbers only in ``values`` are day-first: some first number is above 12
    and no second one is (13/04/2021 occurs, 04/13/2021 does not). Otherwise month-first, as pandas reads them."""
    text = pd.Series(np.asarray(values, dtype=object).ravel()).dropna().astype(str)
    parts = text.str.extract(f"^(?:{_NUMERIC_DATE.pattern})$").dropna()
    if parts.empty:
        return False
    first, second = parts[0].astype(int), parts[1].astype(int)
    return bool((first > 12).any() and not (second > 12).any())


def parse_dates(values, dayfirst: bool = False) -> pd.Series:
    """Text → timestamps (NaT where a value is not a date), tolerant of mixed formats. ``dayfirst``
    (``infer_dayfirst``): dates of numbers only are read day-first (ISO dates stay year-month-day)."""
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
        if dayfirst:
            numeric = series.map(lambda v: isinstance(v, str) and _NUMERIC_DATE.fullmatch(v) is not None).astype(bool)
            if numeric.any():
                parsed[numeric] = pd.to_datetime(series[numeric], errors="coerce", format="mixed", dayfirst=True, utc=True)
    return parsed


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Each input column of date/time text → the numeric calendar parts in ``PARTS``.

    ``dayfirst_``: per column, whether its dates of numbers only (03/04/2021) are day-first, as
    the training rows show (``infer_dayfirst``); a model saved before it existed reads them month-first."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py

    def fit(self, X, y=None):
        frame = pd.DataFrame(X)
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.dayfirst_ = [infer_dayfirst(frame.iloc[:, j].to_numpy()) for j in range(frame.shape[1])]
        return self

    def transform(self, X):
        frame = pd.DataFrame(X)
        blocks = []
        dayfirst = getattr(self, "dayfirst_", None) or [False] * frame.shape[1]
        for j in range(frame.shape[1]):
            stamp = parse_dates(frame.iloc[:, j].to_numpy(), dayfirst[j])
            days = (stamp - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds() / 86400.0
            blocks.append(np.column_stack([
                stamp.dt.year, stamp.dt.month, stamp.dt.day, stamp.dt.day_of_week, stamp.dt.hour, days,
            ]).astype(float))
        return np.hstack(blocks) if blocks else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        names = input_features if input_features is not None else self.feature_names_in_
        return np.asarray([f"{c}__{p}" for c in names for p in PARTS], dtype=object)


def looks_like_dates(col: pd.Series, sample: int = 200) -> bool:
    """Text whose values (a sample) nearly all parse as dates and look like dates."""
    values = col.dropna().astype(str)
    if values.empty:
        return False
    values = values.sample(min(sample, len(values)), random_state=0) if len(values) > sample else values
    # a date has a separator between digits; plain numbers and words are not dates
    shaped = values.str.contains(r"\d[-/:.T ]\d|\d{1,2} [A-Za-z]{3,9} \d{2,4}|[A-Za-z]{3,9} \d{1,2},? \d{2,4}", regex=True)
    if shaped.mean() < 0.95 or pd.to_numeric(values, errors="coerce").notna().mean() > 0.5:
        return False
    return parse_dates(values, infer_dayfirst(values)).notna().mean() >= 0.95
