"""Export -> load -> predict of native-category models and target-encoded pipelines, and what
their model card says about ONNX."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import tuner
from export_helpers import binary_frame, fit_pipeline, make_run, multiclass_frame, native_outputs
from tuner.deploy import onnx_export
from tuner.deploy.export import export_model

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def native_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("native")
    return folder, *make_run(folder, binary_frame(), "churned", ["xgboost", "hist_gradient_boosting"], "nat")


def _odd_rows(csv) -> pd.DataFrame:
    raw = pd.read_csv(csv).head(8).copy()
    raw["city"] = ["Atlantis", None, "Paris", "Lyon", "Atlantis", None, "Nice", "Rome"]  # unseen and missing
    raw.loc[[1, 4], "x1"] = np.nan
    return raw


@pytest.mark.parametrize("family", ["xgboost", "hist_gradient_boosting"])
def test_native_categories_export_load_predict(native_run, family):
    folder, storage, csv = native_run
    result = export_model(folder / family, run="nat", storage=storage, family=family, onnx=True)
    card = result.card
    assert card["pipeline"]["format"] == "skops"  # every type on the allow-list: no pickle
    assert card["onnx"]["status"] == "not converted"
    assert "native categories" in card["onnx"]["reason"] and family in card["onnx"]["reason"]
    assert not (result.out / "model.onnx").exists()
    model = tuner.load(result.out)
    raw = _odd_rows(csv)
    with pytest.warns(UserWarning):  # unseen categories are named
        labels = model.predict(raw)
    assert set(labels) <= {"yes", "no"} and len(labels) == len(raw)
    expected, _ = native_outputs(result.fitted, model, raw)  # the loaded model predicts as the refit one
    assert list(labels) == list(expected)
    pair = raw.iloc[[2, 2]].copy()
    pair["city"] = ["Atlantis", None]
    proba = model.predict_proba(pair).to_numpy()
    np.testing.assert_allclose(proba[0], proba[1])  # an unseen category reads as missing


def test_tuner_predict_cli_on_a_native_model(native_run, tmp_path):
    folder, storage, csv = native_run
    result = export_model(tmp_path / "m", run="nat", storage=storage, family="hist_gradient_boosting")
    rows = tmp_path / "rows.csv"
    _odd_rows(csv).drop(columns=["churned"]).to_csv(rows, index=False)
    out = tmp_path / "pred.csv"
    proc = subprocess.run([sys.executable, "-m", "tuner.cli", "predict", str(result.out), str(rows), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out)
    assert len(pred) == 8 and pred.iloc[:, -1].notna().all()




def test_binary_target_encoding_converts_to_onnx_and_matches(tmp_path):
    frame = multiclass_frame()
    frame["label"] = (frame["label"] > 0).astype(int)
    est, ds, card = fit_pipeline(frame, "label", "random_forest", {"prep_high_cardinality": "target", "n_estimators": 20})
    info = onnx_export.write_onnx(est, card, ds.X, tmp_path)  # verified on unseen and missing levels too
    assert info["status"] == "verified", info


def test_multiclass_target_encoding_is_reported_as_not_convertible(tmp_path):
    est, ds, card = fit_pipeline(multiclass_frame(), "label", "logistic_regression", {"prep_high_cardinality": "target"})
    info = onnx_export.write_onnx(est, card, ds.X, tmp_path)
    assert info["status"] == "not converted" and "TargetEncoder" in info["reason"]
    assert not (tmp_path / "model.onnx").exists()


def test_a_target_encoded_pipeline_round_trips_through_skops(tmp_path):
    from tuner.deploy.artifact import writer
    from tuner.deploy.artifact.trust import is_trusted_type, skops_io

    est, ds, _ = fit_pipeline(multiclass_frame(), "label", "logistic_regression", {"prep_high_cardinality": "target"})
    info = writer.write_pipeline(est, tmp_path)
    assert info["format"] == "skops", info
    sio = skops_io()
    types = sio.get_untrusted_types(file=tmp_path / "pipeline.skops")
    assert all(is_trusted_type(t) for t in types)
    loaded = sio.load(tmp_path / "pipeline.skops", trusted=types)
    rows = ds.X.head(5).copy()
    rows["shop"] = ["never", None, "s1", "s2", "s3"]
    np.testing.assert_allclose(loaded.predict_proba(rows), est.predict_proba(rows))


def test_serve_a_native_model_with_unseen_and_missing_categories(native_run, tmp_path):
    import json
    import urllib.request

    from export_helpers import serving

    folder, storage, csv = native_run
    result = export_model(tmp_path / "m", run="nat", storage=storage, family="hist_gradient_boosting")
    raw = _odd_rows(csv).drop(columns=["churned"])
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in raw.to_dict(orient="records")]
    with serving(result.out, tmp_path / "serve.log") as (base, _):
        req = urllib.request.Request(base + "/predict", data=json.dumps({"records": records}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
    model = tuner.load(result.out)
    assert body["predictions"] == list(model.predict(raw))
