"""Every registered family fills the SearchSpace shape and fits on tiny data,
with its defaults and with random trials."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone

import search_spaces
from search_spaces import SpaceContext
from tuner.data import preprocessing
from tuner.data.dataset import prepare
from tuner.evaluation.cross_validation import fit_quietly, predict_outputs

FAMILY_TASKS = [
    (name, task)
    for name in search_spaces.FAMILIES
    if name != "keras_mlp"  # has its own, slower, suite (tests/models/test_keras_mlp.py)
    for task in search_spaces.get_space(name).tasks
]


def tiny(task: str) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(0)
    n = 90
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    df.loc[::11, "a"] = np.nan
    signal = df["a"].fillna(0) + (df["c"] == "x")
    if task == "regression":
        df["t"] = signal + rng.normal(scale=0.1, size=n)
    elif task == "binary":
        df["t"] = np.where(signal > 0.3, "pos", "neg")
    else:
        df["t"] = pd.cut(signal, [-np.inf, -0.3, 0.7, np.inf], labels=["lo", "mid", "hi"]).astype(str)
    return df, "t"


def fit_and_predict(space, params, ctx, ds):
    prep, model_params = preprocessing.split_params(params)
    est = preprocessing.build_pipeline(space.build(model_params, ctx), prep, ctx, space.preprocessing, ds.schema)
    est = clone(est)
    fit_quietly(est, ds.X, ds.y)
    pred, proba = predict_outputs(est, ds.X, ds.task, ds.n_classes)
    assert len(pred) == len(ds.X)
    if proba is not None:
        assert proba.shape == (len(ds.X), ds.n_classes)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("name,task", FAMILY_TASKS)
def test_space_conformance(name, task):
    space = search_spaces.get_space(name)
    assert space.name == name and space.describe and space.summary
    df, target = tiny(task)
    ds = prepare(df, target, task)
    ctx = SpaceContext(task=task, n_rows=len(ds.X), n_features=ds.X.shape[1], n_classes=ds.n_classes, seed=0)
    defaults = {**space.defaults(ctx), **preprocessing.defaults(ctx, space.preprocessing, ds.schema)}
    # defaults are a point of the space: a FixedTrial replays them exactly
    fixed = optuna.trial.FixedTrial(defaults)
    suggested = {**preprocessing.suggest(fixed, ctx, space.preprocessing, ds.schema), **space.suggest(fixed, ctx)}
    assert suggested == defaults
    fit_and_predict(space, defaults, ctx, ds)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        trial = study.ask()
        preprocessing.suggest(trial, ctx, space.preprocessing, ds.schema, float(np.min(ds.y)) if task == "regression" else 0.0)
        space.suggest(trial, ctx)
        fit_and_predict(space, trial.params, ctx, ds)
        study.tell(trial, 0.0)


def test_registry_errors_and_task_filter():
    with pytest.raises(KeyError, match="valid families"):
        search_spaces.get_space("nope")
    names = {s.name for s in search_spaces.available_spaces("regression")}
    assert {"lasso", "random_forest", "svm", "xgboost"} <= names and "logistic_regression" not in names
    # cheapest first: under a clock every family gets its first result in this order
    assert search_spaces.default_family_names("binary") == ["logistic_regression", "xgboost", "hist_gradient_boosting",
                                                         "random_forest", "svm"]


def test_svm_switches_to_linear_or_approximate_kernels_on_large_data():
    space = search_spaces.get_space("svm")
    big = SpaceContext(task="binary", n_rows=50_000, n_features=10, n_classes=2)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kernels = {space.suggest(study.ask(), big)["kernel"] for _ in range(20)}
    assert kernels <= {"linear", "rbf_approx"}


@pytest.mark.parametrize("name,task", FAMILY_TASKS)
def test_a_pipeline_refitted_fold_after_fold_predicts_as_a_fresh_one(name, task):
    """The driver builds a trial's pipeline once and refits it on every fold (a new pipeline
    per fold cost ~0.1 ms, a share of a 10 ms fold): every family, with every preprocessing
    choice, must forget the previous fold when it is fitted again."""
    space = search_spaces.get_space(name)
    df, target = tiny(task)
    ds = prepare(df, target, task)
    ctx = SpaceContext(task=task, n_rows=len(ds.X), n_features=ds.X.shape[1], n_classes=ds.n_classes, seed=0)
    y_min = float(np.min(ds.y)) if task == "regression" else 0.0
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    configs = [{**space.defaults(ctx), **preprocessing.defaults(ctx, space.preprocessing, ds.schema)}]
    for _ in range(5):
        trial = study.ask()
        preprocessing.suggest(trial, ctx, space.preprocessing, ds.schema, y_min)
        space.suggest(trial, ctx)
        configs.append(trial.params)
        study.tell(trial, 0.0)
    first, second = np.arange(0, 60), np.arange(30, 90)

    def build(params):
        prep, model_params = preprocessing.split_params(params)
        return preprocessing.build_pipeline(space.build(model_params, ctx), prep, ctx, space.preprocessing, ds.schema)

    for params in configs:
        reused = build(params)
        fit_quietly(reused, ds.X.iloc[first], ds.y[first])
        fit_quietly(reused, ds.X.iloc[second], ds.y[second])
        fresh = build(params)
        fit_quietly(fresh, ds.X.iloc[second], ds.y[second])
        for a, b in zip(predict_outputs(reused, ds.X, ds.task, ds.n_classes),
                        predict_outputs(fresh, ds.X, ds.task, ds.n_classes)):
            assert (a is None and b is None) or np.array_equal(a, b), params
