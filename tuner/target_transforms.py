"""Target transforms whose inverse stays finite.

A regression target may be tuned on a transformed scale (``prep_target``: log1p or
Yeo-Johnson, inside scikit-learn's ``TransformedTargetRegressor``). A model predicting far
outside the training targets on that scale — a lightly regularised linear model on degree-2
features does, on a few rows of a fold — then has no value on the original one: Yeo-
Johnson's inverse is undefined past ``-1/lambda`` (NaN), ``expm1`` overflows. Such a fold
failed its trial, and since TPE learns nothing from failed trials it kept proposing them
(70 of 269 lasso trials in a 60 s run on 666_rmftsa_ladata).

Here the inverse first clips a prediction to the range the training targets span on the
transformed scale: the model can still predict any value the training targets reached,
never one outside them. Fitted pipelines with these classes are exported to ONNX with the
same clip (``tuner.onnx_export``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import PowerTransformer


class _Bounded:
    """Keeps ``low_`` / ``high_``: per column, the transformed training targets' range."""

    def _keep_bounds(self, transformed) -> None:
        transformed = np.asarray(transformed, dtype=float)
        self.low_, self.high_ = np.nanmin(transformed, axis=0), np.nanmax(transformed, axis=0)

    def _clip(self, X):
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)


class BoundedYeoJohnson(_Bounded, PowerTransformer):
    """``PowerTransformer(method="yeo-johnson")`` whose inverse clips to the training range first."""

    def __init__(self, method: str = "yeo-johnson", *, standardize: bool = True, copy: bool = True):
        super().__init__(method=method, standardize=standardize, copy=copy)

    def fit(self, X, y=None):
        super().fit(X, y)
        self._keep_bounds(super().transform(X))
        return self

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X)

    def inverse_transform(self, X):
        return super().inverse_transform(self._clip(X))


class BoundedLog1p(_Bounded, TransformerMixin, BaseEstimator):
    """log1p of a target ≥ 0; the inverse (expm1) clips to the training range first."""

    def fit(self, X, y=None):
        self._keep_bounds(self.transform(X))
        return self

    def transform(self, X):
        return np.log1p(np.asarray(X, dtype=float))

    def inverse_transform(self, X):
        return np.expm1(self._clip(X))


__all__ = ["BoundedLog1p", "BoundedYeoJohnson"]
