"""A test-only family whose fit misbehaves the way real models do on bad days: it hangs in
code that never looks at a clock, it is killed by the system (as the out-of-memory killer
would), or it raises MemoryError. The behaviour comes from an environment variable, so it
reaches helper processes too. Registered on the fly (``register(monkeypatch)``); never ships."""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import Ridge

from search_spaces import Preprocessing, SearchSpace

NAME = "misbehaving"
MODE_ENV = "TUNER_TEST_MISBEHAVE"  # hang | sigkill | sigkill_in_helper | memory_error | nonfinite | ok
SLOW_FIT_S = 0.3  # "nonfinite": a fit this long, then predictions that are not finite


class Misbehaving(RegressorMixin, BaseEstimator):
    def __init__(self, alpha: float = 1.0, mode: str = "ok"):
        self.alpha = alpha
        self.mode = mode

    def fit(self, X, y):
        if self.mode == "hang":
            while True:  # not cooperating: no clock, no callback
                time.sleep(0.05)
        if self.mode == "sigkill" or (self.mode == "sigkill_in_helper" and _in_helper()):
            os.kill(os.getpid(), signal.SIGKILL)
        if self.mode == "memory_error":
            raise MemoryError("Unable to allocate 74.5 GiB for an array with shape (100000, 100000)")
        if self.mode == "nonfinite":
            time.sleep(SLOW_FIT_S)
        self.model_ = Ridge(alpha=self.alpha).fit(X, y)
        return self

    def predict(self, X):
        if self.mode == "nonfinite":  # e.g. a log target transformed back from an overflowing prediction
            return np.full(len(X), np.inf)
        return self.model_.predict(X)


def _in_helper() -> bool:
    """In a helper process of ``--n-jobs`` (``python -m tuner._helper_process``), not its parent."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "tuner._helper_process"


def suggest(trial, ctx):
    return {"alpha": trial.suggest_float("alpha", 1e-3, 10.0, log=True)}


def build(params, ctx):
    return Misbehaving(alpha=params.get("alpha", 1.0), mode=os.environ.get(MODE_ENV, "ok"))


def defaults(ctx):
    return {"alpha": 1.0}


SPACE = SearchSpace(
    name=NAME, tasks=("regression",), suggest=suggest, build=build, defaults=defaults,
    describe={"alpha": "log-float 1e-3 – 10"},
    preprocessing=Preprocessing(scale=True, encoding="onehot", poly=False, select=False),
    summary="Ridge whose fit hangs / is killed / runs out of memory (tests only).",
)


def register(monkeypatch, mode: str) -> None:
    import search_spaces

    monkeypatch.setitem(search_spaces.FAMILIES, NAME, __name__)
    monkeypatch.setenv(MODE_ENV, mode)
