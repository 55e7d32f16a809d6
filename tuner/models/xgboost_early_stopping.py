"""XGBoost estimators that stop adding trees when a held-out share of their training rows stops improving.

XGBoost's own early stopping needs an ``eval_set`` in ``fit``, which a scikit-learn pipeline
(preprocessing fitted inside every fold) cannot pass: the validation rows must go through the
same fitted preprocessing. These classes split them off inside ``fit``, after the pipeline's
preprocessing, as scikit-learn's HistGradientBoosting does (``validation_fraction``):
``VALIDATION_FRACTION`` of the rows (stratified for classification, weights split with them),
at most ``n_estimators`` rounds, stopping after ``early_stopping_rounds`` rounds without
improvement of XGBoost's default metric (log-loss, RMSE). The booster is then cut to its best
round, so what is saved, exported to ONNX and predicted is one plain model of that many trees.

``early_stopping_rounds=None`` (XGBoost's default) or an ``eval_set`` given by the caller: plain
XGBoost. Imports nothing of tuner (skops loads these classes from exported folders).
"""

from __future__ import annotations

import numpy as np
import xgboost as xgb

VALIDATION_FRACTION = 0.1


def _rows(data, index):
    return data.iloc[index] if hasattr(data, "iloc") else np.asarray(data)[index]


class _EarlyStopping:
    def fit(self, X, y, *, sample_weight=None, **kwargs):
        if self.early_stopping_rounds is None or kwargs.get("eval_set") is not None:
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)
        from sklearn.model_selection import train_test_split

        y = np.asarray(y)
        classifier = isinstance(self, xgb.XGBClassifier)
        counts = np.unique(y, return_counts=True)[1] if classifier else None
        stratify = y if classifier and counts.min() >= 2 else None
        fit_rows, val_rows = train_test_split(np.arange(len(y)), test_size=VALIDATION_FRACTION,
                                              random_state=self.random_state, stratify=stratify)
        if classifier and len(np.unique(y[fit_rows])) < len(counts):
            fit_rows = np.arange(len(y))  # a class too rare to hold out: keep every row
        weights = {}
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            weights = {"sample_weight": sample_weight[fit_rows], "sample_weight_eval_set": [sample_weight[val_rows]]}
        super().fit(_rows(X, fit_rows), y[fit_rows], eval_set=[(_rows(X, val_rows), y[val_rows])],
                    verbose=False, **weights, **kwargs)
        best = self.best_iteration
        self._Booster = self.get_booster()[: best + 1]  # one plain model of the best rounds
        self.stopped_at_ = best + 1
        return self


class EarlyStoppingXGBClassifier(_EarlyStopping, xgb.XGBClassifier):
    """``xgboost.XGBClassifier`` with early stopping on a share of its own training rows."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py


class EarlyStoppingXGBRegressor(_EarlyStopping, xgb.XGBRegressor):
    """``xgboost.XGBRegressor`` with early stopping on a share of its own training rows."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py


__all__ = ["EarlyStoppingXGBClassifier", "EarlyStoppingXGBRegressor", "VALIDATION_FRACTION"]
