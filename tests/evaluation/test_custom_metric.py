"""A user's own metric: by reference or as a function, checked at start, stored with the run,
found again by a resumed run in another process, and re-ranked by."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import fbeta_score, mean_absolute_error
from typer.testing import CliRunner

import _user_metrics
import tuner
from tuner.cli.app import app
from tuner.errors import TunerError
from tuner.evaluation.metrics import check_metric, score_all

TESTS = str(Path(__file__).resolve().parents[1])
runner = CliRunner()


def _binary(n=200, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=list("abc"))
    frame["y"] = np.where(frame["a"] + rng.normal(scale=0.7, size=n) > 0.8, "yes", "no")
    return frame


def test_a_declared_function_scores_as_itself_weighted_and_not():
    rng = np.random.default_rng(1)
    y, proba = rng.integers(0, 2, 100), rng.dirichlet([1, 1], 100)
    pred, w = proba.argmax(axis=1), rng.uniform(0, 2, 100)
    name = "_user_metrics:recall_weighted_f"
    for weights in (None, w):
        got = score_all("binary", y, pred, proba, 2, weights, metric=name)[name]
        assert got == pytest.approx(fbeta_score(y, pred, beta=3, sample_weight=weights, zero_division=0))
    got = score_all("binary", y, pred, proba, 2, w, metric="_user_metrics:mean_miss")["_user_metrics:mean_miss"]
    assert got == pytest.approx(np.average(np.abs(y - proba[:, 1]), weights=w))
    assert not check_metric("_user_metrics:mean_miss", "binary").greater_is_better


def test_a_scikit_learn_scorer_is_called_on_the_folds_predictions():
    rng = np.random.default_rng(2)
    y, pred = rng.normal(size=50), rng.normal(size=50)
    got = score_all("regression", y, pred, None, 0, metric="_user_metrics:mae_scorer")["_user_metrics:mae_scorer"]
    assert got == pytest.approx(-mean_absolute_error(y, pred))  # a scorer: greater is better


@pytest.mark.parametrize("ref, problem", [
    ("_user_metrics:undeclared", "must say whether greater is better"),
    ("_user_metrics:one_argument", "must take (y_true, y_pred, sample_weight=None)"),
    ("_user_metrics:broken", "failed on a test call"),
    ("_user_metrics:nothing_here", "has no 'nothing_here'"),
    ("no_such_package.metrics:f", "cannot import the module of metric"),
    ("_user_metrics:median_error", "does not apply to a binary task"),
])
def test_a_metric_that_cannot_work_exits_2_with_one_line_naming_it(ref, problem, tmp_path):
    csv = tmp_path / "d.csv"
    _binary().to_csv(csv, index=False)
    result = runner.invoke(app, ["run", str(csv), "--target", "y", "--metric", ref, "--trials", "1",
                                 "--storage", f"sqlite:///{tmp_path / 'r.db'}", "--run", "bad"])
    assert result.exit_code == 2 and problem in result.output, result.output
    assert "Traceback" not in result.output


def test_a_function_from_a_notebook_is_refused_with_what_to_do(tmp_path):
    @tuner.metric(greater_is_better=True, needs="label")
    def local(y_true, y_pred, sample_weight=None):
        return 0.0

    with pytest.raises(TunerError, match="define it in a module that other processes can import"):
        tuner.tune(_binary(), target="y", metric=local, trials=1, storage=f"sqlite:///{tmp_path / 'r.db'}", run="x")


def test_a_custom_metric_tunes_ranks_resumes_in_a_new_process_and_re_ranks(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    frame = _binary(240)
    board = tuner.tune(frame, target="y", metric=_user_metrics.recall_weighted_f, models=["logistic_regression", "xgboost"],
                       trials=2, cv=3, storage=storage, run="c")
    name = "_user_metrics:recall_weighted_f"
    assert board[f"{name}_mean"].notna().all()
    assert list(board[f"{name}_mean"]) == sorted(board[f"{name}_mean"], reverse=True)  # ranked by it
    csv = tmp_path / "d.csv"
    frame.to_csv(csv, index=False)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]))
    again = subprocess.run([sys.executable, "-m", "tuner", "leaderboard", "--storage", storage, "--run", "c",
                            "--format", "json"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = json.loads(again.stdout)
    assert all(name in r["metrics"] for r in rows)
    resumed = tuner.tune(frame, target="y", trials=1, cv=3, storage=storage, run="c")  # the stored metric
    assert f"{name}_mean" in resumed.columns
    assert int(resumed["trials_complete"].sum()) >= 6
    by_auc = tuner.leaderboard(run="c", storage=storage, metric="roc_auc")
    assert list(by_auc["roc_auc_mean"]) == sorted(by_auc["roc_auc_mean"], reverse=True)
    by_it = tuner.leaderboard(run="c", storage=storage, metric=_user_metrics.recall_weighted_f)
    assert list(by_it[f"{name}_mean"]) == sorted(by_it[f"{name}_mean"], reverse=True)
    # the threshold of a label metric of the user's is chosen for it
    model = tuner.export(str(tmp_path / "m"), run="c", storage=storage)
    assert model.card["metric"] == name and model.card["decision"].get("metric") in (name, None)
