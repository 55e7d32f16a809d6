"""Pruning across folds (tuner.pruning): clearly-behind trials stop after one fold."""

from __future__ import annotations

import optuna
import pytest

from tuner.pruning import FoldPruner


def _study(direction="maximize", best=(0.80, 0.78, 0.82, 0.79, 0.81)):
    study = optuna.create_study(direction=direction, pruner=FoldPruner())
    trial = study.ask()
    for step, value in enumerate(best):
        trial.report(value, step)
    study.tell(trial, sum(best) / len(best))
    return study


def _after(study, values):
    trial = study.ask()
    for step, value in enumerate(values):
        trial.report(value, step)
    return study.pruner.prune(study, study._storage.get_trial(trial._trial_id))


def test_a_trial_far_behind_on_its_first_fold_is_pruned():
    assert _after(_study(), [0.26])


def test_a_trial_within_the_noise_goes_on():
    assert not _after(_study(), [0.79])
    assert not _after(_study(), [0.81, 0.77])


def test_minimising_metrics_prune_the_other_way():
    study = _study("minimize", best=(1.0, 1.1, 0.9, 1.05, 0.95))
    assert _after(study, [3.0])
    assert not _after(study, [0.5])


def test_without_a_complete_trial_nothing_is_pruned():
    study = optuna.create_study(direction="maximize", pruner=FoldPruner())
    trial = study.ask()
    trial.report(0.1, 0)
    assert not study.pruner.prune(study, study._storage.get_trial(trial._trial_id))


@pytest.mark.parametrize("sigmas", [1.0, 3.0])
def test_the_margin_scales_with_the_best_trials_fold_spread(sigmas):
    study = _study()
    study.pruner = FoldPruner(sigmas=sigmas)
    # best: mean 0.80, fold std ≈ 0.0158; a gap of 0.03 is ~1.9 σ
    assert _after(study, [0.77]) is (sigmas == 1.0)
