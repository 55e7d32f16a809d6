"""Prediction inputs (issue #8): every case decided the same way by the three entry points.

Cases: schema drift (missing, extra, reordered, retyped columns), missing values, unseen
categories, numbers out of range, outputs that are not finite, no rows, an empty input.
Entry points: ``tuner.load(...).predict`` (python), ``tuner predict`` (cli) and ``tuner serve``
(http, a real server process). One small regression model (lasso: linear, so huge inputs can
overflow its output) is exported once for the module.
"""

from __future__ import annotations

import io
import json
import math
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tuner
from export_helpers import make_run, regression_frame, serving
from tuner.cli import app
from tuner.data.inputs import InputError, InputWarning, coerce
from tuner.data.schema import Schema
from tuner.deploy.export import export_model

runner = CliRunner()
ENTRIES = ["python", "cli", "http"]


def training_frame() -> pd.DataFrame:
    """Four numbers (one with gaps, one with a few '?' that training reads as missing), a category
    ``kind`` (u / v, some missing), target ``price``."""
    df = regression_frame(120)
    rng = np.random.default_rng(3)
    df.loc[rng.random(len(df)) < 0.1, "a"] = np.nan
    df["c"] = df["c"].astype(object)
    df.loc[[5, 17, 40], "c"] = "?"
    df["kind"] = df["kind"].astype(object).where(rng.random(len(df)) >= 0.1, None)
    return df


# New rows in the canonical form: numbers as floats (NaN missing), the category as text (None missing).
BASE = pd.DataFrame({
    "a": [0.1, -1.2, 0.5, 2.0, np.nan, 0.0],
    "b": [1.0, 0.0, -0.5, 0.3, 0.2, -2.0],
    "c": [0.0, 0.4, 0.1, -0.7, 1.1, 0.9],
    "d": [-0.3, 0.8, 1.5, 0.0, -1.0, 0.6],
    "kind": ["u", "v", "u", None, "v", "u"],
})


def _base(**changes) -> pd.DataFrame:
    df = BASE.copy()
    for col, values in changes.items():
        df[col] = pd.Series(values, dtype=object)
    return df


@dataclass
class Case:
    """Input (``given``: the DataFrame; ``csv`` / ``body`` override what the CLI / HTTP get) and expectation.

    ``expect``: ``"rows"`` (predictions equal to those of ``reference``) or ``"error"``.
    """

    given: pd.DataFrame
    expect: str
    reference: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)  # substrings some note must hold
    no_notes: list[str] = field(default_factory=list)  # substrings no note may hold
    error: list[str] = field(default_factory=list)  # substrings of the error (python / cli message)
    columns: list[str] = field(default_factory=list)  # columns the error names (HTTP: in `loc`)
    csv: bytes | None = None
    body: bytes | None = None
    no_prediction: list[int] = field(default_factory=list)  # rows with a missing prediction


