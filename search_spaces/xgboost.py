"""XGBoost gradient-boosted trees (histogram method), splitting on categories natively.

Categorical columns arrive as pandas ``category`` columns (``Preprocessing.encoding =
"native"``) and ``enable_categorical`` lets the trees split on a set of categories;
``max_cat_to_onehot`` chooses, per column, one-vs-rest splits for columns with few categories.

From ``EARLY_STOPPING_MIN_ROWS`` rows on, ``n_estimators`` is a ceiling: the trees stop after
``EARLY_STOPPING_ROUNDS`` rounds without improvement on a tenth of the training rows
(``tuner.models.xgboost_early_stopping``), which ends the slow trials of large tables early.
Below it, a tenth of the rows is worth more to the model than the time saved: every round is fitted.
"""

from __future__ import annotations

from ._base import Preprocessing, SearchSpace, SpaceContext

EARLY_STOPPING_MIN_ROWS = 2000
EARLY_STOPPING_ROUNDS = 50


def suggest(trial, ctx: SpaceContext) -> dict:
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 1000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.01, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-8, 10.0, log=True),
        "max_cat_to_onehot": trial.suggest_categorical("max_cat_to_onehot", [1, 4, 16]),
    }


def build(params, ctx: SpaceContext):
    # heavy import (xgboost), deferred until the family is used
    from tuner.models.xgboost_early_stopping import EarlyStoppingXGBClassifier, EarlyStoppingXGBRegressor

    common = dict(
        tree_method="hist",
        n_estimators=params.get("n_estimators", 200),
        learning_rate=params.get("learning_rate", 0.1),
        max_depth=params.get("max_depth", 6),
        min_child_weight=params.get("min_child_weight", 1.0),
        subsample=params.get("subsample", 1.0),
        colsample_bytree=params.get("colsample_bytree", 1.0),
        reg_alpha=params.get("reg_alpha", 0.0),
        reg_lambda=params.get("reg_lambda", 1.0),
        enable_categorical=True,
        max_cat_to_onehot=params.get("max_cat_to_onehot", 4),
        n_jobs=ctx.n_jobs,
        random_state=ctx.seed,
        verbosity=0,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS if ctx.n_rows >= EARLY_STOPPING_MIN_ROWS else None,
    )
    if ctx.is_classification:
        return EarlyStoppingXGBClassifier(**common)
    return EarlyStoppingXGBRegressor(**common)


def defaults(ctx: SpaceContext) -> dict:
    return {
        "n_estimators": 200, "learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0,
        "subsample": 0.9, "colsample_bytree": 0.8, "reg_alpha": 1e-8, "reg_lambda": 1.0,
        "max_cat_to_onehot": 4,
    }


SPACE = SearchSpace(
    name="xgboost",
    tasks=("binary", "multiclass", "regression"),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "n_estimators": f"log-int 50 – 1000 (paired with learning_rate); from {EARLY_STOPPING_MIN_ROWS:,} rows a "
                        f"ceiling: early stopping after {EARLY_STOPPING_ROUNDS} rounds without improvement on a "
                        "tenth of the training rows",
        "learning_rate": "log-float 0.01 – 0.3",
        "max_depth": "int 2 – 10",
        "min_child_weight": "log-float 0.01 – 20",
        "subsample": "float 0.5 – 1",
        "colsample_bytree": "float 0.3 – 1",
        "reg_alpha": "log-float 1e-8 – 10 (L1)",
        "reg_lambda": "log-float 1e-8 – 10 (L2)",
        "max_cat_to_onehot": "1 | 4 | 16 (categorical columns with fewer categories split one-vs-rest)",
    },
    preprocessing=Preprocessing(scale=False, encoding="native", poly=False, select=False),
    summary="Gradient-boosted trees, tree_method=hist, native categories; usually the strongest on tabular data.",
)
