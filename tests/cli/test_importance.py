"""Column importances (issue #20, part 2): permutation importance on held-out rows, on the table's
own columns, in the card, the report, `tuner importance` and ``tuner.importance``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app

runner = CliRunner()


def signal_frame(n: int = 300, seed: int = 0, regression: bool = False) -> pd.DataFrame:
    """``signal`` decides the target, ``colour`` (a category) helps, ``noise`` does nothing."""
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    score = 2 * signal + (colour == "red") * 1.0 + rng.normal(scale=0.3, size=n)
    target = score if regression else np.where(score > 0.3, "yes", "no")
    return pd.DataFrame({"signal": signal, "noise": noise, "colour": colour, "y": target})


@pytest.mark.parametrize("regression", [False, True])
def test_the_deciding_column_matters_and_the_noise_does_not(tmp_path, storage_url, regression):
    path = tmp_path / "t.csv"
    signal_frame(regression=regression).to_csv(path, index=False)
    family = "lasso" if regression else "logistic_regression"
    tuner.tune(str(path), target="y", models=family, trials=2, cv=3, storage=storage_url, run="r")
    found = tuner.importance(run="r", storage=storage_url, repeats=4)
    assert list(found.columns) == ["column", "mean", "std"]
    assert set(found["column"]) == {"signal", "noise", "colour"}  # the table's columns, not one-hot ones
    by = found.set_index("column")["mean"]
    assert found["column"][0] == "signal" and by["signal"] > 0.1  # rmse rises / roc_auc falls without it
    assert by["colour"] > abs(by["noise"]) and abs(by["noise"]) < 0.02
    assert (found["std"] >= 0).all() and "3 CV fold(s)" in found.attrs["where"]


def test_export_card_cli_and_report(tmp_path, storage_url):
    path = tmp_path / "t.csv"
    signal_frame().to_csv(path, index=False)
    res = runner.invoke(app, ["run", str(path), "--target", "y", "--models", "logistic_regression", "--trials", "1",
                              "--cv", "3", "--test-size", "0.25", "--storage", storage_url, "--run", "r"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", "--storage", storage_url, "--out", str(tmp_path / "m"), "--importance"])
    assert res.exit_code == 0, res.output
    assert "importance (roc_auc worse when shuffled): signal" in " ".join(res.stdout.split())
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    found = card["feature_importance"]
    assert found["columns"][0]["column"] == "signal" and "held-out test part (75 rows)" in found["where"]

    res = runner.invoke(app, ["importance", str(tmp_path / "m")])
    assert res.exit_code == 0 and "signal" in res.stdout.splitlines()[1], res.output
    res = runner.invoke(app, ["importance", "--storage", storage_url, "--json", "--repeats", "3"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["columns"][0]["column"] == "signal"

    res = runner.invoke(app, ["export", "--storage", storage_url, "--out", str(tmp_path / "bare"), "--no-importance"])
    assert res.exit_code == 0 and "feature_importance" not in json.loads((tmp_path / "bare" / "model_card.json").read_text())
    res = runner.invoke(app, ["importance", str(tmp_path / "bare")])
    assert res.exit_code == 2 and "has no importances" in res.output
    res = runner.invoke(app, ["importance", "--storage", storage_url, "--repeats", "1"])
    assert res.exit_code == 2 and "--repeats must be at least 2" in res.output

    pytest.importorskip("plotly")
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--storage", storage_url, "--out", str(report)])
    assert res.exit_code == 0, res.output
    assert "Column importances: logistic_regression" in report.read_text()
