"""A test-only model family whose fits take a while, so a test can kill or interrupt a worker
in the middle of a trial. Registered on the fly (``register()``); it never ships."""

from __future__ import annotations

import os
import time

from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Lasso

from search_spaces import Preprocessing, SearchSpace

NAME = "slow_lasso"
FIT_SECONDS_ENV = "TUNER_TEST_SLOW_FIT_S"


class SlowLasso(RegressorMixin, BaseEstimator):
    def __init__(self, alpha: float = 0.01, fit_seconds: float = 1.0):
        self.alpha = alpha
        self.fit_seconds = fit_seconds

    def fit(self, X, y):
        time.sleep(self.fit_seconds)
        self.model_ = Lasso(alpha=self.alpha).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)


def suggest(trial, ctx):
    return {"alpha": trial.suggest_float("alpha", 1e-4, 1.0, log=True)}


def build(params, ctx):
    return SlowLasso(alpha=params.get("alpha", 0.01), fit_seconds=float(os.environ.get(FIT_SECONDS_ENV, "1.0")))


def defaults(ctx):
    return {"alpha": 0.01}


SPACE = SearchSpace(
    name=NAME, tasks=("regression",), suggest=suggest, build=build, defaults=defaults,
    describe={"alpha": "log-float 1e-4 – 1"},
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=False, select=False),
    summary="Lasso that sleeps in fit (tests only).",
)


def register() -> None:
    import search_spaces

    search_spaces.FAMILIES[NAME] = __name__
