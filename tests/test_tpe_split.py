"""SharedSplitTPE samples exactly what Optuna's TPESampler samples (tuner.tpe_split)."""

from __future__ import annotations

import warnings

import optuna
import pytest

from tuner.sampler_groups import incremental_groups
from tuner.tpe_split import SharedSplitTPE, tpe_sampler


def _objective(trial: optuna.Trial) -> float:
    # conditional parameters: TPE with group=True samples them as groups of their own
    penalty = trial.suggest_categorical("penalty", ["l1", "l2", "elasticnet"])
    c = trial.suggest_float("C", 1e-3, 1e3, log=True)
    value = (c - 3.0) ** 2 / 100
    if penalty == "elasticnet":
        value += abs(trial.suggest_float("l1_ratio", 0.05, 0.95) - 0.3)
    if trial.suggest_categorical("select", ["none", "univariate"]) == "univariate":
        value -= trial.suggest_int("percentile", 10, 90, step=10) / 1000
    if trial.number % 4 == 3:
        trial.report(value, 0)
        raise optuna.TrialPruned()  # pruned trials take part in the split too
    return value


def _params(sampler, direction: str, n: int = 70) -> list[dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(sampler=sampler, direction=direction)
        study.optimize(_objective, n_trials=n)
    return [t.params for t in study.trials]


def _tpe(cls, seed: int, constant_liar: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return incremental_groups(cls(seed=seed, multivariate=True, group=True, constant_liar=constant_liar,
                                      n_startup_trials=8))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("constant_liar", [True, False])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_same_samples_as_optunas_tpe(seed, constant_liar, direction):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = _params(_tpe(SharedSplitTPE, seed, constant_liar), direction)
    theirs = _params(_tpe(optuna.samplers.TPESampler, seed, constant_liar), direction)
    assert ours == theirs
    assert any("l1_ratio" in p for p in ours) and any("percentile" in p for p in ours)  # several groups sampled


def test_the_split_is_computed_once_per_sample(monkeypatch):
    from tuner import tpe_split

    calls = []
    real = tpe_split._split_trials
    monkeypatch.setattr(tpe_split, "_split_trials", lambda *a: calls.append(1) or real(*a))
    sampler = _tpe(SharedSplitTPE, 0, True)
    _params(sampler, "minimize", n=20)
    groups = len(sampler._search_space_group.search_spaces)
    assert groups >= 3
    assert len(calls) == 20 - 8  # one split per TPE sample, whatever the number of groups
    assert isinstance(tpe_sampler(seed=0), SharedSplitTPE)
