"""A binary model's decision threshold, through the user's path: run, leaderboard, export, load,
predict (API and CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.errors import TunerError


def _imbalanced(n=800, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = np.where(x[:, 0] + 0.5 * rng.normal(size=n) > 1.8, "bad", "good")  # ~5 % "bad"
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["loan"] = y
    return frame


@pytest.fixture(scope="module")
def balanced_run(tmp_path_factory):
    """A class-balanced logistic regression (it over-predicts the rare class at 0.5), exported."""
    folder = tmp_path_factory.mktemp("decision")
    storage = f"sqlite:///{folder / 'runs.db'}"
    frame = _imbalanced()
    board = tuner.tune(frame, target="loan", models=["logistic_regression"], trials=3, cv=4, storage=storage,
                       run="loans", pos_label="bad", space={"logistic_regression": {"class_weight": "balanced"}})
    tuner.export(folder / "model", run="loans", storage=storage)
    frame.to_csv(folder / "loans.csv", index=False)
    return folder, storage, board, frame


def test_the_cut_is_chosen_for_accuracy_shown_and_used_by_every_prediction(balanced_run):
    folder, storage, board, frame = balanced_run
    # a balanced model's probabilities are shifted up: calibrated first, then a cut tuned for accuracy
    assert board.loc[0, "calibration"] == "sigmoid" and board.loc[0, "threshold_tuned"]
    assert board.loc[0, "accuracy_at_threshold"] > board.loc[0, "accuracy_mean"]
    model = tuner.load(folder / "model")
    decision = model.card["decision"]
    assert decision["metric"] == "accuracy" and decision["positive_class"] == "bad"
    assert model.threshold == decision["threshold"] == pytest.approx(board.loc[0, "threshold"])
    features = frame.drop(columns=["loan"])
    proba = model.predict_proba(features)["proba_bad"].to_numpy()
    labels = model.predict(features)
    np.testing.assert_array_equal(labels == "bad", proba >= model.threshold)
    # labels at least as good as always answering the majority class, where 0.5 was not
    assert (labels == frame["loan"]).mean() >= (frame["loan"] == "good").mean()
    X, _ = model.prepare(features)
    own = model.pipeline.estimator.predict_proba(X)[:, 1] > 0.5  # the balanced model's own labels
    assert (own == (frame["loan"] == "bad")).mean() < (labels == frame["loan"]).mean()
    np.testing.assert_array_equal(model.predict(features, threshold=0.0), np.full(len(frame), "bad", dtype=object))
    with pytest.raises(TunerError, match="between 0 and 1"):
        model.predict(features, threshold=1.5)


def test_tuner_predict_takes_a_threshold_and_the_export_says_what_labels_are(balanced_run, tmp_path):
    folder, storage, _, _ = balanced_run
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--storage", storage, "--run", "loans", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "labels: 'bad' from probability" in result.output and "chosen for accuracy" in result.output
    out = tmp_path / "p.csv"
    result = runner.invoke(app, ["predict", str(folder / "model"), str(folder / "loans.csv"), "--threshold", "0",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(out)["prediction"]) == {"bad"}
    result = runner.invoke(app, ["predict", str(folder / "model"), str(folder / "loans.csv"), "--threshold", "2"])
    assert result.exit_code == 2 and "between 0 and 1" in result.output
    result = runner.invoke(app, ["leaderboard", "--storage", storage, "--run", "loans"])
    assert "threshold" in result.output and "accuracy at cut" in result.output


def test_the_threshold_metric_is_checked_and_kept_with_the_run(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    frame = _imbalanced(300)
    with pytest.raises(TunerError, match="does not score labels"):
        tuner.tune(frame, target="loan", models=["logistic_regression"], trials=1, storage=storage, run="x",
                   threshold_metric="roc_auc")
    board = tuner.tune(frame, target="loan", models=["logistic_regression"], trials=2, cv=3, storage=storage,
                       run="x", threshold_metric="f_beta@2")
    assert "f_beta@2_at_threshold" in board.columns
    again = tuner.tune(frame, target="loan", models=["logistic_regression"], trials=1, cv=3, storage=storage, run="x")
    assert "f_beta@2_at_threshold" in again.columns  # resumed: the run's choice, not the default
    multiclass = frame.assign(loan=np.where(frame["a"] > 0.5, "x", np.where(frame["a"] < -0.5, "y", "z")))
    with pytest.raises(TunerError, match="applies to binary tasks"):
        tuner.tune(multiclass, target="loan", models=["logistic_regression"], trials=1, storage=storage, run="m",
                   threshold_metric="accuracy")


def test_model_onnx_carries_the_threshold(balanced_run, tmp_path):
    import onnxruntime as ort

    from tuner.deploy import onnx_export

    folder, storage, _, frame = balanced_run
    info = tuner.export(tmp_path / "m", run="loans", storage=storage, onnx=True, data=frame).card["onnx"]
    assert info["status"] == "verified", info
    assert "decision threshold" in info["outputs"][0]
    model = tuner.load(tmp_path / "m")
    assert model.threshold is not None
    sess = ort.InferenceSession(str(model.path / "model.onnx"), providers=["CPUExecutionProvider"])
    X, _ = model.prepare(frame)
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, onnx_export.onnx_feeds(X, model.card["schema"]))))
    labels = np.asarray(model.classes, dtype=object)[got["label"].astype(int)]
    near = np.abs(model.predict_proba(frame)["proba_bad"].to_numpy() - model.threshold) < onnx_export.TIE_MARGIN
    assert (labels == model.predict(frame))[~near].all() and (labels != "good").sum() > 0


def test_held_out_label_scores_are_those_of_the_labels_the_model_gives(tmp_path):
    frame = _imbalanced(1200, seed=1)
    storage = f"sqlite:///{tmp_path / 'h.db'}"
    board = tuner.tune(frame, target="loan", models=["logistic_regression"], trials=2, cv=4, storage=storage,
                       run="h", pos_label="bad", test_size=0.25,
                       space={"logistic_regression": {"class_weight": "balanced"}})
    assert board.loc[0, "threshold_tuned"]
    majority = (frame["loan"] == "good").mean()
    assert board.loc[0, "test_accuracy"] >= majority  # at the cut (at 0.5 the balanced model scores 0.93 here)
