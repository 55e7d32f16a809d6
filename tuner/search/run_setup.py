"""Assemble a run's configuration from the data and the options, and write it: ``make_config``
checks every option against the data once, ``start_run`` creates the run in the storage or checks
that this call may continue it."""

from __future__ import annotations

import numpy as np
import optuna

import search_spaces
from tuner.config import RunConfig, now_iso, plugin_refs, resolve_families
from tuner.data import preprocessing
from tuner.data.dataset import Dataset
from tuner.evaluation import custom_metric, threshold
from tuner.evaluation.estimator import space_context
from tuner.evaluation.folds import folds_for_run
from tuner.evaluation.metrics import check_metric
from tuner.search import space_file
from tuner.storage import out_of_fold
from tuner.storage.runs import check_compatible, load_config, save_config

# Folds when --cv is not given: 5, or 3 on large data, where a fold's score is already
# precise and every fold costs a full fit (more trials beat more folds there).
LARGE_DATA_ROWS = 10_000


def default_cv(n_rows: int) -> int:
    return 3 if n_rows > LARGE_DATA_ROWS else 5


# Under a clock (a timeout and no trial count) small data buys hundreds of trials whose
# 5-fold scores differ by less than their noise: the search then chases noise, and a
# trial's models fit in less time than the driver spends around them. There the K-fold
# split is repeated (new shuffles, same folds for every family) when neither --cv nor
# --cv-repeats was given: fewer, better-measured trials.
SMALL_DATA_REPEATS = ((1_000, 3), (2_500, 2))  # (at most this many rows, repeats)


def default_cv_repeats(n_rows: int, clocked: bool) -> int:
    if clocked:
        for rows, repeats in SMALL_DATA_REPEATS:
            if n_rows <= rows:
                return repeats
    return 1

def make_config(ds: Dataset, *, run: str, metric: str | None, models: list[str] | None, cv: int | None,
                seed: int | None, cv_repeats: int | None = None, existing: RunConfig | None = None,
                test_size: float | None = None, clocked: bool = False, gap: int | None = None,
                space=None, threshold_metric: str | None = None) -> RunConfig:
    """Validate the options against the data; options left as None inherit from an existing run.

    ``clocked``: the run starts with a timeout and no trial count (``default_cv_repeats``).
    Groups and the time column come with ``ds`` (``tuner.data.dataset.prepare``); without
    ``cv``, a grouped run has at most as many folds as groups. ``space``: a ``--space`` file or
    dict of overrides (``tuner.search.space_file``), checked against the families here."""
    metric_obj = check_metric(metric or (existing.metric if existing and existing.task == ds.task else None), ds.task)
    if custom_metric.is_reference(metric_obj.name):
        custom_metric.check(metric_obj.name, ds.task, weighted=ds.weights is not None)
    families = resolve_families(models, ds.task)
    if existing is not None and models is None:
        families = list(existing.families)
    elif existing is not None:
        families = list(dict.fromkeys(existing.families + families))
    counts = np.bincount(ds.y) if ds.task != "regression" else np.array([1])
    config = RunConfig(
        run=run, target=ds.target, task=ds.task, metric=metric_obj.name, direction=metric_obj.direction,
        families=families, plugins=plugin_refs(families),
        cv=cv if cv is not None else (existing.cv if existing else _default_cv(ds)),
        cv_repeats=cv_repeats if cv_repeats is not None else (
            existing.cv_repeats if existing else
            1 if ds.time_column else default_cv_repeats(len(ds.X), clocked and cv is None)),
        seed=seed if seed is not None else (existing.seed if existing else 0),
        test_size=test_size if test_size is not None else (existing.test_size if existing else 0.0),
        source=ds.source, fingerprint=ds.fingerprint, task_reason=ds.task_reason, schema=ds.schema.to_dict(),
        classes=ds.classes, n_rows=len(ds.X), n_features=ds.X.shape[1],
        class_imbalance=float(counts.max() / max(1, counts.min())),
        y_min=float(ds.y.min()) if ds.task == "regression" else 0.0,
        created_at=existing.created_at if existing else now_iso(), tuner_version=_version(),
        groups=ds.group_column, time_column=ds.time_column, n_groups=ds.n_groups, weights=ds.weight_column,
        gap=gap if gap is not None else (existing.gap if existing else 0),
        threshold_metric=threshold.check(threshold_metric, ds.task) if threshold_metric
        else (existing.threshold_metric if existing and existing.task == ds.task else ""),
    )
    folds_for_run(config, ds)  # fold errors before writing
    if space is not None:
        config.space = check_overrides(config, space_file.read(space))
    elif existing is not None:
        config.space = dict(existing.space)
    return config


def check_overrides(config: RunConfig, overrides: dict) -> dict:
    """``overrides`` checked against what each family of the run (and its preprocessing) searches."""
    ctx = space_context(config)
    schema = schema_of(config)

    def of(family: str) -> dict:
        spec = search_spaces.get_space(family).preprocessing
        return space_file.distributions(family, ctx, lambda trial: preprocessing.suggest(
            trial, ctx, spec, schema, config.y_min, bool(config.weights)))

    return space_file.check(overrides, config.families, of)


def _default_cv(ds: Dataset) -> int:
    cv = default_cv(len(ds.X))
    return min(cv, ds.n_groups) if ds.groups is not None and ds.n_groups >= 2 else cv


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tuner")
    except PackageNotFoundError:
        return "0+unknown"


def schema_of(config: RunConfig):
    from tuner.data.dataset import Schema

    return Schema.from_dict(config.schema)


def start_run(storage, ds: Dataset, *, run: str, metric=None, models=None, cv=None, seed=None,
              cv_repeats=None, test_size=None, clocked: bool = False, gap: int | None = None,
              space=None, threshold_metric: str | None = None) -> RunConfig:
    """Create the run, or check that this call may continue it; returns the stored config.

    With a held-out test set, ``ds`` is the training part (``holdout.resolve_split``) and
    ``test_size`` the fraction that was split off. ``clocked``: started with a timeout and no
    trial count (see ``default_cv_repeats``).
    """
    existing = load_config(storage, run)
    config = make_config(ds, run=run, metric=metric, models=models, cv=cv, seed=seed,
                         cv_repeats=cv_repeats, existing=existing, test_size=test_size, clocked=clocked, gap=gap,
                         space=space, threshold_metric=threshold_metric)
    if existing is not None:
        check_compatible(existing, config)
    save_config(storage, config)
    out_of_fold.save_layout(optuna.load_study(study_name=config.run, storage=storage), ds.y, ds.weights,
                            folds_for_run(config, ds))
    return config


__all__ = ["make_config", "start_run", "check_overrides", "default_cv", "default_cv_repeats", "schema_of",
           "LARGE_DATA_ROWS", "SMALL_DATA_REPEATS"]
