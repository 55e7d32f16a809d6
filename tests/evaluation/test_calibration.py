"""Calibration maps chosen on out-of-fold predictions (tuner.evaluation.calibration): which map, whether
it is kept (cross-fitted, against the folds' noise), and the scores that report it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

from tuner.evaluation import calibration
from tuner.models.calibrated import apply_map


def _scores(n=5000, seed=0, sharpen=3.0):
    """Rows whose true positive rate is sigmoid(1.5 x - 3), and a model that is overconfident and
    shifted (as a class-balanced model is): sigmoid(sharpen * x)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    truth = 1 / (1 + np.exp(-(1.5 * x - 3)))
    y = (rng.random(n) < truth).astype(int)
    model = 1 / (1 + np.exp(-sharpen * x))
    return y, np.column_stack([1 - model, model]), np.column_stack([1 - truth, truth])


def test_ece_is_the_binned_gap_that_calibration_curve_draws():
    y, proba, _ = _scores(3000)
    observed, predicted = calibration_curve(y, proba[:, 1], n_bins=10, strategy="uniform")
    counts = np.bincount(np.minimum((proba[:, 1] * 10).astype(int), 9), minlength=10)
    expected = np.sum(counts[counts > 0] / len(y) * np.abs(observed - predicted))
    assert calibration.ece(y, proba) == pytest.approx(expected, rel=1e-9)
    weights = np.random.default_rng(1).integers(1, 4, len(y)).astype(float)
    repeated = np.repeat(np.arange(len(y)), weights.astype(int))
    assert calibration.ece(y, proba, weights) == pytest.approx(calibration.ece(y[repeated], proba[repeated]))


def test_an_overconfident_shifted_model_is_recalibrated_and_says_by_how_much():
    y, proba, _ = _scores()
    entry, mapped = calibration.decide(y, proba, None, [1000] * 5, 5)
    assert entry["method"] in ("isotonic", "sigmoid") and entry["parameters"] is not None
    assert entry["calibrated"]["log_loss"] < entry["raw"]["log_loss"] / 2
    assert entry["calibrated"]["ece"] < 0.02 < 0.3 < entry["raw"]["ece"]
    assert entry["raw"]["log_loss"] == pytest.approx(log_loss(y, proba))
    assert entry["raw"]["brier"] == pytest.approx(brier_score_loss(y, proba[:, 1]))
    assert entry["calibrated"]["brier"] == pytest.approx(brier_score_loss(y, mapped[:, 1]))
    assert len(entry["reliability"]["raw"]["predicted"]) == len(entry["reliability"]["raw"]["share"]) <= 10


def test_a_calibrated_model_keeps_its_probabilities_or_a_map_that_barely_moves_them():
    y, _, truth = _scores()
    entry, mapped = calibration.decide(y, truth, None, [1000] * 5, 5)
    assert entry["method"] in (None, "sigmoid")  # isotonic steps cost more log loss than they win here
    assert np.abs(mapped - truth).max() < 0.02
    assert abs(entry["calibrated"]["log_loss"] - entry["raw"]["log_loss"]) < 0.002


def test_a_map_that_does_not_lower_the_held_back_log_loss_is_not_kept():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 400)
    proba = np.full((400, 2), 0.5)  # the base rate already: no map can do better on other rows
    entry, mapped = calibration.decide(y, proba, None, [80] * 5, 5)
    assert entry["method"] is None and entry["parameters"] is None and "kept" in entry["why"]
    np.testing.assert_array_equal(mapped, proba)


def test_the_maps_tried_follow_the_task_and_rows():
    y, proba, _ = _scores(600)
    assert calibration.methods_for(y, 2) == ["sigmoid"]
    entry, _ = calibration.decide(y, proba, None, [120] * 5, 5)
    assert entry["method"] == "sigmoid" and set(entry["parameters"]) == {"a", "b"}
    y_rare = np.r_[np.ones(50, int), np.zeros(4950, int)]  # many rows, too few of the rare class for steps
    assert calibration.methods_for(y_rare, 2) == ["sigmoid"]
    assert calibration.methods_for(np.arange(3000) % 2, 2) == ["sigmoid", "isotonic"]
    assert calibration.methods_for(np.arange(30) % 3, 3) == ["temperature"]


def test_of_two_maps_the_one_with_the_lower_held_back_log_loss_is_kept():
    rng = np.random.default_rng(6)
    x = rng.random(6000)
    truth = np.where(x < 0.5, 0.1, 0.8)  # a step: isotonic fits it, a sigmoid of the logit cannot
    y = (rng.random(6000) < truth).astype(int)
    entry, _ = calibration.decide(y, np.column_stack([1 - x, x]), None, [1200] * 5, 5)
    assert entry["method"] == "isotonic"
    y2, proba, _ = _scores(6000, seed=7)  # a logistic distortion: the sigmoid is the right family
    entry, _ = calibration.decide(y2, proba, None, [1200] * 5, 5)
    assert entry["method"] == "sigmoid"


def test_temperature_softens_an_overconfident_multiclass_model_and_keeps_its_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3000, 4))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(4, p=row) for row in truth])
    sharp = np.exp(3 * logits)
    sharp /= sharp.sum(axis=1, keepdims=True)
    entry, mapped = calibration.decide(y, sharp, None, [600] * 5, 5)
    assert entry["method"] == "temperature" and entry["parameters"]["t"] == pytest.approx(3.0, rel=0.15)
    assert entry["calibrated"]["log_loss"] < entry["raw"]["log_loss"]
    np.testing.assert_array_equal(mapped.argmax(axis=1), sharp.argmax(axis=1))
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0)


def test_each_fold_is_mapped_by_a_map_fitted_on_the_other_folds():
    y, proba, _ = _scores(2500, seed=3)
    sizes = [500] * 5
    mapped = calibration.cross_fitted(y, proba, None, sizes, 5, "sigmoid")
    rest = np.r_[0:500, 1000:2500]
    alone = apply_map("sigmoid", calibration.fit_map("sigmoid", y[rest], proba[rest], None), proba[500:1000])
    np.testing.assert_allclose(mapped[500:1000], alone)
    forward = calibration.cross_fitted(y, proba, None, sizes, 5, "sigmoid", forward=True)
    np.testing.assert_array_equal(forward[:500], proba[:500])  # the first time fold has no earlier fold
    earlier = apply_map("sigmoid", calibration.fit_map("sigmoid", y[:1000], proba[:1000], None), proba[1000:1500])
    np.testing.assert_allclose(forward[1000:1500], earlier)


def test_row_weights_count_as_repeated_rows():
    y, proba, _ = _scores(3000, seed=5)
    weights = np.random.default_rng(2).integers(1, 4, len(y)).astype(float)
    repeated = np.repeat(np.arange(len(y)), weights.astype(int))
    a = calibration.fit_map("isotonic", y, proba, weights)
    b = calibration.fit_map("isotonic", y[repeated], proba[repeated], None)
    np.testing.assert_allclose(apply_map("isotonic", a, proba), apply_map("isotonic", b, proba), atol=1e-9)
    t1 = calibration.fit_map("temperature", y, proba, weights)["t"]
    t2 = calibration.fit_map("temperature", y[repeated], proba[repeated], None)["t"]
    assert t1 == pytest.approx(t2, rel=1e-3)


def test_rows_of_one_class_fit_no_map():
    assert calibration.fit_map("sigmoid", np.zeros(10, int), np.full((10, 2), 0.5), None) is None
