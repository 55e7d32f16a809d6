"""Pruning across folds (tuner.evaluation.pruning): clearly-behind trials stop after one fold."""

from __future__ import annotations

import optuna
import pytest

from tuner.evaluation.pruning import FoldPruner


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


def _wilcoxon_study(pruner, best, direction="maximize"):
    study = optuna.create_study(direction=direction, pruner=pruner)
    trial = study.ask()
    for step, value in enumerate(best):
        trial.report(value, step)
    study.tell(trial, sum(best) / len(best))
    return study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_signed_rank_rule_decides_as_optunas_wilcoxon_pruner(direction):
    # FoldPruner's own test (no storage reads per fold) must agree with the reference it replaces
    import warnings

    import numpy as np

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        reference = optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2)
    behind = -0.015 if direction == "maximize" else 0.015
    pruned = 0
    for case in range(60):
        ours = FoldPruner(sigmas=float("inf"))  # the signed-rank rule alone
        best = list(0.8 + 0.02 * rng.standard_normal(5))
        values = list(np.array(best) + rng.normal(behind, 0.015, 5))[: rng.integers(1, 6)]
        study = _wilcoxon_study(ours, best, direction)
        trial = study.ask()
        for step, value in enumerate(values):
            trial.report(value, step)
        frozen = study._storage.get_trial(trial._trial_id)
        expected = reference.prune(study, frozen)
        assert ours.prune_values(study, trial.number, dict(enumerate(values))) is expected, (case, best, values)
        pruned += expected
    assert 5 < pruned < 55  # both outcomes were exercised


def test_a_trial_slightly_behind_on_every_fold_is_pruned_by_the_signed_rank_test():
    study = _study(best=(0.80, 0.78, 0.82, 0.79, 0.81))
    # ~0.01 behind on each fold: well inside 2σ of the best's spread, but behind every time
    assert _after(study, [0.79, 0.77, 0.81, 0.78])
    assert not _after(study, [0.79, 0.77])  # two folds are not enough evidence


def _counting_best_reads(study) -> list:
    calls = []
    real = type(study).best_trial

    class Counting(type(study)):
        @property
        def best_trial(self):
            calls.append(1)
            return real.fget(self)

    study.__class__ = Counting
    return calls


def test_prune_values_reads_the_best_trial_at_most_every_refresh_interval(monkeypatch):
    import tuner.evaluation.pruning as pruning

    study = _study()
    pruner = study.pruner
    calls = _counting_best_reads(study)
    now = [1000.0]
    monkeypatch.setattr(pruning.time, "monotonic", lambda: now[0])
    for step in range(4):  # one trial's folds: one read
        pruner.prune_values(study, 7, {s: 0.8 for s in range(step + 1)})
    pruner.prune_values(study, 8, {0: 0.8})  # the next trial, soon after: no read
    assert len(calls) == 1
    now[0] += pruning.REFRESH_S + 0.1  # other workers may have found a better trial by now
    pruner.prune_values(study, 9, {0: 0.8})
    pruner.prune_values(study, 9, {0: 0.8, 1: 0.8})
    assert len(calls) == 2


def test_the_workers_own_better_trial_is_the_new_best_without_a_read():
    study = _study(best=(0.80, 0.78, 0.82, 0.79, 0.81))
    pruner = study.pruner
    calls = _counting_best_reads(study)
    assert not pruner.prune_values(study, 7, {0: 0.79, 1: 0.77})
    better = {0: 0.90, 1: 0.91, 2: 0.89, 3: 0.90, 4: 0.92}
    pruner.note_complete(study, 0.6, {0: 0.6, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.6})  # not better: ignored
    assert not pruner.prune_values(study, 8, {0: 0.79, 1: 0.77})
    pruner.note_complete(study, 0.904, better)
    assert pruner.prune_values(study, 9, {0: 0.79, 1: 0.77})  # far behind the new best
    assert len(calls) == 1


def test_signed_rank_p_is_scipys_wilcoxon_also_with_ties_and_zeros():
    # accuracy on a few dozen rows moves in steps: ties and zeros are the rule, where SciPy
    # falls back to enumerating every sign flip (slow) and signed_rank_p counts them instead
    import numpy as np
    from scipy import stats

    from tuner.evaluation.pruning import signed_rank_p

    rng = np.random.default_rng(1)
    for case in range(150):
        n = int(rng.integers(2, 11)) if case % 3 else int(rng.integers(14, 20))
        gaps = list(rng.integers(-2, 4, n) * 0.0435) if case % 2 else list(rng.normal(0.01, 0.02, n))
        expected = float(stats.wilcoxon(gaps, alternative="greater", zero_method="zsplit").pvalue)
        assert signed_rank_p(gaps) == pytest.approx(expected), gaps
    assert signed_rank_p([0.0, 0.0, 0.0]) == 1.0