CASES = {
    "reordered columns": Case(BASE[["kind", "d", "c", "b", "a"]], "rows", BASE, no_notes=["ignored"]),
    "extra columns": Case(BASE.assign(comment="free text", row_id=range(len(BASE))), "rows", BASE,
                          notes=["ignored 2 column(s)", "'comment'", "'row_id'"]),
    "missing column": Case(BASE.drop(columns=["b"]), "error", error=["missing input column 'b'"], columns=["b"]),
    "missing columns": Case(BASE.drop(columns=["b", "kind"]), "error",
                            error=["missing input columns 'b', 'kind'", "the model needs: a, b, c, d, kind"],
                            columns=["b", "kind"]),
    "numbers as text": Case(_base(a=["0.1", "-1.2", " 0.5 ", "2", "", "0"], b=["1", "0", "-0.5", "0.3", "0.2", "-2"]),
                            "rows", BASE),
    "a word training read as missing": Case(_base(c=["?", 0.4, " ? ", -0.7, 1.1, 0.9]), "rows",
                                            _base(c=[np.nan, 0.4, np.nan, -0.7, 1.1, 0.9])),
    "text in a numeric column": Case(_base(b=[1.0, 0.0, "abc", 0.3, 0.2, -2.0]), "error",
                                     error=["column 'b' must be numeric", "'abc'", "data row 3"], columns=["b"]),
    "numbers in a categorical column": Case(_base(kind=[1, 2, 3.5, None, 2, 1]), "rows",
                                            _base(kind=["#1", "#2", "#3", None, "#2", "#1"]),
                                            notes=["column 'kind'", "not seen in training", "unknown category"]),
    "missing values": Case(_base(a=[np.nan, None, "", "NA", " ", "null"], kind=[None, "", "NA", np.nan, "null", "u"]),
                           "rows", _base(a=[np.nan] * 6, kind=[None, None, None, None, None, "u"]),
                           no_notes=["not seen"]),
    "unseen category": Case(_base(kind=["Atlantis", "v", "Atlantis", None, "Mu", "u"]), "rows",
                            _base(kind=["#", "v", "#", None, "#", "u"]),
                            notes=["column 'kind': 3 value(s) not seen in training", "'Atlantis'", "'Mu'"]),
    "infinite and huge numbers": Case(
        _base(a=[math.inf, -math.inf, "1e999", 10 ** 400, np.nan, 0.0]), "rows",
        _base(a=[np.nan, np.nan, np.nan, np.nan, np.nan, 0.0]),
        notes=["column 'a': 4 infinite or out-of-range value(s)", "treated as missing"]),  # JSON: Infinity, 10**400
    "output not finite": Case(_base(a=[1.7e308] * 6, b=[1.7e308] * 6, c=[1.7e308] * 6, d=[1.7e308] * 6), "rows",
                              notes=["have no prediction", "not a finite number"], no_prediction=list(range(6))),
    "no rows": Case(BASE.head(0), "rows", BASE.head(0)),
    "empty input": Case(pd.DataFrame(), "error", error=["missing input columns"], csv=b"", body=b""),
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    storage, _ = make_run(folder, training_frame(), "price", ["lasso"], "inputs")
    export_model(folder / "model", run="inputs", storage=storage)
    return folder / "model"


@pytest.fixture(scope="module")
def model(model_dir):
    return tuner.load(model_dir)


@pytest.fixture(scope="module")
def server(model_dir):
    env = {k: v for k, v in os.environ.items() if k != "TUNER_SERVE_TOKEN"}
    with serving(model_dir, model_dir.parent / "server.log", env=env) as (base, _):
        yield base


@dataclass
class Outcome:
    ok: bool
    predictions: np.ndarray | None = None  # NaN where there is no prediction
    notes: list[str] = field(default_factory=list)
    message: str = ""
    columns: set = field(default_factory=set)


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
            for row in df.to_dict(orient="records")]


def via_python(model, case: Case) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            predictions = model.predict(case.given)
        except InputError as exc:
            return Outcome(False, message=str(exc), columns={exc.column} | set(_quoted(str(exc))))
    notes = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    return Outcome(True, np.asarray(predictions, dtype=float), notes)


def _quoted(text: str) -> list[str]:
    return [part for i, part in enumerate(text.split("'")) if i % 2 == 1]


def via_cli(model_dir, case: Case, folder: Path) -> Outcome:
    path = folder / "new.csv"
    path.write_bytes(case.csv if case.csv is not None else case.given.to_csv(index=False).encode())
    r = runner.invoke(app, ["predict", str(model_dir), str(path)])
    lines = [line for line in r.output.splitlines() if line.strip()]
    if r.exit_code != 0:
        assert r.exit_code == 2, r.output
        assert "Traceback" not in r.output
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) == 1 and len(lines) == 1, f"not one line: {r.output!r}"
        return Outcome(False, message=errors[0], columns=set(_quoted(errors[0])))
    notes = [line.removeprefix("note: ") for line in lines if line.startswith("note: ")]
    table = "\n".join(line for line in r.stdout.splitlines() if not line.startswith("note: "))
    out = pd.read_csv(io.StringIO(table))
    assert list(out.columns) == ["prediction"]
    return Outcome(True, out["prediction"].to_numpy(dtype=float), notes)


