"""Bad data through the real command line: each case has a decided behaviour (issue #8).

Either a one-line `Error: ...` naming the problem and the fix, exit code 2 and nothing in
the storage, or an automatic fix announced as a `note:` and a run that ends with a
leaderboard. Small files, one trial of a fast family, so the module stays quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner.api
from tuner.cli import app
from tuner.storage.runs import list_runs, open_storage

runner = CliRunner()
FAST = ("--trials", "1", "--models", "logistic_regression", "--cv", "3")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def tune(path, target, storage_url, *extra):
    return invoke("run", path, "--target", target, *FAST, "--storage", storage_url, *extra)


def stored_runs(storage_url: str) -> list[str]:
    if not Path(storage_url.removeprefix("sqlite:///")).exists():
        return []
    return [c.run for c in list_runs(open_storage(storage_url, create=False))]


def assert_refused(result, storage_url: str, *fragments: str) -> None:
    """Exit 2, one `Error:` line naming the problem, no traceback, no run written."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("Error: ") and "\n" not in text, text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, text
    assert stored_runs(storage_url) == []


def assert_ran(result) -> str:
    assert result.exit_code == 0, result.output
    assert "ranked by cross-validated" in result.output and "logistic_regression" in result.output
    return result.output


def notes(output: str) -> list[str]:
    return [line.strip().removeprefix("note: ") for line in output.splitlines() if line.strip().startswith("note:")]


def frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": np.where(x + rng.normal(scale=0.3, size=n) > 0,
                                                                          "yes", "no")})


def _with(df: pd.DataFrame, change) -> pd.DataFrame:
    df = df.copy()
    change(df)
    return df


def _single_row_class(df):
    df.loc[0, "y"] = "rare"


def _two_row_class(df):
    df.loc[:1, "y"] = "rare"


def _two_yes(df):
    df["y"] = "no"
    df.loc[:1, "y"] = "yes"


def _inf_target(df):
    df["y"] = df["x"] * 2.0
    df.loc[3, "y"] = np.inf


REFUSED = {
    # case: (file content, target, extra options, fragments of the one-line error)
    "empty file": ("", "y", (), ["is empty"]),
    "header only": ("x,z,y\n", "y", (), ["has a header but no data rows"]),
    "binary bytes": (bytes(range(256)) * 20, "y", (), ["not a CSV text file", "binary bytes"]),
    "excel workbook": (b"PK\x03\x04" + bytes(200), "y", (), ["Excel workbook", "save it as CSV"]),
    "json": (json.dumps([{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]), "y", (), ["looks like JSON", "read_json"]),
    "duplicate column names": ("x,x,y\n" + "".join(f"{i},{i * 2},{'ab'[i % 2]}\n" for i in range(40)), "y", (),
                               ["repeats column name(s) 'x'", "unique name"]),
    "target missing in every row": (_with(frame(), lambda d: d.__setitem__("y", np.nan)), "y", (),
                                    ["'y' is empty in every row", "another --target"]),
    "a single class": (_with(frame(), lambda d: d.__setitem__("y", "a")), "y", (), ["single class ('a')"]),
    "a class with one row": (_with(frame(), _single_row_class), "y", (),
                             ["class 'rare'", "single row", "remove those rows or merge"]),
    "a binary class with fewer rows than folds": (_with(frame(), _two_yes), "y", (),
                                                  ["rarest class has only 2 row(s), fewer than --cv 3", "use --cv 2",
                                                   "drop that class"]),
    "infinite target": (_with(frame(), _inf_target), "y", (), ["'y' holds 1 infinite value(s)", "data row 4"]),
    "--pos-label not a class": (frame(), "y", ("--pos-label", "maybe"),
                                ["--pos-label 'maybe' is not a class", "'no', 'yes'"]),
    "--pos-label on a multiclass target": (_with(frame(), lambda d: d.__setitem__("y", np.arange(60) % 3)), "y",
                                           ("--pos-label", "1"), ["binary targets only", "multiclass"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_with_one_line_and_nothing_stored(case, tmp_path, storage_url):
    content, target, extra, fragments = REFUSED[case]
    path = tmp_path / "data.csv"
    if isinstance(content, pd.DataFrame):
        content.to_csv(path, index=False)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert_refused(tune(path, target, storage_url, *extra), storage_url, *fragments)


def test_a_multiclass_class_rarer_than_the_folds_runs_with_a_note(tmp_path, storage_url):
    path = tmp_path / "data.csv"
    _with(frame(), _two_row_class).to_csv(path, index=False)  # yes / no / rare (2 rows), 3 folds
    out = assert_ran(tune(path, "y", storage_url))
    assert "class(es) 'rare' (2) have fewer rows than the 3 folds" in out


@pytest.mark.parametrize("sep, decimal, name", [(";", ",", "semicolon"), ("\t", ".", "tab")])
def test_wrong_delimiter_is_detected_and_noted(sep, decimal, name, tmp_path, storage_url):
    path = tmp_path / "data.csv"
    frame().to_csv(path, index=False, sep=sep, decimal=decimal)
    out = assert_ran(tune(path, "y", storage_url))
    assert "2 features (2 numeric, 0 categorical)" in out  # decimal commas read as numbers
    assert any(n.startswith(f"the file is {name}-separated, not comma-separated") for n in notes(out)), out
    if decimal == ",":
        assert "',' as the decimal mark" in out


def test_infinities_in_features_are_missing_values_with_a_note(tmp_path, storage_url):
    df = frame()
    df.loc[:5, "x"] = np.inf
    df.loc[6:8, "z"] = -np.inf
    df.loc[9:10, "y"] = np.nan
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url))
    assert "treated 9 infinite value(s) as missing (imputed inside each fold): x (6), z (3)" in notes(out)
    assert "dropped 2 row(s) whose target 'y' is missing" in notes(out)


def test_mixed_type_columns(tmp_path, storage_url):
    rng = np.random.default_rng(1)
    df = frame()
    mostly = [f"{v:.3f}" for v in df["x"] + rng.normal(scale=0.1, size=60)]
    mostly[4] = "unknown"  # 59 of 60 values are numbers: numeric, the word is missing
    df["mostly_numbers"] = mostly
    df["half"] = [str(i % 7) if i % 2 else f"t{i % 5}" for i in range(60)]  # half numbers: categorical
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url))
    assert "4 features (3 numeric, 1 categorical)" in out
    got = notes(out)
    assert any(n.startswith("read as numbers") and "mostly_numbers ('unknown' ×1)" in n for n in got), got
    assert "columns mixing numbers and text, treated as categorical: half (50% numbers)" in got


