"""The decision threshold of binary models: the sweep's scores, the cut, and its honest CV."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tuner.errors import TunerError
from tuner.evaluation import threshold


def _scores(n=600, positives=0.05, signal=1.5, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < positives).astype(np.int64)
    # a class-balanced model's probabilities: shifted up, as balanced weights shift them
    logit = signal * (2 * y - 1) + rng.normal(size=n) + 1.5
    return y, np.round(1 / (1 + np.exp(-logit)), 3)  # rounded: ties among scores, as trees give


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name, reference", [
    ("accuracy", skm.accuracy_score), ("f1", skm.f1_score), ("mcc", skm.matthews_corrcoef),
    ("balanced_accuracy", skm.balanced_accuracy_score),
    ("f_beta@2", lambda y, p, sample_weight: skm.fbeta_score(y, p, beta=2, sample_weight=sample_weight, zero_division=0)),
])
def test_every_cut_of_the_sweep_scores_as_scikit_learn_does(name, reference, weighted):
    y, p = _scores(positives=0.2)
    w = np.random.default_rng(1).uniform(0, 2, len(y)) if weighted else None
    cuts, scores = threshold.sweep(y, p, w, name)
    assert len(cuts) == len(np.unique(p)) + 1  # every distinct value, and "nothing positive"
    for cut, score in zip(cuts, scores):
        expected = reference(y, (p >= cut).astype(int), sample_weight=w)
        assert score == pytest.approx(expected, abs=1e-10), cut


def test_a_balanced_models_cut_for_accuracy_beats_the_majority_class_and_05():
    y, p = _scores(n=3000)
    folds = [600] * 5
    decision = threshold.decide(y, p, None, folds, 5, "accuracy")
    assert decision["threshold"] is not None and decision["threshold"] > 0.5
    majority = 1 - y.mean()
    assert decision["cv"]["accuracy"]["mean"] >= majority - 0.005
    assert decision["cv"]["accuracy"]["mean"] > decision["at_plain"]["accuracy"] + 0.05
    # the fold cuts were chosen without the fold's rows: they differ from the one kept
    assert len(set(decision["fold_thresholds"])) > 1


def test_on_pure_noise_no_cut_beats_the_most_probable_class_on_held_back_folds():
    kept = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        y, p = rng.integers(0, 2, 1000), rng.uniform(0.3, 0.7, 1000)
        kept += threshold.decide(y, p, None, [200] * 5, 5, "accuracy")["threshold"] is not None
    assert kept <= 1
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 2, 1000), rng.uniform(0.3, 0.7, 1000)
    decision = threshold.decide(y, p, None, [200] * 5, 5, "accuracy")
    assert decision["threshold"] is None  # the model answers its most probable class
    assert decision["cv"]["accuracy"] == {"mean": pytest.approx(decision["at_plain"]["accuracy"]),
                                          "std": pytest.approx(np.std(
                                              [np.mean((p[i:i + 200] > 0.5) == y[i:i + 200])
                                               for i in range(0, 1000, 200)], ddof=1))}


def test_forward_folds_choose_on_the_past_and_the_first_fold_keeps_05():
    y, p = _scores(n=1000)
    decision = threshold.decide(y, p, None, [200] * 5, 5, "f1", forward=True)
    assert decision["fold_thresholds"][0] is None and all(c is not None for c in decision["fold_thresholds"][1:])


def test_ties_between_cuts_go_to_the_one_nearest_05():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])  # every cut in (0.2, 0.8] is perfect
    assert threshold.best_cut(y, p, None, "accuracy") == pytest.approx(0.5)


def test_which_metric_the_threshold_serves_and_what_is_refused():
    assert threshold.metric_for("roc_auc") == "accuracy"
    assert threshold.metric_for("f1") == "f1"
    assert threshold.metric_for("roc_auc", "mcc") == "mcc"
    assert threshold.check("f_beta@2", "binary") == "f_beta@2"
    with pytest.raises(TunerError, match="does not score labels"):
        threshold.check("roc_auc", "binary")
    with pytest.raises(TunerError, match="applies to binary tasks"):
        threshold.check("accuracy", "multiclass")
    np.testing.assert_array_equal(threshold.labels([0.2, 0.5, 0.7], None), [0, 0, 1])  # argmax: 0.5 is class 0
    np.testing.assert_array_equal(threshold.labels([0.2, 0.5, 0.7], 0.2), [1, 1, 1])
