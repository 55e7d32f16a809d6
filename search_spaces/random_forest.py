"""Random forest (classification and regression)."""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from ._base import Preprocessing, SearchSpace, SpaceContext


def suggest(trial, ctx: SpaceContext) -> dict:
    params = {
        "n_estimators": trial.suggest_int("n_estimators", 50, 500, log=True),
        "max_depth": trial.suggest_categorical("max_depth", [None, 4, 8, 12, 16, 24]),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 32, log=True),
        "max_features": trial.suggest_float("max_features", 0.05, 1.0),
        "bootstrap": trial.suggest_categorical("bootstrap", [True, False]),
    }
    if ctx.is_classification:
        params["class_weight"] = trial.suggest_categorical(
            "class_weight", ["none", "balanced", "balanced_subsample"]
        )
    return params


def build(params, ctx: SpaceContext):
    common = dict(
        n_estimators=params.get("n_estimators", 200),
        max_depth=params.get("max_depth"),
        min_samples_leaf=params.get("min_samples_leaf", 1),
        max_features=params.get("max_features", 0.5),
        bootstrap=params.get("bootstrap", True),
        n_jobs=ctx.n_jobs,
        random_state=ctx.seed,
    )
    if ctx.is_classification:
        weight = params.get("class_weight", "none")
        return RandomForestClassifier(class_weight=None if weight == "none" else weight, **common)
    return RandomForestRegressor(**common)


# The defaults are a cheap start (the first trial of a run under a short clock): the trees shrink
# as the rows grow, TREE_ROWS / rows, between 50 and 200 (200 up to 2,000 rows, ~70 at 5,600, 50 from
# 8,000), so a fold costs about the same on any table; the search still goes up to 500 trees.
# Measured on a 7,043-row table (5 folds of 5,634 training rows, one thread): 200 trees took 3.2 s a
# fold, more than half of a 30 s clock for the trial.
TREE_ROWS = 400_000


def default_trees(n_rows: int) -> int:
    return int(min(200, max(50, round(TREE_ROWS / max(1, n_rows), -1))))


def defaults(ctx: SpaceContext) -> dict:
    params = {
        "n_estimators": default_trees(ctx.n_rows),
        "max_depth": None,
        "min_samples_leaf": 1,
        "max_features": 0.5 if not ctx.is_classification else max(0.05, min(1.0, ctx.n_features**-0.5)),
        "bootstrap": True,
    }
    if ctx.is_classification:
        params["class_weight"] = "none"
    return params


SPACE = SearchSpace(
    name="random_forest",
    tasks=("binary", "multiclass", "regression"),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "n_estimators": "log-int 50 – 500",
        "max_depth": "None | 4 | 8 | 12 | 16 | 24",
        "min_samples_leaf": "log-int 1 – 32",
        "max_features": "float 0.05 – 1.0 (fraction of features per split)",
        "bootstrap": "true | false",
        "class_weight": "none | balanced | balanced_subsample (classification)",
    },
    preprocessing=Preprocessing(scale=False, encoding="ordinal", poly=False, select=True),
    summary="Bagged decision trees; robust, little tuning needed.",
)