def test_numeric_target_with_stray_words(tmp_path, storage_url):
    df = frame()
    df["price"] = (df["x"] * 3 + 10).round(3).astype(object)
    df.loc[[5, 17], "price"] = "?"
    df.drop(columns="y").to_csv(tmp_path / "data.csv", index=False)
    result = invoke("run", tmp_path / "data.csv", "--target", "price", "--trials", "1", "--models", "lasso",
                    "--cv", "3", "--storage", storage_url)
    assert result.exit_code == 0, result.output
    assert "Task: regression (float target" in result.output
    got = notes(result.output)
    assert "target 'price' is numbers in text ('?' ×2): read as numbers, any other text as a missing target" in got
    assert "dropped 2 row(s) whose target 'price' is missing" in got


def test_very_high_cardinality_categorical_is_capped(tmp_path, storage_url):
    rng = np.random.default_rng(2)
    n = 6000
    x = rng.normal(size=n)
    df = pd.DataFrame({"x": x, "shop": [f"shop{i % 5000}" for i in rng.permutation(n)],
                       "y": np.where(x > 0, "yes", "no")})
    df.to_csv(tmp_path / "data.csv", index=False)
    result = invoke("run", tmp_path / "data.csv", "--target", "y", "--trials", "1", "--cv", "3",
                    "--models", "logistic_regression,xgboost", "--storage", storage_url)
    out = assert_ran(result)
    assert "xgboost" in out
    assert any(n.startswith("categorical columns with more than 30 distinct values: shop (5000)")
               and "keeps the 29 most frequent" in n for n in notes(out)), out


def test_non_ascii_and_space_column_names_end_to_end(tmp_path, storage_url):
    df = frame().rename(columns={"x": "prix unitaire €", "z": "größe (cm)", "y": "zielwert ja/nein"})
    df["Straße"] = np.where(np.arange(60) % 3 == 0, "Hauptstraße", "Bahnhofstraße")
    df.to_csv(tmp_path / "daten.csv", index=False)
    assert_ran(tune(tmp_path / "daten.csv", "zielwert ja/nein", storage_url))
    model_dir = tmp_path / "model"
    exported = invoke("export", "--out", model_dir, "--storage", storage_url)
    assert exported.exit_code == 0, exported.output
    result = invoke("predict", model_dir, tmp_path / "daten.csv", "--out", tmp_path / "pred.csv", "--proba")
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert set(pred["prediction"]) <= {"yes", "no"} and {"proba_no", "proba_yes"} <= set(pred.columns)
    assert (pred["prediction"] == df["zielwert ja/nein"]).mean() > 0.8


