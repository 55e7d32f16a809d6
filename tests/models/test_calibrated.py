"""The calibrated model (tuner.models.calibrated): its maps, and a model under one."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tuner.models.calibrated import EPS, CalibratedModel, apply_map, unwrap, wrap


def test_the_maps():
    p = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    np.testing.assert_allclose(apply_map("sigmoid", {"a": 1.0, "b": 0.0}, p), p)  # the identity
    halved = apply_map("sigmoid", {"a": 1.0, "b": np.log(0.5)}, p)[:, 1]  # odds halved
    np.testing.assert_allclose(halved / (1 - halved), 0.5 * p[:, 1] / p[:, 0])
    knots = {"x": [0.2, 0.6], "y": [0.0, 0.4]}
    np.testing.assert_allclose(apply_map("isotonic", knots, p)[:, 1], [EPS, 0.3, 0.4])  # clipped, interpolated
    softer = apply_map("temperature", {"t": 2.0}, np.array([[0.64, 0.32, 0.04]]))[0]
    np.testing.assert_allclose(softer, np.sqrt([0.64, 0.32, 0.04]) / np.sqrt([0.64, 0.32, 0.04]).sum())
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_map("beta", {}, p)


def test_a_calibrated_model_answers_its_mapped_probabilities_and_pads_unseen_classes():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, [0, 0, 2, 2])  # class 1 never seen
    cal = CalibratedModel(model, "temperature", {"t": 1.0}, n_classes=3)
    proba = cal.predict_proba(X)
    assert proba.shape == (4, 3) and np.allclose(proba[:, 1], 0)
    np.testing.assert_allclose(proba[:, [0, 2]], model.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(cal.predict(X), model.predict(X))
    np.testing.assert_array_equal(cal.classes_, [0, 1, 2])


def test_wrap_only_where_the_card_keeps_a_map():
    model = LogisticRegression()
    assert wrap(model, None, 2) is model and wrap(model, {"method": None}, 2) is model
    wrapped = wrap(model, {"method": "sigmoid", "parameters": {"a": 1.0, "b": 0.0}}, 2)
    assert isinstance(wrapped, CalibratedModel) and unwrap(wrapped) is model and unwrap(model) is model
    assert wrap(wrapped, {"method": "sigmoid", "parameters": {"a": 2.0, "b": 0.0}}, 2) is wrapped
