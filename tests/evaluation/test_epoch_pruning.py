"""Per-epoch pruning of networks: the median rule on first-fold validation curves, wired
into the driver for any model whose fit takes an epoch callback."""

from __future__ import annotations

import datetime
import importlib.util

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import tuner
from tuner.evaluation.epoch_pruning import CURVE_ATTR, EpochPruner


def _study_with_curves(curves):
    study = optuna.create_study()
    for curve in curves:
        study.add_trial(optuna.trial.create_trial(value=0.0, user_attrs={CURVE_ATTR: curve}))
    return study


def test_a_trial_worse_than_the_median_is_pruned_after_the_warmup():
    study = _study_with_curves([[1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3]] * 3)
    trial = study.ask()
    pruner = EpochPruner(study, trial)
    for epoch in range(4):
        pruner(epoch, {"pruning_value": 2.0})  # warm-up: never pruned
    with pytest.raises(optuna.TrialPruned):
        pruner(4, {"pruning_value": 2.0})
    assert pruner.pruned_at == 4
    assert study.trials[-1].user_attrs[CURVE_ATTR] == [2.0] * 5


def test_a_good_trial_and_a_trial_without_references_run_on():
    study = _study_with_curves([[1.0, 0.8, 0.6, 0.5, 0.4, 0.35]] * 3)
    good = EpochPruner(study, study.ask())
    for epoch in range(6):
        good(epoch, {"pruning_value": 0.3})
    lonely = EpochPruner(optuna.create_study(), optuna.create_study().ask())
    for epoch in range(10):
        lonely(epoch, {"pruning_value": 9.0})
    # an early-stopped reference keeps its best value; non-finite values count as worst
    short = _study_with_curves([[1.0, 0.5]] * 3)
    late = EpochPruner(short, short.ask())
    with pytest.raises(optuna.TrialPruned):
        for epoch in range(6):
            late(epoch, {"pruning_value": float("nan")})


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow is part of the test extra")
def test_driver_records_epoch_curves_and_prunes_by_epoch(storage_url):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(120, 4)), columns=list("abcd"))
    df["y"] = np.where(df["a"] + rng.normal(scale=0.3, size=120) > 0, "p", "n")
    tuner.tune(df, target="y", models=["keras_mlp"], trials=3, cv=2, storage=storage_url, run="k")
    study = optuna.load_study(study_name="k::keras_mlp", storage=storage_url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    assert all(len(t.user_attrs[CURVE_ATTR]) >= 1 for t in complete)
    for t in study.trials:
        if t.state == TrialState.PRUNED and "epoch" in t.user_attrs.get("stopped", ""):
            assert not t.intermediate_values  # stopped inside the first fold


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow is part of the test extra")
def test_under_a_clock_networks_train_in_the_fit_thread_and_the_run_ends_on_time(storage_url):
    # with --timeout every fold runs in tuner.execution.fit_watchdog's worker thread: Keras must train,
    # report its epochs and be pruned there as in the main thread
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(150, 4)), columns=list("abcd"))
    df["y"] = np.where(df["a"] + rng.normal(scale=0.3, size=150) > 0, "p", "n")
    started = datetime.datetime.now()
    board = tuner.tune(df, target="y", models=["keras_mlp"], timeout=25, cv=2, storage=storage_url, run="k")
    assert board.iloc[0]["status"] == "ok"
    study = optuna.load_study(study_name="k::keras_mlp", storage=storage_url)
    # the clock is kept by the run, not by wall time here (a test is no benchmark): no trial starts after it
    assert all(t.datetime_start < started + datetime.timedelta(seconds=25) for t in study.trials)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete and all(len(t.user_attrs[CURVE_ATTR]) >= 1 for t in complete)
    assert not any(t.state == TrialState.FAIL for t in study.trials), [t.user_attrs for t in study.trials]


def test_which_models_take_an_epoch_callback_is_known_per_class():
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    from tuner.evaluation.epoch_pruning import accepts_epoch_callback

    class WithEpochs(Ridge):
        def fit(self, X, y, epoch_callback=None):
            return super().fit(X, y)

    assert not accepts_epoch_callback(Pipeline([("model", LogisticRegression())]))
    assert accepts_epoch_callback(Pipeline([("model", WithEpochs())]))
    assert accepts_epoch_callback(TransformedTargetRegressor(regressor=Pipeline([("model", WithEpochs())])))
    assert not accepts_epoch_callback(TransformedTargetRegressor(regressor=Pipeline([("model", Ridge())])))
    assert accepts_epoch_callback(WithEpochs())  # asked again: the same answer from the cache
