"""A family's learned portfolio (search_spaces.portfolio) is tried right after its defaults,
and every configuration in the committed file is one its search space can produce."""

from __future__ import annotations

import warnings

import numpy as np
import optuna
import pandas as pd
import pytest

import search_spaces
import tuner
from benchmarks import build_portfolio
from search_spaces import SpaceContext
from search_spaces import portfolio as _portfolio
from search_spaces._portfolios import PORTFOLIOS, PROVENANCE
from tuner.storage.runs import load_family_study


def test_every_committed_configuration_is_in_its_space():
    for family, groups in PORTFOLIOS.items():
        space = search_spaces.get_space(family)
        for group, configs in groups.items():
            task = "regression" if group == "regression" else "binary"
            ctx = SpaceContext(task=task, n_rows=500, n_features=8, n_classes=0 if task == "regression" else 2)
            assert configs, f"{family}/{group}: an empty list should not be written"
            for params in configs:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # FixedTrial warns about a value outside its range
                    again = space.suggest(optuna.trial.FixedTrial(params), ctx)
                assert again == params, family
                space.build(params, ctx)
            assert f"{family}/{group}" in PROVENANCE["summary"]
            assert PROVENANCE["script"] == "benchmarks/build_portfolio.py"


def test_a_new_run_tries_the_defaults_then_the_portfolio_then_tpe(monkeypatch, tmp_path):
    space = search_spaces.get_space("random_forest")
    ctx = SpaceContext(task="binary", n_rows=100, n_features=3, n_classes=2)
    learned = [dict(space.defaults(ctx), n_estimators=60, min_samples_leaf=4),
               dict(space.defaults(ctx), n_estimators=70, max_features=0.9)]
    monkeypatch.setitem(_portfolio.PORTFOLIOS, "random_forest", {"classification": learned})
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 3)), columns=list("abc"))
    df["y"] = np.where(df["a"] + rng.normal(scale=0.5, size=120) > 0, "p", "n")
    url = f"sqlite:///{tmp_path / 'p.db'}"
    tuner.tune(df, target="y", models=["random_forest"], trials=4, cv=2, storage=url, run="pf")
    study = load_family_study(url, "pf", "random_forest")
    firsts = [t.params for t in sorted(study.trials, key=lambda t: t.number)[:3]]
    assert firsts[0]["n_estimators"] == space.defaults(ctx)["n_estimators"]
    assert [p["n_estimators"] for p in firsts[1:]] == [60, 70]
    assert firsts[1]["min_samples_leaf"] == 4 and firsts[2]["max_features"] == 0.9


def test_a_regression_run_gets_the_regression_portfolio_only(monkeypatch):
    monkeypatch.setitem(_portfolio.PORTFOLIOS, "xgboost", {"classification": [{"max_depth": 3}]})
    assert _portfolio.portfolio("xgboost", "multiclass") == [{"max_depth": 3}]
    assert _portfolio.portfolio("xgboost", "regression") == []
    assert _portfolio.portfolio("someone_elses_family", "binary") == []


def test_the_greedy_choice_covers_tables_the_defaults_miss():
    # candidate 0 (the defaults) is best on table 0 only; 2 is best on tables 1 and 2; 1 on table 3
    norm = np.array([[1.0, 0.2, 0.1, 0.0],
                     [0.0, 0.5, 0.4, 1.0],
                     [0.3, 1.0, 1.0, 0.2],
                     [0.2, 0.9, 0.9, 0.1]])
    assert build_portfolio.greedy(norm, 2) == [0, 2, 1]
    assert build_portfolio.greedy(norm, 5) == [0, 2, 1]  # stops when nothing adds
    alone, loo = build_portfolio.leave_one_out(norm, 1)
    assert alone == pytest.approx(norm[0].mean()) and loo > alone


def test_normalise_scores_worst_zero_best_one_and_failures_zero():
    scores = np.array([[0.8, np.nan, 0.5], [0.6, 0.7, 0.5], [0.7, 0.9, np.nan]])
    norm = build_portfolio.normalise(scores)
    np.testing.assert_allclose(norm, [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.5, 1.0, 0.0]])
