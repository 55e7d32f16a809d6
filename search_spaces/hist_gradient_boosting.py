"""scikit-learn's histogram gradient boosting, with native categories, missing values and early stopping.

Categorical columns arrive as pandas ``category`` columns (``Preprocessing.encoding =
"native"``, at most 255 categories each) and ``categorical_features="from_dtype"`` splits on
sets of them; missing numbers are routed by the trees, so nothing is imputed. Early stopping
on a held-out ``validation_fraction`` of the training rows sets the number of iterations, so
``max_iter`` is only a ceiling and is not searched.
"""

from __future__ import annotations

import functools
import inspect

from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from ._base import Preprocessing, SearchSpace, SpaceContext

MAX_ITER = 1000
# Early stopping: the validation share of the training rows, and the rounds without improvement.
VALIDATION_FRACTION = 0.1
N_ITER_NO_CHANGE = 20


def _threads(cls):
    """Give a HistGradientBoosting class an ``n_threads`` parameter: its OpenMP threads are
    otherwise every core, which oversubscribes a machine running several trials (a fit on
    60 rows measured 13x slower under load than with one thread)."""
    base = cls.__mro__[1]
    signature = inspect.signature(base.__init__)
    extra = inspect.Parameter("n_threads", inspect.Parameter.KEYWORD_ONLY, default=None)

    def __init__(self, **params):
        n_threads = params.pop("n_threads", None)
        base.__init__(self, **params)
        self.n_threads = n_threads

    __init__.__signature__ = signature.replace(parameters=[*signature.parameters.values(), extra])
    cls.__init__ = __init__
    for name in ("fit", "predict", "predict_proba", "decision_function"):
        if hasattr(base, name):
            setattr(cls, name, _limited(getattr(base, name)))
    return cls


def _limited(method):
    def call(self, *args, **kwargs):
        if self.n_threads is None:
            return method(self, *args, **kwargs)
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return method(self, *args, **kwargs)

    return functools.wraps(method)(call)  # keeps the signature: has_fit_parameter(..., "sample_weight")


@_threads
class HGBClassifier(HistGradientBoostingClassifier):
    """HistGradientBoostingClassifier whose threads are limited to ``n_threads``."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py


@_threads
class HGBRegressor(HistGradientBoostingRegressor):
    """HistGradientBoostingRegressor whose threads are limited to ``n_threads``."""
    __module__ = "tuner.model_types"  # the name model folders record: tuner/model_types.py


def suggest(trial, ctx: SpaceContext) -> dict:
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 4, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10.0, log=True),
        "max_features": trial.suggest_float("max_features", 0.3, 1.0),
    }
    if ctx.is_classification:
        params["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
    return params


def build(params, ctx: SpaceContext):
    # the validation split needs a few rows of every class; below that, a fixed number of rounds
    early = ctx.n_rows * VALIDATION_FRACTION >= max(20, 2 * ctx.n_classes)
    common = dict(
        learning_rate=params.get("learning_rate", 0.1),
        max_iter=MAX_ITER if early else 200,
        max_leaf_nodes=params.get("max_leaf_nodes", 31),
        min_samples_leaf=params.get("min_samples_leaf", 20),
        l2_regularization=params.get("l2_regularization", 0.0),
        max_features=params.get("max_features", 1.0),
        categorical_features="from_dtype",
        early_stopping=early,
        validation_fraction=VALIDATION_FRACTION,
        n_iter_no_change=N_ITER_NO_CHANGE,
        random_state=ctx.seed,
        n_threads=ctx.n_jobs,
    )
    if ctx.is_classification:
        weight = params.get("class_weight", "none")
        return HGBClassifier(class_weight=None if weight == "none" else weight, **common)
    return HGBRegressor(**common)


def defaults(ctx: SpaceContext) -> dict:
    params = {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20, "l2_regularization": 1e-8,
              "max_features": 1.0}
    if ctx.is_classification:
        params["class_weight"] = "none"
    return params


SPACE = SearchSpace(
    name="hist_gradient_boosting",
    tasks=("binary", "multiclass", "regression"),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "learning_rate": "log-float 0.01 – 0.3",
        "max_leaf_nodes": "log-int 4 – 128",
        "min_samples_leaf": "log-int 2 – 100",
        "l2_regularization": "log-float 1e-8 – 10",
        "max_features": "float 0.3 – 1 (fraction of features per split)",
        "class_weight": "none | balanced (classification)",
        "max_iter": f"fixed {MAX_ITER}, early stopping on {VALIDATION_FRACTION:g} of the training rows "
                    f"after {N_ITER_NO_CHANGE} rounds without improvement",
    },
    preprocessing=Preprocessing(scale=False, encoding="native", poly=False, select=False),
    summary="scikit-learn histogram gradient boosting: native categories and missing values, early stopping.",
)
