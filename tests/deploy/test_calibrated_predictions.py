"""Calibrated probabilities through the user's path: run, leaderboard, export (skops, ONNX), load,
predict, report. A class-balanced model over-states the rare class; the run maps its probabilities
back on its out-of-fold predictions, and every way of asking the model gives the mapped ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tuner
from tuner.models.calibrated import CalibratedModel


def _imbalanced(n=1500, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["loan"] = np.where(x[:, 0] + 0.5 * rng.normal(size=n) > 1.8, "bad", "good")  # ~5 % "bad"
    return frame


@pytest.fixture(scope="module")
def balanced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    storage = f"sqlite:///{folder / 'runs.db'}"
    frame = _imbalanced()
    board = tuner.tune(frame, target="loan", models=["logistic_regression"], trials=3, cv=4, storage=storage,
                       run="loans", pos_label="bad", space={"logistic_regression": {"class_weight": "balanced"}})
    return folder, storage, board, frame


def test_the_leaderboard_reports_and_the_model_answers_calibrated_probabilities(balanced, tmp_path):
    folder, storage, board, frame = balanced
    row = board.iloc[0]
    assert row["calibration"] == "sigmoid"  # 1500 rows: too few for isotonic steps
    assert row["calibrated_ece"] < 0.03 < 0.1 < row["ece"]
    assert row["calibrated_log_loss"] < row["log_loss_mean"] and row["calibrated_brier"] < row["brier_mean"]
    tuner.export(tmp_path / "m", run="loans", storage=storage)
    model = tuner.load(tmp_path / "m")
    card = model.card["calibration"]
    assert card["method"] == "sigmoid" and set(card["parameters"]) == {"a", "b"}
    assert isinstance(model.pipeline, CalibratedModel)
    assert not any("Calibrated" in t for t in model.card["pipeline"]["trusted_types"])  # the file: the model itself
    features = frame.drop(columns=["loan"])
    proba = model.predict_proba(features)["proba_bad"].to_numpy()
    X, _ = model.prepare(features)
    own = model.pipeline.estimator.predict_proba(X)[:, 1]
    rate = (frame["loan"] == "bad").mean()
    # the balanced model over-states "bad" ~7-fold; calibrated, far less. Not to the rate: the map was fitted
    # on models of 3/4 of the rows, and this strongly regularised one is less shrunk refit on all of them
    assert abs(proba.mean() - rate) < (own.mean() - rate) / 4
    assert np.all(np.diff(proba[np.argsort(own)]) >= -1e-12)  # a monotone map: the ranking is the model's


def test_the_kept_final_model_and_the_api_model_are_calibrated_too(balanced):
    folder, storage, _, frame = balanced
    for model in (tuner.best_model(run="loans", storage=storage), tuner.load(_kept_path(storage))):
        assert isinstance(model.pipeline, CalibratedModel), model.path


def _kept_path(storage):
    import optuna

    return optuna.load_study(study_name="loans", storage=storage).user_attrs["final_model"]["path"]


def test_onnx_carries_the_calibration_map(balanced, tmp_path):
    folder, storage, _, frame = balanced
    info = tuner.export(tmp_path / "m", run="loans", storage=storage, onnx=True, data=frame).card["onnx"]
    assert info["status"] == "verified", info  # against the calibrated native model


def test_the_report_draws_the_winners_reliability_diagram(balanced):
    from tuner.results.html_report import TITLES, build_report
    from tuner.storage.runs import open_storage, require_config

    _, storage, _, frame = balanced
    store = open_storage(storage, create=False)
    page = build_report(store, require_config(store, "loans"), data=frame)
    assert TITLES["reliability"].format(family="logistic_regression") in page


def test_a_multiclass_model_is_calibrated_by_temperature_and_keeps_its_labels(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(900, 3)), columns=["a", "b", "c"])
    frame["kind"] = np.where(frame["a"] + 0.8 * rng.normal(size=900) > 0.6, "x",
                             np.where(frame["b"] + 0.8 * rng.normal(size=900) > 0, "y", "z"))
    storage = f"sqlite:///{tmp_path / 'm.db'}"
    board = tuner.tune(frame, target="kind", models=["random_forest"], trials=2, cv=3, storage=storage, run="m")
    tuner.export(tmp_path / "model", run="m", storage=storage)
    model = tuner.load(tmp_path / "model")
    card = model.card["calibration"]
    assert card["tried"] == "temperature" and board.loc[0, "ece"] == pytest.approx(card["raw"]["ece"])
    if card["method"]:  # a map never changes a multiclass model's labels
        X, _ = model.prepare(frame)
        np.testing.assert_array_equal(model.pipeline.predict(X), model.pipeline.estimator.predict(X))
