"""The shape every search-space module fills.

A family is one module in this package exposing a module-level ``SPACE`` of type
:class:`SearchSpace`. This package never imports ``tuner``: a space only knows
about Optuna trials and scikit-learn estimators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class SpaceContext:
    """What a space may adapt to: the problem and the size of the data."""

    task: str  # "binary" | "multiclass" | "regression"
    n_rows: int
    n_features: int
    n_classes: int = 0  # 0 for regression
    seed: int = 0
    n_jobs: int = 1  # threads a single model may use
    class_imbalance: float = 1.0  # majority / minority class count; 1.0 for regression

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"


@dataclass(frozen=True)
class Preprocessing:
    """What the model needs from the preprocessing that ``tuner`` builds around it.

    scale:     standardise numeric columns (linear models, SVMs, neural nets).
    encoding:  "onehot" (linear models, SVMs, nets), "ordinal" (trees) or "native"
               (models that split on categories themselves and take missing values: the
               categorical columns reach the model as pandas ``category`` columns, numbers
               with NaN left in; the model must read categories from the dtype).
    poly:      polynomial / interaction features may be searched (linear models).
    select:    feature selection may be searched.
    """

    scale: bool = True
    encoding: str = "onehot"
    poly: bool = False
    select: bool = True


@dataclass(frozen=True)
class SearchSpace:
    """One model family.

    suggest(trial, ctx) -> dict: define-by-run, returns the suggested params keyed by
        the names given to the trial (works with ``optuna.trial.FixedTrial``).
    build(params, ctx) -> estimator: an unfitted scikit-learn compatible estimator.
    defaults(ctx) -> dict: a cheap, good first configuration (enqueued first).
    describe: human-readable hyperparameter ranges for ``tuner spaces``.
    """

    name: str
    tasks: tuple[str, ...]
    suggest: Callable[[Any, SpaceContext], dict]
    build: Callable[[Mapping[str, Any], SpaceContext], Any]
    defaults: Callable[[SpaceContext], dict]
    describe: Mapping[str, str]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    summary: str = ""
    requires: tuple[str, ...] = ()  # importable modules the family needs beyond the core install
    extra: str = ""  # the pip extra that installs them: pip install 'tuner[<extra>]'

    def supports(self, task: str) -> bool:
        return task in self.tasks
