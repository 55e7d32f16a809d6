"""Feature extraction that scikit-learn lacks: calendar features from date/time text.

A date column can't be one-hot encoded usefully (nearly every value is new) and is
not a number; inside the pipeline (so it is refit per fold and shipped with the
model) it becomes year, month, day, weekday, hour and days since 1970.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

PARTS = ("year", "month", "day", "weekday", "hour", "days")


def parse_dates(values) -> pd.Series:
    """Text → timestamps (NaT where a value is not a date), tolerant of mixed formats."""
    series = pd.Series(np.asarray(values, dtype=object).ravel())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    return parsed


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Each input column of date/time text → the numeric calendar parts in ``PARTS``."""

    def fit(self, X, y=None):
        frame = pd.DataFrame(X)
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        return self

    def transform(self, X):
        frame = pd.DataFrame(X)
        blocks = []
        for j in range(frame.shape[1]):
            stamp = parse_dates(frame.iloc[:, j].to_numpy())
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
    return parse_dates(values).notna().mean() >= 0.95
