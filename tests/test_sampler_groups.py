"""TPE's parameter groups, kept up to date trial by trial (tuner.search.sampler_groups), equal
Optuna's own recomputation from every trial, call after call."""

from __future__ import annotations

import optuna
from optuna.search_space.group_decomposed import _GroupDecomposedSearchSpace
from optuna.trial import TrialState

from tuner.search.sampler_groups import IncrementalGroups, incremental_groups
from tuner.search.driver import _sampler


def _conditional(trial):
    kind = trial.suggest_categorical("kind", ["linear", "tree", "net"])
    if kind == "linear":
        trial.suggest_float("alpha", 1e-4, 1.0, log=True)
    elif kind == "tree":
        trial.suggest_int("depth", 1, 8)
        trial.suggest_float("eta", 0.01, 0.3)
    else:
        trial.suggest_int("units", 8, 64)
        trial.suggest_float("alpha", 1e-4, 1.0, log=True)
    trial.suggest_categorical("scaler", ["std", "none"])


def test_the_groups_equal_optunas_after_every_trial():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    ours, theirs = IncrementalGroups(True), _GroupDecomposedSearchSpace(True)
    seen = set()
    for i in range(40):
        trial = study.ask()
        _conditional(trial)
        study.tell(trial, None if i % 3 == 0 else float(i), state=TrialState.PRUNED if i % 3 == 0 else TrialState.COMPLETE)
        if i % 4 == 0:
            continue  # several new trials between two samples, as with other workers' trials
        mine, optunas = ours.calculate(study).search_spaces, theirs.calculate(study).search_spaces
        assert mine == optunas
        seen.add(tuple(tuple(sorted(group)) for group in mine))
    assert len(seen) > 1  # the groups did change along the way


def test_the_run_sampler_uses_it_and_other_samplers_are_left_alone():
    from types import SimpleNamespace

    config = SimpleNamespace(seed=0)
    assert isinstance(_sampler(config, "svm", 0)._group_decomposed_search_space, IncrementalGroups)
    random = optuna.samplers.RandomSampler()
    assert incremental_groups(random) is random


def test_a_caller_changing_the_groups_it_got_does_not_change_the_kept_ones():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    ours = IncrementalGroups(True)
    for i in range(10):
        trial = study.ask()
        _conditional(trial)
        study.tell(trial, float(i))
    first = ours.calculate(study)
    expected = [dict(space) for space in first.search_spaces]
    first.search_spaces[0].clear()
    first.search_spaces.append({"x": optuna.distributions.FloatDistribution(0, 1)})
    assert ours.calculate(study).search_spaces == expected == _GroupDecomposedSearchSpace(True).calculate(study).search_spaces
