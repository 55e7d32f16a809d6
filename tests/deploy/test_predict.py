"""`tuner predict` and LoadedModel input checks: column order, extra / missing columns, types, chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from export_helpers import binary_frame, make_run, regression_frame
from tuner.cli import app
from tuner.data.inputs import InputError
from tuner.deploy.export import export_model

runner = CliRunner()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("predict")
    storage, csv = make_run(folder, binary_frame(), "churned", ["xgboost"], "p")
    export_model(folder / "model", run="p", storage=storage)
    return folder / "model", csv


def _new_rows(csv) -> pd.DataFrame:
    raw = pd.read_csv(csv).drop(columns=["churned"])
    raw.loc[5, "city"] = "Marseille"  # a category never seen in training
    return raw


def test_predict_cli_shuffled_columns_and_extra_column(model_dir, tmp_path):
    folder, csv = model_dir
    raw = _new_rows(csv)
    expected = tuner.load(folder).predict_proba(raw)
    expected_labels = tuner.load(folder).predict(raw)
    shuffled = raw[["count", "city", "customer_id", "x2", "constant", "x1"]].assign(comment="free text")
    shuffled.to_csv(tmp_path / "new.csv", index=False)
    r = runner.invoke(app, ["predict", str(folder), str(tmp_path / "new.csv"), "--out", str(tmp_path / "p.csv"),
                            "--proba", "--chunk-rows", "7"])
    assert r.exit_code == 0, r.output
    assert "ignored 3 column(s)" in r.output and "'comment'" in r.output
    assert "'Marseille'" in r.output  # unseen category: a note, not an error
    out = pd.read_csv(tmp_path / "p.csv")
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert len(out) == len(raw)
    assert list(out["prediction"]) == list(expected_labels)  # rows in input order
    np.testing.assert_allclose(out[["proba_no", "proba_yes"]].to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12)


def test_predict_to_stdout_parquet_and_gzip(model_dir, tmp_path):
    folder, csv = model_dir
    raw = _new_rows(csv)
    expected = list(tuner.load(folder).predict(raw))
    raw.to_parquet(tmp_path / "new.parquet")
    raw.to_csv(tmp_path / "new.csv.gz", index=False)
    for source in ("new.parquet", "new.csv.gz"):
        r = runner.invoke(app, ["predict", str(folder), str(tmp_path / source), "--chunk-rows", "50"])
        assert r.exit_code == 0, r.output
        lines = [line for line in r.stdout.splitlines() if line and not line.startswith("note:")]
        assert lines[0] == "prediction" and lines[1:] == expected


def test_missing_column_is_an_error_naming_it(model_dir, tmp_path):
    folder, csv = model_dir
    _new_rows(csv).drop(columns=["x2"]).to_csv(tmp_path / "bad.csv", index=False)
    r = runner.invoke(app, ["predict", str(folder), str(tmp_path / "bad.csv")])
    assert r.exit_code == 2 and "missing input column 'x2'" in r.output and "Traceback" not in r.output
    with pytest.raises(InputError, match="'x2'"):
        tuner.load(folder).predict(_new_rows(csv).drop(columns=["x2"]))


def test_wrong_type_is_an_error_naming_column_and_row(model_dir, tmp_path):
    folder, csv = model_dir
    raw = _new_rows(csv)
    raw["x1"] = raw["x1"].astype(object)
    raw.loc[30, "x1"] = "twelve"
    raw.to_csv(tmp_path / "bad.csv", index=False)
    r = runner.invoke(app, ["predict", str(folder), str(tmp_path / "bad.csv"), "--chunk-rows", "20"])
    assert r.exit_code == 2
    assert "column 'x1' must be numeric" in r.output and "'twelve'" in r.output and "data row 31" in r.output


def test_safe_coercions(model_dir):
    folder, csv = model_dir
    model = tuner.load(folder)
    raw = _new_rows(csv).head(6)
    as_text = raw.astype({"x1": str, "x2": str, "count": float})  # "0.5" -> 0.5, 3.0 -> 3
    as_text.loc[0, "x2"] = " "  # blank -> missing
    expected = raw.copy()
    expected.loc[0, "x2"] = np.nan
    np.testing.assert_allclose(model.predict_proba(as_text).to_numpy(), model.predict_proba(expected).to_numpy())
    records = raw.to_dict(orient="records")  # a list of dicts works too
    assert list(model.predict(records)) == list(model.predict(raw))


def test_regression_proba_flag_is_refused(tmp_path):
    storage, csv = make_run(tmp_path, regression_frame(), "price", ["lasso"], "r")
    export_model(tmp_path / "m", run="r", storage=storage)
    r = runner.invoke(app, ["predict", str(tmp_path / "m"), str(csv), "--proba"])
    assert r.exit_code == 2 and "regression" in r.output
    r = runner.invoke(app, ["predict", str(tmp_path / "m"), str(csv), "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    out = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(out["prediction"], tuner.load(tmp_path / "m").predict(pd.read_csv(csv)), rtol=1e-12)
