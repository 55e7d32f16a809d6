"""Numbers written for people ("$1,234", "12%") are read as numbers in training and prediction alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.data.dataset import prepare
from tuner.data.number_text import plain_number, to_numbers

runner = CliRunner()


@pytest.mark.parametrize("text, plain", [
    ("$1,234.50", "1234.50"), ("€ 3,000", "3000"), ("12%", "12"), ("12.5 %", "12.5"), ("-$5", "-5"),
    ("$-5", "-5"), ("£0.99", "0.99"), ("1,234,567", "1234567"), ("$.5", ".5"), ("+¥7", "7"),
])
def test_formatted_numbers_give_their_plain_number(text, plain):
    assert plain_number(text) == plain


@pytest.mark.parametrize("text", [
    "1234", "3.5", "3,5", "1,23", "10-20", "12 kg", "$", "%", "abc", "$1,2345", "--$5", "-$-5", "1,234.5.6", "5$5",
])
def test_anything_else_is_not_a_formatted_number(text):
    assert plain_number(text) is None


def test_to_numbers_marks_which_values_were_formatted():
    values, formatted = to_numbers(pd.Series(["1.5", "$2,000", "n/a", "7%"]))
    np.testing.assert_array_equal(values.to_numpy(dtype=float), [1.5, 2000.0, np.nan, 7.0])
    assert formatted.tolist() == [False, True, False, True]


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    fee = rng.uniform(100, 5000, n)
    rate = rng.uniform(1, 20, n)
    return pd.DataFrame({
        "fee": [f"${v:,.2f}" for v in fee],  # a different value in every row: not an identifier now
        "rate": [f"{v:.1f}%" for v in rate],
        "zip": [f"{i % 5:05d}" for i in range(n)],  # plain digits as text stay categories
        "price": [f"${v:,.0f}" for v in 3 * fee + 100 * rate + rng.normal(0, 50, n)],
    })


def test_formatted_columns_and_target_are_read_as_numbers_with_a_note():
    df = _table()
    df.loc[3, "rate"] = "unknown"
    ds = prepare(df, "price")
    assert ds.task == "regression"
    assert ds.schema.numeric == ["fee", "rate"] and ds.schema.categorical == ["zip"]
    assert ds.X["fee"].iloc[0] == pytest.approx(float(df["fee"].iloc[0].strip("$").replace(",", "")))
    assert np.isnan(ds.X["rate"].iloc[3])
    notes = " | ".join(ds.notes)
    assert "target 'price' is numbers in text (written as '$" in notes
    assert "read as numbers" in notes and "fee (written as '$" in notes and "'unknown' ×1" in notes
    assert not any("identifier" in n for n in ds.notes)


def test_a_model_trained_on_formatted_numbers_predicts_them_as_training_read_them(tmp_path):
    df = _table()
    csv = tmp_path / "fees.csv"
    df.to_csv(csv, index=False)
    storage = f"sqlite:///{tmp_path / 'tuner.db'}"
    tuner.tune(str(csv), target="price", models=["lasso"], trials=2, cv=3, storage=storage, run="fees", n_jobs=1)
    out = tmp_path / "model"
    res = runner.invoke(app, ["export", "--storage", storage, "--run", "fees", "--out", str(out), "--no-importance"])
    assert res.exit_code == 0, res.output
    model = tuner.load(out)
    formatted = df.drop(columns="price").head(5)
    plain = formatted.assign(fee=[s.strip("$").replace(",", "") for s in formatted["fee"]],
                             rate=[float(s.rstrip("%")) for s in formatted["rate"]])
    np.testing.assert_allclose(model.predict(formatted), model.predict(plain))
    assert np.corrcoef(model.predict(df.drop(columns="price")), prepare(df, "price").y)[0, 1] > 0.9
