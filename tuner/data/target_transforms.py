"""Target transforms whose inverse stays finite.

A regression target may be tuned on a transformed scale (``prep_target``: log1p or
Yeo-Johnson, inside scikit-learn's ``TransformedTargetRegressor``). A model predicting far
outside the training targets on that scale — a lightly regularised linear model on degree-2
features does, on a few rows of a fold — then has no value on the original one: Yeo-
Johnson's inverse is undefined past ``-1/lambda`` (NaN), ``expm1`` overflows. Such a fold
failed its trial, and since TPE learns nothing from failed trials it kept proposing them
(benchmarks/RESULTS.md, the target-transform fix).

Here a prediction whose inverse is not finite gets the inverse of the nearest end of the
range the training targets span on the transformed scale instead; every prediction whose
inverse is finite is left as it is (a model may extrapolate for good reason: clipping every
prediction to the training range cost 560_bodyfat's holdout R²). The trial then scores what it
predicts, and a wildly extrapolating configuration scores badly, which TPE learns from.
Fitted pipelines with these classes are exported to ONNX with the same rule
(``tuner.deploy.onnx_export``).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import PowerTransformer


class _Bounded:
    """Keeps ``low_`` / ``high_``: per column, the transformed training targets' range."""

    def _keep_bounds(self, transformed) -> None:
        transformed = np.asarray(transformed, dtype=float)
        self.low_, self.high_ = np.nanmin(transformed, axis=0), np.nanmax(transformed, axis=0)

    def _finite_inverse(self, X, inverse):
        """``inverse(X)``, with ``inverse`` of ``X`` clipped to the training range where it is not finite."""
        X = np.asarray(X, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # PowerTransformer: "... inverse-transformed data are NaN"
            out = np.asarray(inverse(X), dtype=float)
        bad = ~np.isfinite(out)
        if bad.any():
            out = out.copy()
            out[bad] = np.asarray(inverse(np.clip(X, self.low_, self.high_)), dtype=float)[bad]
        return out


class BoundedYeoJohnson(_Bounded, PowerTransformer):
    """``PowerTransformer(method="yeo-johnson")`` whose inverse is finite (see the module doc)."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py

    def __init__(self, method: str = "yeo-johnson", *, standardize: bool = True, copy: bool = True):
        super().__init__(method=method, standardize=standardize, copy=copy)

    def fit(self, X, y=None):
        super().fit(X, y)
        self._keep_bounds(super().transform(X))
        return self

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X)

    def inverse_transform(self, X):
        return self._finite_inverse(X, super().inverse_transform)


class BoundedLog1p(_Bounded, TransformerMixin, BaseEstimator):
    """log1p of a target ≥ 0; its inverse (expm1) is finite (see the module doc)."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py

    def fit(self, X, y=None):
        self._keep_bounds(self.transform(X))
        return self

    def transform(self, X):
        return np.log1p(np.asarray(X, dtype=float))

    def inverse_transform(self, X):
        return self._finite_inverse(X, np.expm1)


__all__ = ["BoundedLog1p", "BoundedYeoJohnson"]
