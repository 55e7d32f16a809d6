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


def _tpe(cls, seed: int, constant_liar: bool, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return incremental_groups(cls(seed=seed, multivariate=True, group=True, constant_liar=constant_liar,
                                      n_startup_trials=8, **kwargs))


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
    real = tpe_split.SharedSplitTPE._split_kept
    monkeypatch.setattr(tpe_split.SharedSplitTPE, "_split_kept", lambda *a: calls.append(1) or real(*a))
    sampler = _tpe(SharedSplitTPE, 0, True)
    _params(sampler, "minimize", n=20)
    groups = len(sampler._search_space_group.search_spaces)
    assert groups >= 3
    assert len(calls) == 20 - 8  # one split per TPE sample, whatever the number of groups
    assert isinstance(tpe_sampler(seed=0), SharedSplitTPE)


def _interleaved(sampler, direction: str, n: int = 90, mostly_pruned: bool = False) -> list[dict]:
    """Several trials open at once (running trials in the split), pruned trials with several
    steps and NaN scores, failed trials, tied values: every path of the split. ``mostly_pruned``:
    so few complete trials that pruned ones are among the best too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(sampler=sampler, direction=direction)
    open_trials: list = []
    for i in range(n):
        trial = study.ask()
        penalty = trial.suggest_categorical("penalty", ["l1", "l2", "elasticnet"])
        c = trial.suggest_float("C", 1e-3, 1e3, log=True)
        if penalty == "elasticnet":
            trial.suggest_float("l1_ratio", 0.05, 0.95)
        open_trials.append((trial, round((c - 3.0) ** 2 / 100, 1)))  # rounded: ties
        if len(open_trials) < 3:
            continue
        done, value = open_trials.pop(0)
        kind = done.number % 5
        if mostly_pruned:
            kind = 0 if done.number % 12 == 0 else 2 if done.number % 12 == 6 else 1
        if kind == 1:
            for step in range(done.number % 3 + 1):
                done.report(value + step if done.number % 7 else float("nan"), step)
            study.tell(done, state=optuna.trial.TrialState.PRUNED)
        elif kind == 2 and (mostly_pruned or done.number % 10 == 2):
            study.tell(done, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(done, value)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("mostly_pruned", [False, True])
@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("constant_liar", [True, False])
def test_the_same_samples_with_running_pruned_failed_and_tied_trials(direction, constant_liar, mostly_pruned):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = _interleaved(_tpe(SharedSplitTPE, 3, constant_liar), direction, mostly_pruned=mostly_pruned)
    theirs = _interleaved(_tpe(optuna.samplers.TPESampler, 3, constant_liar), direction, mostly_pruned=mostly_pruned)
    assert ours == theirs
    assert any("l1_ratio" in p for p in ours)


@pytest.mark.filterwarnings("ignore:`constraints_func` has been deprecated:FutureWarning")
@pytest.mark.parametrize("mostly_pruned", [False, True])
def test_the_same_samples_with_infeasible_trials(mostly_pruned):
    """With constraints (tuner sets none), infeasible trials rank after the feasible ones."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def constraints(trial):
        return [trial.params["C"] - 10.0]  # C above 10 is infeasible

    runs = [_interleaved(_tpe(cls, 5, True, constraints_func=constraints), "maximize", mostly_pruned=mostly_pruned)
            for cls in (SharedSplitTPE, optuna.samplers.TPESampler)]
    assert runs[0] == runs[1]
    assert any(p["C"] > 10 for p in runs[0])


def test_a_finished_trial_is_read_once():
    """The kept readings: one per finished trial, reused by later samples."""
    sampler = _tpe(SharedSplitTPE, 0, True)
    _params(sampler, "minimize", n=30)
    assert len(sampler._finished) == 29  # every finished trial but the last (sampled before it ended)
    assert {f.kind for f in sampler._finished.values()} == {"complete", "pruned"}
