"""Categorical columns handed to the model as categories (``Preprocessing.encoding = "native"``).

Why: XGBoost (``enable_categorical``) and scikit-learn's HistGradientBoosting
(``categorical_features="from_dtype"``) split on a set of categories at once, which ordinal
codes (an arbitrary order) and one-hot columns (one category per split) cannot. Both read
which columns are categorical from the pandas ``category`` dtype, so the preprocessing
emits a DataFrame whose categorical columns have that dtype; the model needs no list of
column indices, and the same pipeline works at predict time, in serve and after a skops load.

The column's categories are the codes ``0 .. k-1`` of the fitted ``OrdinalEncoder`` before
this step (rare categories grouped, at most ``MAX_CODES``); unknown and missing values
arrive as NaN and stay missing (both models learn where missing rows go).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin

# HistGradientBoosting bins a categorical column into at most max_bins (255) categories.
MAX_CODES = 255


class CategoryCodes(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Ordinal codes (float, NaN for unknown / missing) -> pandas ``category`` columns."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=float)
        self.n_features_in_ = values.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        finite = [col[np.isfinite(col)] for col in values.T]
        # a column missing in every training row still gets one category (XGBoost refuses an empty set)
        self.n_codes_ = np.asarray([int(col.max()) + 1 if col.size else 1 for col in finite], dtype=np.int64)
        return self

    def transform(self, X):
        values = np.asarray(X, dtype=float)
        names = list(X.columns) if hasattr(X, "columns") else [f"x{j}" for j in range(values.shape[1])]
        columns = {}
        for j, (name, k) in enumerate(zip(names, self.n_codes_)):
            col = values[:, j]
            codes = np.where(np.isfinite(col) & (col >= 0) & (col < k), col, -1).astype(np.int64)
            columns[name] = pd.Categorical.from_codes(codes, categories=list(range(int(k))))
        return pd.DataFrame(columns, index=getattr(X, "index", None))
