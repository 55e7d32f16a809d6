"""Elastic net: linear regression with a mix of L1 and L2 penalties (Ridge at l1_ratio 0)."""

from __future__ import annotations

from sklearn.linear_model import ElasticNet, Ridge

from ._base import Preprocessing, SearchSpace, SpaceContext


def suggest(trial, ctx: SpaceContext) -> dict:
    return {
        "alpha": trial.suggest_float("alpha", 1e-5, 10.0, log=True),
        "l1_ratio": trial.suggest_float("l1_ratio", 0.0, 1.0),
    }


def build(params, ctx: SpaceContext):
    alpha, l1_ratio = params.get("alpha", 1e-2), params.get("l1_ratio", 0.0)
    if l1_ratio < 1e-3:  # coordinate descent is poor at pure L2; Ridge solves it exactly
        return Ridge(alpha=alpha, random_state=ctx.seed)
    return ElasticNet(alpha=alpha, l1_ratio=l1_ratio, max_iter=5000, tol=1e-3, random_state=ctx.seed)


def defaults(ctx: SpaceContext) -> dict:
    return {"alpha": 1.0, "l1_ratio": 0.0}


SPACE = SearchSpace(
    name="elastic_net",
    tasks=("regression",),
    suggest=suggest,
    build=build,
    defaults=defaults,
    describe={
        "alpha": "log-float 1e-5 – 10 (penalty strength)",
        "l1_ratio": "float 0 – 1 (0 = Ridge, 1 = Lasso)",
    },
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=True, select=False),
    summary="Linear regression with L1 + L2 penalties; Ridge at l1_ratio 0.",
)
