"""SharedSplitTPE samples exactly what Optuna's TPESampler samples (tuner.search.tpe_split)."""

from __future__ import annotations

import json
import warnings

import optuna
import pytest

from tuner.search.sampler_groups import incremental_groups
from tuner.search.tpe_split import SharedSplitTPE, tpe_sampler


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
    if cls is SharedSplitTPE:  # every group sampled up front, as Optuna does: the same samples
        kwargs.setdefault("lazy_groups", False)
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
    from tuner.search import tpe_split

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


# -- lazy groups: a group is sampled when the trial first asks for one of its parameters --------

def _count_samples(monkeypatch) -> list:
    calls: list = []
    real = SharedSplitTPE._sample

    def counting(self, study, trial, space):
        if self._sharing:  # relative samples only (the random start-up samples independently)
            calls.append((trial.number, tuple(sorted(space))))
        return real(self, study, trial, space)

    monkeypatch.setattr(SharedSplitTPE, "_sample", counting)
    return calls


def test_lazy_groups_sample_only_the_groups_a_trial_uses(monkeypatch):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    calls = _count_samples(monkeypatch)
    params = _params(_tpe(SharedSplitTPE, 0, True, lazy_groups=True), "minimize", n=40)
    used = {(number, group) for number, group in calls}
    assert len(used) == len(calls)  # each group once per trial
    for number, group in calls:
        assert set(group) <= set(params[number])  # only groups whose parameters the trial asked for
    lazy = len(calls)
    calls.clear()
    _params(_tpe(SharedSplitTPE, 0, True), "minimize", n=40)  # Optuna's way: every group of every trial
    assert lazy < len(calls) and len(calls) == len({number for number, _ in calls}) * 3


def _two_groups(trial: optuna.Trial) -> float:
    # x alone in the first trials, then x and y: TPE's groups are {x} and {y}
    x = trial.suggest_float("x", -3, 3)
    value = (x - 1) ** 2
    if trial.number >= 12:
        value += abs(trial.suggest_int("y", 0, 20) - 7)
    return value


def test_lazy_groups_sample_what_optuna_samples_when_every_group_is_used():
    """Every trial asks for the groups in their order: the random stream is consumed as
    Optuna consumes it, so the samples are the same."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    runs = []
    for sampler in (_tpe(SharedSplitTPE, 2, True, lazy_groups=True), _tpe(optuna.samplers.TPESampler, 2, True)):
        study = optuna.create_study(sampler=sampler)
        study.optimize(_two_groups, n_trials=40)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert len(runs[0][-1]) == 2


def test_lazy_groups_share_a_running_trials_parameters_for_the_constant_liar():
    from optuna.samplers._tpe.sampler import _RELATIVE_PARAMS_KEY

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=_tpe(SharedSplitTPE, 0, True, lazy_groups=True))
    study.optimize(_two_groups, n_trials=20)
    trial = study.ask()
    x = trial.suggest_float("x", -3, 3)
    shared = json.loads(study._storage.get_trial(trial._trial_id).system_attrs[f"{_RELATIVE_PARAMS_KEY}:0"])
    assert shared == {"x": x}  # y not sampled yet: not shared
    y = trial.suggest_int("y", 0, 20)
    shared = json.loads(study._storage.get_trial(trial._trial_id).system_attrs[f"{_RELATIVE_PARAMS_KEY}:0"])
    assert shared == {"x": x, "y": y}


def test_the_sampler_is_lazy_by_default():
    sampler = tpe_sampler(seed=0, multivariate=True, group=True)
    assert isinstance(sampler, SharedSplitTPE) and sampler._lazy


def test_the_shared_split_where_optunas_helpers_have_its_shape_else_optunas_own_sampler():
    """SharedSplitTPE needs TPESampler._get_params(trial, study) and the split helpers of
    Optuna >= 5.0 (checked in tuner.storage.optuna_adapter); on an older Optuna the factory
    builds Optuna's own TPESampler, whose samples SharedSplitTPE reproduces. This test runs on
    the lowest Optuna allowed too (.ci/run); the others here need the shared split."""
    from tuner.storage import optuna_adapter

    shared = optuna_adapter._split_trials is not None
    assert shared == (int(optuna.__version__.split(".")[0]) >= 5)
    sampler = tpe_sampler(seed=0, multivariate=True, group=True)
    assert isinstance(sampler, SharedSplitTPE) if shared else type(sampler) is optuna.samplers.TPESampler
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.2) ** 2, n_trials=14)
    assert len(study.trials) == 14
