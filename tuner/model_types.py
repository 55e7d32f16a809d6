"""The classes a model folder stores, under names that do not move.

A skops file (and a pickle) records every object by its class's module and name. Each of tuner's
classes that a model folder holds says it lives here (``__module__ = "tuner.model_types"``),
whichever module defines it, so the code can move without breaking the folders users keep. The
Keras MLPs say ``tuner.models.keras_mlp`` instead (importing them here would load TensorFlow).

Folders written by tuner 0.1.0 name the defining modules (``OLD_PATHS``); they load, trusted,
with a ``FutureWarning`` until tuner ``REMOVED_IN`` (``tuner.deploy.artifact.reader``), and
``tuner export`` writes the stable names again. Moving a class: its old path goes into
``OLD_PATHS`` (and a re-export shim where the old module goes away); a class a model folder newly
holds: pinned here, imported here, named in ``__all__``.
"""

from __future__ import annotations

from search_spaces.hist_gradient_boosting import HGBClassifier, HGBRegressor
from tuner.data.categories import CategoryCodes
from tuner.data.features import DatetimeFeatures
from tuner.data.outliers import QuantileClip, drop_outliers
from tuner.data.target_transforms import BoundedLog1p, BoundedYeoJohnson
from tuner.data.text import TextTokens
from tuner.models.xgboost_early_stopping import EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor

MODULE = "tuner.model_types"
KERAS = "tuner.models.keras_mlp"  # KerasMLPClassifier, KerasMLPRegressor: pinned there
REMOVED_IN = "0.3.0"

__all__ = ["CategoryCodes", "DatetimeFeatures", "BoundedLog1p", "BoundedYeoJohnson", "TextTokens",
           "EarlyStoppingXGBClassifier", "EarlyStoppingXGBRegressor", "HGBClassifier", "HGBRegressor", "QuantileClip",
           "drop_outliers"]

# the dotted names older model folders recorded → the name the class has now
OLD_PATHS: dict[str, str] = {
    **{f"tuner.data.{module}.{name}": f"{MODULE}.{name}" for module, name in (
        ("categories", "CategoryCodes"), ("features", "DatetimeFeatures"), ("text", "TextTokens"),
        ("target_transforms", "BoundedLog1p"), ("target_transforms", "BoundedYeoJohnson"))},
    **{f"tuner.models.xgboost_early_stopping.{name}": f"{MODULE}.{name}"
       for name in ("EarlyStoppingXGBClassifier", "EarlyStoppingXGBRegressor")},
    **{f"search_spaces.hist_gradient_boosting.{name}": f"{MODULE}.{name}" for name in ("HGBClassifier", "HGBRegressor")},
    # before the package layout (the re-export shims tuner.features, tuner.target_transforms, search_spaces._keras_estimator)
    "tuner.features.DatetimeFeatures": f"{MODULE}.DatetimeFeatures",
    "tuner.target_transforms.BoundedLog1p": f"{MODULE}.BoundedLog1p",
    "tuner.target_transforms.BoundedYeoJohnson": f"{MODULE}.BoundedYeoJohnson",
    "search_spaces._keras_estimator.KerasMLPClassifier": f"{KERAS}.KerasMLPClassifier",
    "search_spaces._keras_estimator.KerasMLPRegressor": f"{KERAS}.KerasMLPRegressor",
}


def stable_names() -> frozenset[str]:
    """The dotted names today's model folders record for tuner's classes."""
    return frozenset({f"{MODULE}.{name}" for name in __all__}
                     | {f"{KERAS}.{name}" for name in ("KerasMLPClassifier", "KerasMLPRegressor")})


def old_paths_in(names) -> dict[str, str]:
    """Of the dotted type names a model file records, those that are old paths, with their new names."""
    return {name: OLD_PATHS[name] for name in names if name in OLD_PATHS}