def test_datetime_columns_become_calendar_features(tmp_path, storage_url):
    df = frame()
    df["signed up"] = pd.date_range("2021-01-01 08:00", periods=60, freq="37h").strftime("%Y-%m-%d %H:%M")
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url))
    assert "3 features (2 numeric, 0 categorical, 1 date/time)" in out
    assert any(n.startswith("date/time columns, expanded into year") and "signed up" in n for n in notes(out))


def test_string_target_states_the_positive_class(tmp_path, storage_url):
    frame().to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url))
    assert ("positive class for precision, recall, f1 and roc_auc: 'yes' (the second of the sorted labels; "
            "to score 'no' as positive, pass --pos-label no)") in notes(out)


def test_pos_label_chooses_the_positive_class_is_kept_and_exports_original_labels(tmp_path, storage_url):
    df = frame()
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url, "--pos-label", "no"))
    assert "positive class for precision, recall, f1 and roc_auc: 'no' (set by --pos-label)" in notes(out)
    (config,) = list_runs(open_storage(storage_url, create=False))
    assert config.classes == ["yes", "no"]  # code 1, the positive class, is 'no'

    # continuing the run without the same --pos-label would flip the scores: refused, nothing added
    flipped = tune(tmp_path / "data.csv", "y", storage_url)
    assert flipped.exit_code == 2 and "scores 'no' as the positive class" in flipped.output
    assert "pass --pos-label no" in flipped.output
    again = tune(tmp_path / "data.csv", "y", storage_url, "--pos-label", "no")
    assert again.exit_code == 0, again.output

    model_dir = tmp_path / "model"
    assert invoke("export", "--out", model_dir, "--storage", storage_url).exit_code == 0
    result = invoke("predict", model_dir, tmp_path / "data.csv", "--out", tmp_path / "pred.csv", "--proba")
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(tmp_path / "pred.csv")
    assert (pred["prediction"] == df["y"]).mean() > 0.8  # original labels, not flipped
    assert ((pred["proba_no"] > 0.5) == (df["y"] == "no")).mean() > 0.8


def test_boolean_target_with_pos_label(tmp_path, storage_url):
    df = frame()
    df["y"] = df["x"] > 0
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url, "--pos-label", "false"))
    assert "Task: binary (target is boolean with 2 distinct values)" in out
    assert "positive class for precision, recall, f1 and roc_auc: False (set by --pos-label)" in notes(out)
    (config,) = list_runs(open_storage(storage_url, create=False))
    assert config.classes == [True, False]


def test_pos_label_from_the_python_api(tmp_path, storage_url):
    df = frame()
    board = tuner.api.tune(df, target="y", models="logistic_regression", trials=1, cv=3, storage=storage_url,
                           run="api", pos_label="no")
    assert len(board) == 1
    (config,) = list_runs(open_storage(storage_url, create=False))
    assert config.classes == ["yes", "no"]


def test_hundreds_of_classes(tmp_path, storage_url):
    rng = np.random.default_rng(3)
    k, per_class = 300, 5
    labels = np.repeat(np.arange(k), per_class)
    X = rng.normal(size=(len(labels), 4))
    X[:, 0] += labels / 20
    df = pd.DataFrame(X, columns=list("abcd"))
    df["species"] = [f"sp{v:03d}" for v in labels]
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "species", storage_url))
    assert "Task: multiclass (target is text with 300 distinct values)" in out


def test_more_columns_than_rows(tmp_path, storage_url):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(50, 500))
    df = pd.DataFrame(X, columns=[f"gene {i}" for i in range(500)])
    df["y"] = np.where(X[:, 0] > 0, "a", "b")
    df.to_csv(tmp_path / "data.csv", index=False)
    out = assert_ran(tune(tmp_path / "data.csv", "y", storage_url))
    assert "50 rows, 500 features (500 numeric, 0 categorical)" in out
    assert "PerformanceWarning" not in out


def test_target_labels_differing_only_in_spaces_are_one_class_with_a_note():
    from tuner.data.dataset import prepare

    df = frame()
    df.loc[::3, "y"] = df.loc[::3, "y"] + " "  # 'yes ' beside 'yes', 'no ' beside 'no'
    ds = prepare(df, "y")
    assert ds.task == "binary" and ds.classes == ["no", "yes"]
    assert any(n.startswith("target 'y' has labels that differ only in surrounding spaces") for n in ds.notes)
    spaced_everywhere = prepare(frame().assign(y=lambda d: " " + d["y"]), "y")  # nothing to merge: kept as written
    assert spaced_everywhere.classes == [" no", " yes"]
    assert not any("surrounding spaces" in n for n in spaced_everywhere.notes)
