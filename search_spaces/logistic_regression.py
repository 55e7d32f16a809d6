"""Logistic regression: L1 / L2 / elastic-net penalties with a matching solver."""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression

from ._base import Preprocessing, SearchSpace, SpaceContext


def suggest(trial, ctx: SpaceContext) -> dict:
    params = {
        "C": trial.suggest_float("C", 1e-4, 1e3, log=True),
        "penalty": trial.suggest_categorical("penalty", ["l2", "l1", "elasticnet"]),
        "class_weight": trial.suggest_categorical("class_weight", ["none", "balanced"]),
    }
    if params["penalty"] == "elasticnet":
        params["l1_ratio"] = trial.suggest_float("l1_ratio", 0.05, 0.95)
    return params


def build(params, ctx: SpaceContext) -> LogisticRegression:
    penalty = params.get("penalty", "l2")
    l1_ratio = {"l2": 0.0, "l1": 1.0}.get(penalty, params.get("l1_ratio", 0.5))
    # lbfgs is fast for the smooth L2 case; saga is the solver that handles L1 and
    # elastic-net for binary and multinomial problems alike.
    solver = "lbfgs" if penalty == "l2" else "saga"
    return LogisticRegression(
        C=params.get("C", 1.0),
        l1_ratio=l1_ratio,
        solver=solver,
        class_weight=None if params.get("class_weight", "none") == "none" else "balanced",
        max_iter=1000 if solver == "lbfgs" else 300,
        tol=1e-4 if solver == "lbfgs" else 1e-3,
        random_state=ctx.seed,
    )


def defaults(ctx: SpaceContext) -> dict:
    return {"C": 1.0, "penalty": "l2", "class_weight": "none"}


SPACE = SearchSpace(
    name="logistic_regression",
    tasks=("binary", "multiclass"),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "C": "log-float 1e-4 – 1e3 (inverse regularisation strength)",
        "penalty": "l2 (lbfgs) | l1 (saga) | elasticnet (saga)",
        "l1_ratio": "float 0.05 – 0.95 (elasticnet only)",
        "class_weight": "none | balanced",
    },
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=True, select=True),
    summary="Regularised linear classifier; interpretable, strong baseline.",
)
