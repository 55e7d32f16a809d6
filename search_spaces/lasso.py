"""Lasso: L1-regularised linear regression (sparse coefficients)."""

from __future__ import annotations

from sklearn.linear_model import Lasso

from ._base import Preprocessing, SearchSpace, SpaceContext


def suggest(trial, ctx: SpaceContext) -> dict:
    return {"alpha": trial.suggest_float("alpha", 1e-5, 10.0, log=True)}


def build(params, ctx: SpaceContext) -> Lasso:
    return Lasso(alpha=params.get("alpha", 1e-3), max_iter=5000, tol=1e-3, random_state=ctx.seed)


def defaults(ctx: SpaceContext) -> dict:
    return {"alpha": 1e-3}


SPACE = SearchSpace(
    name="lasso",
    tasks=("regression",),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={"alpha": "log-float 1e-5 – 10 (L1 strength)"},
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=True, select=False),
    summary="L1-regularised linear regression; selects features by shrinking weights to zero.",
)
