"""Registry of model families.

Each family is a module of this package with a ``SPACE``. Modules are imported
lazily so that a family with heavy dependencies (the Keras MLP) costs nothing
until it is used.
"""

from __future__ import annotations

import importlib
import importlib.util

from ._base import TASKS, Preprocessing, SearchSpace, SpaceContext

__all__ = [
    "TASKS",
    "Preprocessing",
    "SearchSpace",
    "SpaceContext",
    "FAMILIES",
    "available_spaces",
    "get_space",
]

# name -> module; the order is the order families are shown and interleaved.
FAMILIES: dict[str, str] = {
    "logistic_regression": "search_spaces.logistic_regression",
    "lasso": "search_spaces.lasso",
    "elastic_net": "search_spaces.elastic_net",
    "random_forest": "search_spaces.random_forest",
    "svm": "search_spaces.svm",
    "xgboost": "search_spaces.xgboost",
    "hist_gradient_boosting": "search_spaces.hist_gradient_boosting",
    "keras_mlp": "search_spaces.keras_mlp",
}

# Families a run uses when --models is not given (keras_mlp is opt-in: it is slow
# to import and to train, and rarely wins on small tabular data).
# Cheapest first: under a clock, every family gets its first result in this order.
DEFAULT_FAMILIES = ("logistic_regression", "lasso", "xgboost", "hist_gradient_boosting", "random_forest", "svm")


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def get_space(name: str) -> SearchSpace:
    """Return the family ``name``; an unknown name raises ``KeyError`` listing the valid ones."""
    module = FAMILIES.get(name)
    if module is None or not _module_exists(module):
        valid = ", ".join(n for n, m in FAMILIES.items() if _module_exists(m))
        raise KeyError(f"unknown model family {name!r}; valid families: {valid}")
    return importlib.import_module(module).SPACE


def available_spaces(task: str | None = None) -> list[SearchSpace]:
    """Every installed family, or those supporting ``task``."""
    spaces = [get_space(n) for n, m in FAMILIES.items() if _module_exists(m)]
    return [s for s in spaces if task is None or s.supports(task)]


def default_family_names(task: str) -> list[str]:
    return [n for n in DEFAULT_FAMILIES if _module_exists(FAMILIES[n]) and get_space(n).supports(task)]
