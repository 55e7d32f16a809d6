"""Build the full estimator (preprocessing + model) of a family from stored params.

The driver, the held-out evaluation and export all go through here, so a refit
is exactly the pipeline that was cross-validated.
"""

from __future__ import annotations

from typing import Any, Mapping

import search_spaces
from search_spaces import SpaceContext
from tuner.config import RunConfig
from tuner.data import preprocessing
from tuner.data.dataset import Schema
from tuner.models import ensemble


def space_context(config: RunConfig, n_jobs: int = 1, *, n_rows: int | None = None) -> SpaceContext:
    """The context a space sees; ``n_rows`` defaults to the size of a CV training fold."""
    if n_rows is None:
        n_rows = int(config.n_rows * (config.cv - 1) / config.cv)
    return SpaceContext(
        task=config.task, n_rows=n_rows, n_features=config.n_features, n_classes=len(config.classes),
        seed=config.seed, n_jobs=n_jobs, class_imbalance=config.class_imbalance,
    )


def build_estimator(config: RunConfig, family: str, params: Mapping[str, Any], ctx: SpaceContext,
                    schema: Schema | None = None):
    """An unfitted pipeline for ``family`` with a trial's ``params`` (model + ``prep_*`` keys);
    ``schema``: the run's, when the caller already holds it (the driver builds one per fold).
    The ensemble's ``params`` are its members: ``{"members": [{"model", "params", "weight"}, ...]}``
    (``tuner.results.ensemble``)."""
    if family == ensemble.NAME:
        members = params["members"]
        return ensemble.WeightedEnsemble([build_estimator(config, m["model"], m["params"], ctx, schema) for m in members],
                                         [float(m["weight"]) for m in members], config.task)
    space = search_spaces.get_space(family)
    prep, model_params = preprocessing.split_params(dict(params))
    model = space.build(model_params, ctx)
    return preprocessing.build_pipeline(model, prep, ctx, space.preprocessing,
                                        schema if schema is not None else Schema.from_dict(config.schema))
