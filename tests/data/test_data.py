"""Reading tables, inferring the task and schema, dropping what cannot help."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tuner.data.dataset import prepare
from tuner.data.read import fingerprint, read_table
from tuner.data.schema import coerce_features, infer_task
from tuner.errors import TunerError


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t"), (".csv.gz", ","), (".tsv.gz", "\t")])
def test_reads_delimited_files_plain_and_gzipped(tmp_path, mixed_frame, suffix, sep):
    path = tmp_path / f"data{suffix}"
    mixed_frame.to_csv(path, sep=sep, index=False)
    df = read_table(str(path))
    assert list(df.columns) == list(mixed_frame.columns)
    assert len(df) == len(mixed_frame)


def test_reads_parquet(tmp_path, mixed_frame):
    path = tmp_path / "data.parquet"
    mixed_frame.to_parquet(path)
    assert read_table(str(path)).shape == mixed_frame.shape


@pytest.mark.parametrize("name,task", [("breast_cancer", "binary"), ("wine", "multiclass"), ("diabetes", "regression")])
def test_builtin_datasets(name, task):
    ds = prepare(read_table(f"builtin:{name}"), "target")
    assert ds.task == task
    assert ds.task_reason


def test_unknown_builtin_and_format_and_missing_file(tmp_path):
    with pytest.raises(TunerError, match="unknown built-in dataset"):
        read_table("builtin:nope")
    with pytest.raises(TunerError, match="unknown data format"):
        read_table(str(tmp_path / "data.xlsx"))
    with pytest.raises(TunerError, match="not found"):
        read_table(str(tmp_path / "absent.csv"))


def test_task_inference_rules():
    assert infer_task(pd.Series(["a", "b", "a"]))[0] == "binary"
    assert infer_task(pd.Series(["a", "b", "c"]))[0] == "multiclass"
    assert infer_task(pd.Series([True, False, True]))[0] == "binary"
    assert infer_task(pd.Series([0, 1, 1, 0]))[0] == "binary"
    assert infer_task(pd.Series([3, 4, 5, 6, 7] * 3))[0] == "multiclass"
    assert infer_task(pd.Series(np.linspace(0, 1, 50)))[0] == "regression"
    assert infer_task(pd.Series([2.0, 3.0, 4.0, 5.0] * 5))[0] == "regression"  # float: a measurement
    assert infer_task(pd.Series(range(100)))[0] == "regression"


def test_schema_drops_and_notes(mixed_frame):
    ds = prepare(mixed_frame, "churned")
    assert ds.task == "binary" and ds.classes == ["no", "yes"]
    assert "customer_id" not in ds.X.columns and "constant" not in ds.X.columns
    assert ds.schema.categorical == ["city"] and set(ds.schema.numeric) == {"x1", "x2"}
    notes = " ".join(ds.notes)
    assert "customer_id" in notes and "identifier" in notes
    assert "constant" in notes and "city" in notes
    assert ds.schema.categories["city"] == ["Lyon", "Nice", "Paris"]


def test_rows_with_missing_target_are_dropped_and_counted(mixed_frame):
    df = mixed_frame.copy()
    df.loc[:4, "churned"] = None
    ds = prepare(df, "churned")
    assert len(ds.X) == len(df) - 5
    assert any("dropped 5 row(s)" in n for n in ds.notes)


def test_integer_id_column_dropped_but_unique_float_feature_kept():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"row": np.arange(100), "x": rng.normal(size=100), "y": rng.integers(0, 2, 100)})
    ds = prepare(df, "y")
    assert list(ds.X.columns) == ["x"]


def test_all_missing_column_dropped():
    df = pd.DataFrame({"a": [np.nan] * 30, "b": np.arange(30) % 7, "y": [0, 1] * 15})
    ds = prepare(df, "y")
    assert list(ds.X.columns) == ["b"]


@pytest.mark.parametrize(
    "frame,target,message",
    [
        (pd.DataFrame({"a": range(20), "y": [1] * 20}), "y", "single class"),
        (pd.DataFrame({"a": range(20), "y": [np.nan] * 20}), "y", "empty in every row"),
        (pd.DataFrame({"a": range(20), "y": [0, 1] * 10}), "Y", "did you mean 'y'"),
        (pd.DataFrame({"a": range(20), "y": [0, 1] * 10}), "zzz", "not in the data"),
    ],
)
def test_bad_targets_are_one_line_errors(frame, target, message):
    with pytest.raises(TunerError, match=message) as info:
        prepare(frame, target)
    assert "\n" not in str(info.value)


def test_task_override_and_its_errors():
    df = pd.DataFrame({"a": np.arange(40.0), "y": [1.0, 2.0, 3.0, 4.0] * 10})
    assert prepare(df, "y", "multiclass").task == "multiclass"
    with pytest.raises(TunerError, match="needs 2 classes"):
        prepare(df, "y", "binary")
    with pytest.raises(TunerError, match="unknown task"):
        prepare(df, "y", "clustering")
    text = pd.DataFrame({"a": np.arange(40.0), "y": ["x", "z"] * 20})
    with pytest.raises(TunerError, match="non-numeric"):
        prepare(text, "y", "regression")


def test_fingerprint_changes_with_content(mixed_frame):
    other = mixed_frame.copy()
    other.loc[0, "x2"] = 123.0
    assert fingerprint(mixed_frame) == fingerprint(mixed_frame.copy())
    assert fingerprint(mixed_frame) != fingerprint(other)


def test_coerce_features_normalises_categoricals_and_infinities(mixed_frame):
    ds = prepare(mixed_frame, "churned")
    raw = mixed_frame.drop(columns=["churned"]).copy()
    raw.loc[0, "x2"] = np.inf
    raw["city"] = raw["city"].astype("category")
    X = coerce_features(raw, ds.schema)
    assert list(X.columns) == ds.schema.columns
    assert np.isnan(X.loc[0, "x2"])
    assert X["city"].dtype == object


def _dated_frame(n=120):
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2021-01-01", periods=n, freq="13h")
    df = pd.DataFrame({"when": stamps.strftime("%Y-%m-%d %H:%M"), "x": rng.normal(size=n)})
    df["y"] = np.where((stamps.hour >= 12) ^ (df["x"] > 1), "pm", "am")
    return df


def test_date_text_becomes_calendar_features_not_an_identifier():
    ds = prepare(_dated_frame(), "y")
    assert ds.schema.datetime == ["when"] and "when" in ds.schema.categorical
    assert "when" not in ds.schema.categories and ds.schema.encoded == []
    assert any("date/time columns" in n and "when" in n for n in ds.notes)
    from tuner.data.features import looks_like_dates

    assert not looks_like_dates(pd.Series(["T1", "T2", "T3"]))
    assert not looks_like_dates(pd.Series(["1.5", "2.25", "3"]))
    assert looks_like_dates(pd.Series(["03/04/2021", "12/31/2020", None]))


def test_date_columns_are_learnt_from_and_survive_export(tmp_path, storage_url):
    from typer.testing import CliRunner

    import tuner
    from tuner.cli import app

    path = tmp_path / "dated.csv"
    _dated_frame(200).to_csv(path, index=False)
    board = tuner.tune(str(path), target="y", models=["xgboost"], trials=1, cv=3, storage=storage_url, run="d")
    assert board.loc[0, "roc_auc_mean"] > 0.9  # the hour of day is the signal
    out = tmp_path / "model"
    runner = CliRunner()
    assert runner.invoke(app, ["export", "--run", "d", "--storage", storage_url, "--out", str(out)]).exit_code == 0
    model = tuner.load(str(out))
    fresh = _dated_frame(30).drop(columns="y")
    assert set(model.predict(fresh)) <= {"am", "pm"}


def test_row_numbers_are_identifiers_even_as_a_sample_or_in_camel_case():
    from tuner.data.columns import useless_reason

    rng = np.random.default_rng(0)
    sample = pd.Series(np.sort(rng.choice(np.arange(1, 1001), 750, replace=False)))  # 75 % of the row numbers 1..1000
    assert useless_reason("row", sample, 750) == "identifier-like: a unique integer per row"
    scattered = pd.Series(rng.choice(10**6, 750, replace=False))  # unique integers over a wide range
    assert useless_reason("PassengerId", scattered, 750) == "identifier-like: a unique integer per row"
    assert useless_reason("customerID", scattered, 750) == "identifier-like: a unique integer per row"
    assert useless_reason("balance_cents", scattered, 750) is None  # a measurement, not a count
    assert useless_reason("Paid", scattered, 750) is None  # 'id' inside a word is not a name of identifiers
