"""tuner as scikit-learn estimators: ``TunerClassifier`` and ``TunerRegressor`` (``tuner.estimators.base``)."""

from tuner.estimators.base import TunerClassifier, TunerRegressor

__all__ = ["TunerClassifier", "TunerRegressor"]