def via_http(base: str, case: Case) -> Outcome:
    body = case.body if case.body is not None else json.dumps({"records": _records(case.given)}).encode()
    req = urllib.request.Request(base + "/predict", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, payload = resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, json.loads(exc.read())
    if status != 200:
        assert status == 422, payload
        cols = {d["loc"][-1] for d in payload["detail"] if len(d["loc"]) >= 4}
        return Outcome(False, message=payload["message"], columns=cols)
    assert payload["probabilities"] is None and payload["classes"] is None
    preds = np.asarray([np.nan if p is None else p for p in payload["predictions"]], dtype=float)
    return Outcome(True, preds, payload["notes"])


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize("name", list(CASES))
def test_case(name, entry, model, model_dir, server, tmp_path):
    case = CASES[name]
    if entry == "python":
        got = via_python(model, case)
    elif entry == "cli":
        got = via_cli(model_dir, case, tmp_path)
    else:
        got = via_http(server, case)

    if case.expect == "error":
        assert not got.ok, f"expected an error, got {got}"
        assert set(case.columns) <= got.columns, (case.columns, got)
        if entry == "http":
            return  # 422, `loc` naming the columns (checked above); the message is per record
        if name == "empty input" and entry == "cli":
            assert "is empty" in got.message and "nothing to predict" in got.message
            return
        for text in case.error:
            assert text in got.message, (text, got.message)
        return

    assert got.ok, f"expected predictions, got the error {got.message!r}"
    n = len(case.given)
    assert len(got.predictions) == n
    if case.reference is not None:
        reference = case.reference
        expected = np.asarray(model.predict_batch(reference).predictions, dtype=float)
        np.testing.assert_allclose(got.predictions, expected, rtol=1e-9, atol=1e-12)
    missing = sorted(np.flatnonzero(np.isnan(got.predictions)).tolist())
    assert missing == case.no_prediction
    joined = " | ".join(got.notes)
    for text in case.notes:
        assert text in joined, (text, got.notes)
    for text in case.no_notes:
        assert text not in joined, (text, got.notes)
    if name == "no rows" and entry == "cli":
        assert "no data rows" in joined


def test_no_rows_still_checks_the_columns(model, model_dir, tmp_path):
    with pytest.raises(InputError, match="missing input column 'b'"):
        model.predict(BASE.head(0).drop(columns=["b"]))
    (tmp_path / "h.csv").write_text("a,c,d,kind\n")
    r = runner.invoke(app, ["predict", str(model_dir), str(tmp_path / "h.csv")])
    assert r.exit_code == 2 and "missing input column 'b'" in r.output
    assert model.predict([]).shape == (0,)  # an empty list of records: no rows, as {"records": []} over HTTP


def test_records_must_hold_every_column(model, server):
    records = _records(BASE)
    del records[2]["c"]
    with pytest.raises(InputError, match="record 2 lacks column 'c'") as info:
        model.predict(records)
    assert info.value.row == 2 and info.value.column == "c"
    got = via_http(server, Case(BASE, "error", body=json.dumps({"records": records}).encode()))
    assert not got.ok and got.columns == {"c"} and "records[2].c" in got.message


def test_duplicate_column_is_an_error(model):
    twice = pd.concat([BASE, BASE[["a"]]], axis=1)
    with pytest.raises(InputError, match="input column 'a' is given 2 times"):
        model.predict(twice)


def test_unseen_category_is_all_zero_in_the_one_hot(model):
    """The encoder ignores an unseen category: every one-hot column of ``kind`` is 0 for it."""
    X, notes = model.prepare(_base(kind=["Atlantis", "u", "v", "u", "v", "u"]))
    prep = model.pipeline.named_steps["prep"]
    names = list(prep.get_feature_names_out())
    kind_cols = [i for i, n in enumerate(names) if n.startswith("kind_")]
    assert kind_cols, names
    encoded = prep.transform(X)
    assert not encoded[0, kind_cols].any()  # Atlantis: all zero
    assert encoded[1:, kind_cols].sum(axis=1).tolist() == [1.0] * 5  # seen: one column each
    assert any("'Atlantis'" in n for n in notes)


def test_notes_are_input_warnings(model):
    with pytest.warns(InputWarning, match="not seen in training"):
        model.predict(_base(kind=["Atlantis"] * 6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(BASE)  # clean input: no warning at all


def test_missing_value_words_stay_categories_when_training_saw_them():
    schema = Schema(numeric=["x"], categorical=["k"], categories={"k": ["NA", "x"]})
    X, notes = coerce(pd.DataFrame({"x": ["NA", "", " 2 ", "n/a"], "k": ["NA", "", "x", "null"]}), schema)
    assert X["x"].isna().tolist() == [True, True, False, True] and X.loc[2, "x"] == 2.0
    assert X["k"].tolist()[0] == "NA" and X["k"].isna().tolist() == [False, True, False, True]
    assert notes == []


# Values a client may send for any column: every type JSON has, and more from Python.
_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["NA", "nan", "", " ", "3.5", "1e999", "-inf", "u", "v", "2020-01-01"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(rows=st.lists(st.fixed_dictionaries({c: _values for c in ["a", "b", "c", "d", "kind"]}), max_size=6))
def test_python_api_raises_only_input_errors(model, rows):
    """Whatever the values, predict gives one prediction per row (or NaN) or raises InputError."""
    frame = pd.DataFrame(rows, columns=["a", "b", "c", "d", "kind"]) if rows else BASE.head(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        try:
            predictions = model.predict(frame)
        except InputError as exc:
            assert exc.column in {"a", "b", "c", "d", "kind"}
            return
    assert len(predictions) == len(rows)
