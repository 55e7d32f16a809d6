"""Old import path of :mod:`tuner.models.keras_mlp`, kept so that model folders written before
the estimator moved (their skops files name ``search_spaces._keras_estimator.KerasMLP*``) still load, with a FutureWarning,
until tuner 0.3.0 (``tuner.model_types.REMOVED_IN``), when this module goes."""

from tuner.models.keras_mlp import KerasMLPClassifier, KerasMLPRegressor

__all__ = ["KerasMLPClassifier", "KerasMLPRegressor"]
