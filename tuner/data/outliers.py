"""Outliers, handled inside every fold (regression): ``prep_clip`` clips numeric features at the
training rows' quantiles, ``prep_outlier_rows`` drops the training rows an ``IsolationForest``
flags. Both learn from the training rows of the fold only; the rows that are scored are never
dropped or looked at (the drop is an imbalanced-learn sampler: it runs during ``fit`` only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

CLIP_QUANTILES = (0.01, 0.99)
OUTLIER_SHARE = 0.05  # of the training rows the detector flags (IsolationForest's contamination)
KEEP_AT_LEAST = 0.5  # a detector that would drop more than half the rows drops none


class QuantileClip(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to its ``lower`` / ``upper`` quantiles on the training rows (missing values stay missing)."""

    __module__ = "tuner.model_types"  # the name model folders record (tuner/model_types.py)

    def __init__(self, lower: float = CLIP_QUANTILES[0], upper: float = CLIP_QUANTILES[1]):
        self.lower, self.upper = lower, upper

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=float)
        self.n_features_in_ = values.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: no bounds (NaN)
                self.low_ = np.nanquantile(values, self.lower, axis=0)
                self.high_ = np.nanquantile(values, self.upper, axis=0)
        return self

    def transform(self, X):
        values = np.asarray(X, dtype=float)
        low = np.where(np.isnan(self.low_), -np.inf, self.low_)
        high = np.where(np.isnan(self.high_), np.inf, self.high_)
        return np.clip(values, low, high)  # NaN stays NaN


def drop_outliers(X, y, share: float = OUTLIER_SHARE, seed: int = 0):
    """(X, y) without the training rows an IsolationForest flags on the numeric columns (missing values
    read as the column's median, for the detector only); unchanged when it would drop more than half."""
    from sklearn.ensemble import IsolationForest

    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    numeric = frame.select_dtypes(include="number")
    if numeric.shape[1] == 0 or len(frame) < 20:
        return X, y
    values = numeric.to_numpy(dtype=float)
    medians = np.nanmedian(np.where(np.isfinite(values), values, np.nan), axis=0)
    values = np.where(np.isfinite(values), values, np.where(np.isnan(medians), 0.0, medians))
    keep = IsolationForest(contamination=share, random_state=seed, n_estimators=100).fit_predict(values) == 1
    if keep.mean() < KEEP_AT_LEAST:
        return X, y
    rows = np.flatnonzero(keep)
    kept_X = X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]
    return kept_X, np.asarray(y)[rows]


drop_outliers.__module__ = "tuner.model_types"


def outlier_sampler(seed: int):
    """The imbalanced-learn step that drops outlying training rows during fit (and nothing at predict)."""
    from imblearn import FunctionSampler

    return FunctionSampler(func=drop_outliers, validate=False, kw_args={"seed": seed})


__all__ = ["QuantileClip", "drop_outliers", "outlier_sampler", "CLIP_QUANTILES", "OUTLIER_SHARE"]
