"""Row weights into a fit: which ``fit`` keyword reaches the model inside a trial's estimator.

A trial's estimator is a Pipeline (scikit-learn's or imbalanced-learn's) ending in the
family's model, maybe inside a TransformedTargetRegressor; the SVM family's classifier is a
CalibratedClassifierCV around a LinearSVC, an SVC or a Nystroem + LinearSVC pipeline. Only
the model takes the weights: preprocessing is fitted unweighted (imputation, scaling and
target encoding describe the data; the model decides what counts). Resampling is not
searched on a weighted run (``tuner.data.preprocessing``): it would change the rows the
weights belong to.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import has_fit_parameter

from tuner.models.ensemble import WeightedEnsemble


def fit_params(estimator, weights: np.ndarray | None) -> dict:
    """The keyword arguments that give ``weights`` to ``estimator``'s model in ``estimator.fit``
    ({} without weights); raises ValueError for a model that takes no ``sample_weight``."""
    if weights is None:
        return {}
    if isinstance(estimator, WeightedEnsemble):  # each member's model gets them its own way
        return {"member_fit_params": [fit_params(m, weights) for m in estimator.members]}
    return {key: weights for key in _keys(estimator)}


def _keys(est) -> list[str]:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline

    if isinstance(est, TransformedTargetRegressor):  # passes its fit keywords on to the regressor
        return _keys(est.regressor)
    if isinstance(est, Pipeline) or type(est).__name__ == "Pipeline":  # scikit-learn's or imbalanced-learn's
        name, last = est.steps[-1]
        return [f"{name}__{key}" for key in _keys(last)]
    if isinstance(est, CalibratedClassifierCV):
        # weighs the calibration itself, and the classifier when its fit takes sample_weight;
        # other keywords go to the classifier's fit (split by fold like the rows)
        inner = est.estimator
        keys = ["sample_weight"]
        if not has_fit_parameter(inner, "sample_weight"):
            keys += [k for k in _keys(inner) if k != "sample_weight"]
        return keys
    if has_fit_parameter(est, "sample_weight"):
        return ["sample_weight"]
    raise ValueError(f"{type(est).__name__} takes no sample_weight, so this family cannot use --weights")


__all__ = ["fit_params"]
