"""Export → load round trips for every family, the model card, integrity and trust checks."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
import tuner.api
from export_helpers import (
    CLASSIFIERS,
    REGRESSORS,
    binary_frame,
    keras_available,
    make_run,
    multiclass_frame,
    native_outputs,
    regression_frame,
)
from tuner.cli import app
from tuner.deploy.artifact import ArtifactError, VersionWarning
from tuner.deploy.export import export_model

runner = CliRunner()


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("binary")
    storage, csv = make_run(folder, binary_frame(), "churned", CLASSIFIERS, "bin")
    return folder, storage, csv


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regression")
    storage, csv = make_run(folder, regression_frame(), "price", REGRESSORS, "reg")
    return folder, storage, csv


def _round_trip(folder, storage, csv, run, family):
    result = export_model(folder / f"model_{family}", run=run, storage=storage, family=family)
    model = tuner.load(result.out)
    raw = pd.read_csv(csv)
    expected, expected_proba = native_outputs(result.fitted, model, raw)
    got = model.predict(raw)
    assert list(got) == list(expected)
    if model.is_classifier:
        proba = model.predict_proba(raw)
        assert list(proba.columns) == [f"proba_{c}" for c in model.classes]
        np.testing.assert_array_equal(proba.to_numpy(), expected_proba)
    return result, model


@pytest.mark.parametrize("family", CLASSIFIERS)
def test_round_trip_classifiers(binary_run, family):
    folder, storage, csv = binary_run
    result, model = _round_trip(folder, storage, csv, "bin", family)
    assert model.family == family and model.classes == ["no", "yes"]
    fmt = model.card["pipeline"]
    assert fmt["format"] == "skops"
    if family == "xgboost":
        assert fmt["native_model"]["file"] == "model.ubj"


@pytest.mark.parametrize("family", REGRESSORS)
def test_round_trip_regressors(regression_run, family):
    folder, storage, csv = regression_run
    result, model = _round_trip(folder, storage, csv, "reg", family)
    assert model.task == "regression"
    with pytest.raises(tuner.TunerError, match="classification"):
        model.predict_proba(pd.read_csv(csv))


def test_round_trip_multiclass_integer_labels(tmp_path):
    storage, csv = make_run(tmp_path, multiclass_frame(), "label", ["logistic_regression"], "multi")
    result, model = _round_trip(tmp_path, storage, csv, "multi", "logistic_regression")
    assert model.classes == [0, 1, 2]
    assert model.predict(pd.read_csv(csv)).dtype.kind == "i"  # labels keep their type


@pytest.mark.skipif(not keras_available(), reason="keras_mlp family or TensorFlow not installed")
def test_round_trip_keras(tmp_path):
    storage, csv = make_run(tmp_path, binary_frame(80), "churned", ["keras_mlp"], "keras")
    result, model = _round_trip(tmp_path, storage, csv, "keras", "keras_mlp")
    assert model.card["pipeline"]["native_model"] == {"file": "model.keras", "format": "keras"}
    assert (result.out / "model.keras").exists()
    assert "keras" in model.card["versions"] and "tensorflow" in model.card["versions"]
    assert "tuner.models.keras_mlp.KerasMLPClassifier" in model.card["pipeline"]["trusted_types"]

    # a folder written before the estimator moved names it search_spaces._keras_estimator.*: it loads
    import zipfile

    from tuner.deploy.artifact import sha256_file

    f = result.out / "pipeline.skops"
    with zipfile.ZipFile(f) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    schema = members["schema.json"].decode()
    assert '"tuner.models.keras_mlp"' in schema
    members["schema.json"] = schema.replace('"tuner.models.keras_mlp"', '"search_spaces._keras_estimator"').encode()
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    card = json.loads((result.out / "model_card.json").read_text())
    card["files"]["pipeline.skops"] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    (result.out / "model_card.json").write_text(json.dumps(card))
    raw = pd.read_csv(csv)
    with pytest.warns(FutureWarning, match=r"search_spaces\._keras_estimator\.KerasMLPClassifier"):
        loaded = tuner.load(result.out)
    np.testing.assert_array_equal(loaded.predict_proba(raw).to_numpy(), model.predict_proba(raw).to_numpy())


def test_model_card(binary_run):
    folder, storage, csv = binary_run
    result = export_model(folder / "winner", run="bin", storage=storage)
    card = json.loads((result.out / "model_card.json").read_text())
    board = tuner.leaderboard(run="bin", storage=storage)
    assert card["family"] == board.iloc[0]["model"]  # the winner by default
    assert card["task"] == "binary" and card["target"] == "churned" and card["classes"] == ["no", "yes"]
    names = [c["name"] for c in card["schema"]["columns"]]
    assert set(names) == {"x1", "x2", "city", "count"}  # id and constant columns were dropped
    city = next(c for c in card["schema"]["columns"] if c["name"] == "city")
    assert city["type"] == "category" and city["categories"] == ["Lyon", "Nice", "Paris"]
    row = card["leaderboard_row"]
    assert set(row["metrics"]) >= {"roc_auc", "accuracy", "f1", "log_loss"}
    assert all({"mean", "std"} <= set(v) for v in row["metrics"].values())
    assert card["params"] and card["run"] == "bin" and card["data"]["fingerprint"]
    assert card["data"]["rows_refit"] == 120
    assert {"python", "scikit-learn", "numpy", "skops"} <= set(card["versions"])
    for name, meta in card["files"].items():
        assert len(meta["sha256"]) == 64 and (result.out / name).stat().st_size == meta["bytes"]


def test_reexport_replaces_and_refuses_foreign_folder(binary_run, tmp_path):
    folder, storage, _ = binary_run
    out = tmp_path / "m"
    export_model(out, run="bin", storage=storage, family="xgboost")
    export_model(out, run="bin", storage=storage, family="logistic_regression")
    assert tuner.load(out).family == "logistic_regression" and not (out / "model.ubj").exists()
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("x")
    with pytest.raises(ArtifactError, match="holds other files"):
        export_model(foreign, run="bin", storage=storage)


def test_tampered_and_truncated_files_are_refused(binary_run, tmp_path):
    folder, storage, _ = binary_run
    out = tmp_path / "m"
    export_model(out, run="bin", storage=storage, family="random_forest")
    f = out / "pipeline.skops"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupted or was modified"):
        tuner.load(out)
    f.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(ArtifactError, match="truncated"):
        tuner.load(out)
    r = runner.invoke(app, ["predict", str(out), "whatever.csv"])
    assert r.exit_code == 2 and "truncated" in r.output and "Traceback" not in r.output


def test_untrusted_types_refused_even_with_valid_checksums(binary_run, tmp_path):
    import os

    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from tuner.deploy.artifact import sha256_file

    folder, storage, _ = binary_run
    out = tmp_path / "m"
    export_model(out, run="bin", storage=storage, family="logistic_regression")
    evil = Pipeline([("prep", FunctionTransformer(os.system)), ("model", FunctionTransformer())])
    f = out / "pipeline.skops"
    sio.dump(evil, f)
    card = json.loads((out / "model_card.json").read_text())
    card["files"]["pipeline.skops"] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    (out / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="does not trust"):
        tuner.load(out)


class Unlisted:  # a type outside the skops allow-list: the pipeline falls back to a pickle
    def fit(self, X, y):
        return self

    def transform(self, X):
        return X


def test_pickle_fallback_needs_explicit_trust(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from tuner.deploy import artifact

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    y = np.array([0, 0, 1, 1])
    fitted = Pipeline([("odd", Unlisted()), ("model", LogisticRegression())]).fit(X, y)
    card = {"format": artifact.FORMAT, "format_version": 1, "family": "custom", "task": "binary", "target": "t",
            "classes": ["n", "y"], "schema": {"numeric": ["a"], "categorical": [], "categories": {}},
            "versions": artifact.installed_versions()}
    artifact.write(fitted, card, tmp_path / "m")
    written = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert written["pipeline"]["format"] == "joblib-pickle" and "Unlisted" in written["pipeline"]["why_not_skops"]
    with pytest.raises(ArtifactError, match="trust"):
        tuner.load(tmp_path / "m")
    model = tuner.load(tmp_path / "m", trust_pickle=True)
    assert list(model.predict(X)) == ["n", "n", "y", "y"]


def test_version_mismatch_warns_naming_libraries(binary_run, tmp_path):
    folder, storage, _ = binary_run
    out = tmp_path / "m"
    export_model(out, run="bin", storage=storage, family="logistic_regression")
    card = json.loads((out / "model_card.json").read_text())
    card["versions"]["scikit-learn"] = "0.0.1"
    card["versions"]["numpy"] = "0.0.2"
    (out / "model_card.json").write_text(json.dumps(card))
    with pytest.warns(VersionWarning, match=r"scikit-learn 0\.0\.1.*numpy 0\.0\.2|numpy 0\.0\.2.*scikit-learn 0\.0\.1"):
        tuner.load(out)
    r = runner.invoke(app, ["predict", str(out), "missing.csv"])
    assert "warning:" in r.output and "scikit-learn 0.0.1" in r.output


def test_cli_export_and_errors(binary_run, tmp_path):
    folder, storage, _ = binary_run
    r = runner.invoke(app, ["export", "--run", "bin", "--storage", storage, "--model", "svm", "--out", str(tmp_path / "svm")])
    assert r.exit_code == 0, r.output
    assert "Exported svm" in r.output and tuner.load(tmp_path / "svm").family == "svm"

    r = runner.invoke(app, ["export", "--run", "bin", "--storage", storage, "--model", "lasso", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "not part of run" in r.output

    r = runner.invoke(app, ["predict", str(tmp_path), "data.csv"])  # a folder that is not an artifact
    assert r.exit_code == 2 and "not a tuner model folder" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["predict", str(tmp_path / "nowhere"), "data.csv"])
    assert r.exit_code == 2 and "not found" in r.output


def test_export_without_completed_trial(tmp_path):
    from tuner.data.dataset import prepare
    from tuner.search.run_setup import start_run
    from tuner.storage.runs import open_storage

    csv = tmp_path / "d.csv"
    binary_frame().to_csv(csv, index=False)
    storage = f"sqlite:///{tmp_path / 't.db'}"
    ds = prepare(pd.read_csv(csv), "churned", source=str(csv))
    start_run(open_storage(storage, create=True), ds, run="empty", models=["logistic_regression"])
    r = runner.invoke(app, ["export", "--run", "empty", "--storage", storage, "--out", str(tmp_path / "m")])
    assert r.exit_code == 2
    assert "no completed trial" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_load_is_lazy_and_public():
    assert "load" in tuner.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert callable(tuner.load)


def test_export_refuses_a_table_changed_since_the_run_and_names_the_fix(tmp_path):
    storage, csv = make_run(tmp_path, binary_frame(), "churned", ["logistic_regression"], "changed")
    frame = pd.read_csv(csv)
    frame.loc[0, frame.columns[0]] = frame.iloc[1, 0]
    frame.to_csv(csv, index=False)
    # the run's kept model needs no rows; a refit (or importance) reads them again, and refuses
    ok = runner.invoke(app, ["export", "--storage", storage, "--run", "changed", "--out", str(tmp_path / "kept")])
    assert ok.exit_code == 0, ok.output
    res = runner.invoke(app, ["export", "--storage", storage, "--run", "changed", "--out", str(tmp_path / "m"),
                              "--importance"])
    assert res.exit_code != 0
    assert f"the data at {csv} changed since run 'changed' was made" in res.output
    assert "restore it or start a new run" in res.output
    assert not (tmp_path / "m").exists()
