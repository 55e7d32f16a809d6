"""Which object types a model artifact's skops file may hold (the allow-list).

Why: skops loads only the types it is told to trust; tuner trusts classes from
scikit-learn, imbalanced-learn, XGBoost, the search spaces and :mod:`tuner.models`, a few
functions, and its own classes under the stable names of :mod:`tuner.model_types` and the old
paths older folders recorded (``tuner.model_types.OLD_PATHS``; the reader warns about those).
Anything else in a file is refused when it is loaded, and makes ``export`` fall back to
a pickle it says it wrote, unless the user allows its package explicitly, at export and again
at load (``--trust-module PKG``: the classes of a plug-in family); the card records it.
"""

from __future__ import annotations

import importlib

from tuner import model_types
from tuner.deploy.artifact.layout import missing_extra

# Object types a skops file may hold: classes from these packages (the Keras MLP is
# recorded as tuner.models.keras_mlp.*, or search_spaces._keras_estimator.* in older folders) ...
_TRUSTED_PACKAGES = ("sklearn", "imblearn", "xgboost", "search_spaces", "tuner.models")
# ... and these functions (score functions of univariate selection, target transforms; the
# check_array partial HistGradientBoosting keeps to pass numeric columns when it reads categories
# from the dtype: skops audits a partial's function on its own, so only check_array is admitted).
_TRUSTED_FUNCTIONS = frozenset({
    "numpy.dtype", "numpy.log1p", "numpy.expm1",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    "functools.partial", "sklearn.utils.validation.check_array",
})

# ... and tuner's own classes a model folder holds: under the names they have now, and the old
# paths older folders recorded (tuner/model_types.py, the one list of both).
_TRUSTED_TUNER_TYPES = model_types.stable_names() | frozenset(model_types.OLD_PATHS)


def is_trusted_type(name: str, modules: tuple[str, ...] | list[str] = ()) -> bool:
    """Whether the dotted type name skops reports may be loaded; ``modules``: packages the user
    allowed explicitly (``--trust-module``: a plug-in family's classes), never widened otherwise."""
    if name in _TRUSTED_FUNCTIONS or name in _TRUSTED_TUNER_TYPES:
        return True
    module, _, attr = name.rpartition(".")
    packages = tuple(pkg + "." for pkg in (*_TRUSTED_PACKAGES, *modules))
    if not module or not (module + ".").startswith(packages):
        return False
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False
    return isinstance(obj, type)


def skops_io():
    """``skops.io``, or the error naming the extra that installs it."""
    try:
        import skops.io as sio
    except ImportError:  # pragma: no cover - skops is a core dependency
        raise missing_extra("skops", "secure") from None
    return sio
