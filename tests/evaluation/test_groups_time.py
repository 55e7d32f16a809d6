"""Rows that are not independent: --groups and --time-column (issue #19).

Each case is built so that the wrong folds give a clearly wrong answer: a target that can be
memorised per group but not predicted across groups, and a drifting series that shuffled
folds interpolate but the future does not follow.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.data.dataset import load_split_for_run, prepare, split_holdout
from tuner.errors import TunerError
from tuner.evaluation.folds import make_folds
from tuner.storage.runs import open_storage, require_config

runner = CliRunner()


def grouped_frame(n_groups: int = 100, per_group: int = 6, seed: int = 0) -> pd.DataFrame:
    """Each group has its own point in feature space and its own random label: a model can
    recognise a group it has seen (memorise) but nothing carries over to a new group."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, 4)) * 3
    labels = rng.permutation(np.arange(n_groups) % 2)
    g = np.repeat(np.arange(n_groups), per_group)
    X = centres[g] + rng.normal(scale=0.05, size=(len(g), 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["patient"] = [f"P{i:03d}" for i in g]
    df["y"] = np.where(labels[g] == 1, "sick", "well")
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)  # file order says nothing


def drifting_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A level that wanders over time (a random walk) and a feature that only tells the time:
    shuffled folds interpolate between neighbours, the future is never like the past."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = np.cumsum(rng.normal(size=n))
    df = pd.DataFrame({
        "counter": t + rng.normal(scale=0.5, size=n),
        "noise": rng.normal(size=n),
        "day": pd.Timestamp("2020-01-01") + pd.to_timedelta(t, unit="D"),
        "y": level + rng.normal(scale=0.3, size=n),
    })
    df["day"] = df["day"].dt.strftime("%Y-%m-%d")
    return df.sample(frac=1.0, random_state=2).reset_index(drop=True)  # the file is not in time order


# -- folds ---------------------------------------------------------------------------------------
def test_group_folds_never_split_a_group_and_repeats_reshuffle_the_groups():
    df = grouped_frame()
    ds = prepare(df, "y", groups="patient")
    assert "patient" not in ds.X.columns and ds.n_groups == 100
    folds = make_folds(ds.y, ds.task, 5, seed=0, repeats=2, groups=ds.groups)
    assert len(folds) == 10
    for tr, te in folds:
        assert not set(ds.groups[tr]) & set(ds.groups[te])
        assert len(tr) + len(te) == len(ds.y)
    first = [frozenset(ds.groups[te]) for _, te in folds[:5]]
    second = [frozenset(ds.groups[te]) for _, te in folds[5:]]
    assert set(first) != set(second)  # the second repeat puts the groups in other folds
    again = make_folds(ds.y, ds.task, 5, seed=0, repeats=2, groups=ds.groups)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))  # seeded
    reg = make_folds(np.arange(len(ds.y), dtype=float), "regression", 4, seed=3, groups=ds.groups)
    assert all(not set(ds.groups[tr]) & set(ds.groups[te]) for tr, te in reg)


def test_forward_folds_train_on_the_past_only_with_the_gap():
    folds = make_folds(np.arange(100, dtype=float), "regression", 4, seed=0, time_ordered=True, gap=5)
    assert len(folds) == 4
    for tr, te in folds:
        assert tr.max() + 5 < te.min()  # the gap rows are in neither part
        assert np.array_equal(tr, np.arange(len(tr)))  # an expanding window from the first row
    assert [len(tr) for tr, _ in folds] == sorted(len(tr) for tr, _ in folds)


def test_fold_errors_name_the_problem_and_the_fix():
    y = np.array([0, 1] * 10)
    groups = np.repeat(np.arange(3), [7, 7, 6])
    with pytest.raises(TunerError, match=r"only 3 groups, fewer than --cv 5.*--cv 3"):
        make_folds(y, "binary", 5, seed=0, groups=groups)
    with pytest.raises(TunerError, match="--cv-repeats 2 has no meaning with --time-column"):
        make_folds(y, "binary", 3, seed=0, repeats=2, time_ordered=True)
    with pytest.raises(TunerError, match="--gap .* needs --time-column"):
        make_folds(y, "binary", 3, seed=0, gap=2)
    with pytest.raises(TunerError, match="too few for 5 forward folds"):
        make_folds(np.zeros(12), "regression", 5, seed=0, time_ordered=True, gap=4)
    late = np.r_[np.zeros(30, dtype=int), np.ones(10, dtype=int)]  # the positive class only comes late
    with pytest.raises(TunerError, match="forward fold 1's .* one class only"):
        make_folds(late, "binary", 3, seed=0, time_ordered=True)


# -- data -----------------------------------------------------------------------------------------
def test_time_column_orders_the_rows_and_is_not_a_feature():
    df = drifting_frame(n=50)
    ds = prepare(df, "y", time_column="day")
    assert "day" not in ds.X.columns and ds.time_column == "day"
    order = pd.to_datetime(df["day"]).argsort(kind="stable").to_numpy()
    assert np.allclose(ds.y, df["y"].to_numpy()[order])
    assert any("rows ordered by the time column 'day' (from 2020-01-01 to 2020-02-19)" in n for n in ds.notes)
    numeric = prepare(df.assign(step=np.arange(50)[::-1]), "y", time_column="step")  # numbers order too
    assert np.allclose(numeric.y, df["y"].to_numpy()[::-1])


@pytest.mark.parametrize("change, options, message", [
    (lambda d: d, {"time_column": "y"}, "--time-column 'y' is the target column"),
    (lambda d: d, {"groups": "nope"}, "--groups column 'nope' is not in the data"),
    (lambda d: d, {"groups": "day", "time_column": "day"}, "both --groups and --time-column"),
    (lambda d: d.assign(g=1), {"groups": "g", "time_column": "day"}, "together are not supported"),
    (lambda d: d.assign(day=d["day"].where(d.index != 3)), {"time_column": "day"}, "time column 'day' is empty in 1"),
    (lambda d: d.assign(day=d["day"].where(d.index != 4, "soon")), {"time_column": "day"},
     r"1 value\(s\) that are neither dates nor numbers \(e.g. 'soon'\)"),
    (lambda d: d.assign(g=np.where(d.index == 5, None, "a")), {"groups": "g"}, "group column 'g' is empty in 1 row"),
])
def test_bad_group_or_time_columns_are_refused(change, options, message):
    with pytest.raises(TunerError, match=message):
        prepare(change(drifting_frame(n=40)), "y", **options)


def test_holdout_takes_whole_groups_or_the_latest_rows():
    ds = prepare(grouped_frame(), "y", groups="patient")
    train, test = split_holdout(ds, 0.25, seed=0)
    assert not set(train.groups) & set(test.groups) and len(train.y) + len(test.y) == len(ds.y)
    assert 20 <= len(set(test.groups)) <= 30  # about a quarter of the 100 groups
    ts = prepare(drifting_frame(n=100), "y", time_column="day")
    train, test = split_holdout(ts, 0.2, seed=0, gap=3)
    assert len(test.y) == 20 and len(train.y) == 77
    assert np.allclose(test.y, ts.y[-20:]) and np.allclose(train.y, ts.y[:77])


# -- what the options are for ------------------------------------------------------------------
def test_groups_stop_memorised_groups_from_looking_predictable(storage_url):
    df = grouped_frame()
    shuffled = tuner.tune(df, target="y", models="random_forest", trials=1, cv=5, storage=storage_url, run="shuffled")
    grouped = tuner.tune(df, target="y", models="random_forest", trials=1, cv=5, storage=storage_url, run="grouped",
                         groups="patient")
    assert shuffled["roc_auc_mean"][0] > 0.95  # rows of a seen group: memorised
    assert abs(grouped["roc_auc_mean"][0] - 0.5) < 0.15  # a new group: nothing to go on (chance, ± noise)
    config = require_config(open_storage(storage_url, create=False), "grouped")
    assert (config.groups, config.n_groups, config.cv_repeats) == ("patient", 100, 1)


def test_forward_folds_agree_with_the_future_and_shuffled_folds_do_not(tmp_path, storage_url):
    path = tmp_path / "series.csv"
    drifting_frame().to_csv(path, index=False)
    forward = tuner.tune(str(path), target="y", models="random_forest", trials=1, cv=4, test_size=0.25,
                         storage=storage_url, run="forward", time_column="day")
    config = require_config(open_storage(storage_url, create=False), "forward")
    train, test = load_split_for_run(config)  # the latest quarter held out; tuned on the past
    past = pd.DataFrame(train.X).assign(y=train.y)
    shuffled = tuner.tune(past, target="y", models="random_forest", trials=1, cv=4, storage=storage_url, run="shuffled")
    future = forward["test_r2"][0]
    assert shuffled["r2_mean"][0] > 0.9  # neighbours in time interpolate
    assert future < 0.5  # the future does not follow
    assert abs(forward["r2_mean"][0] - future) < abs(shuffled["r2_mean"][0] - future)


# -- the run keeps them ------------------------------------------------------------------------
def test_cli_groups_are_kept_by_the_run_resume_export_and_predict(tmp_path, storage_url):
    path = tmp_path / "visits.csv"
    grouped_frame(n_groups=20, per_group=6).to_csv(path, index=False)
    base = ["run", str(path), "--target", "y", "--models", "logistic_regression", "--trials", "1",
            "--storage", storage_url, "--run", "v"]
    res = runner.invoke(app, base + ["--groups", "patient", "--test-size", "0.25"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "20 groups in 'patient'" in text and "group CV over 15 groups of 'patient'" in text
    assert "whole groups of 'patient'" in text

    res = runner.invoke(app, base)  # the group column must be named to continue
    assert res.exit_code == 2 and "pass --groups patient to continue the run" in res.output
    res = runner.invoke(app, base + ["--groups", "a"])
    assert res.exit_code == 2 and "--groups 'patient'" in res.output
    assert runner.invoke(app, base + ["--groups", "patient"]).exit_code == 0

    out = tmp_path / "model"
    res = runner.invoke(app, ["export", "--storage", storage_url, "--run", "v", "--out", str(out)])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "model_card.json").read_text())
    assert card["data"]["groups"] == "patient" and card["data"]["n_groups"] == 15
    assert card["data"]["rows_refit"] == len(load_split_for_run(require_config(open_storage(storage_url, create=False), "v"))[0].y)
    rows = grouped_frame(n_groups=20, per_group=6).drop(columns=["patient", "y"]).head(5)
    src = tmp_path / "new.csv"
    rows.to_csv(src, index=False)
    res = runner.invoke(app, ["predict", str(out), str(src), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output  # no group column needed
    assert len(pd.read_csv(tmp_path / "p.csv")) == 5


def test_cli_time_column_banner_and_errors(tmp_path, storage_url):
    path = tmp_path / "series.csv"
    drifting_frame(n=120).to_csv(path, index=False)
    base = ["run", str(path), "--target", "y", "--models", "lasso", "--trials", "1", "--storage", storage_url]
    res = runner.invoke(app, base + ["--time-column", "day", "--gap", "2", "--cv", "3"])
    assert res.exit_code == 0, res.output
    assert "3 forward folds by 'day' (expanding window, gap 2 rows)" in " ".join(res.stdout.split())
    for extra, message in ((["--time-column", "day", "--cv-repeats", "2"], "has no meaning with --time-column"),
                           (["--time-column", "y"], "is the target column"),
                           (["--gap", "3"], "needs --time-column")):
        res = runner.invoke(app, base + ["--run", "other"] + extra)
        assert res.exit_code == 2 and message in res.output, res.output


def test_a_worker_and_the_report_use_the_runs_groups_and_weights(tmp_path, storage_url):
    """A run recorded with --create-only and worked on by `tuner worker` scores the same default
    trial as the run made directly: same group folds, same weights; the report says which."""
    df = grouped_frame(n_groups=30, per_group=5)
    df["w"] = np.random.default_rng(0).integers(0, 4, size=len(df)).astype(float)
    path = tmp_path / "visits.csv"
    df.to_csv(path, index=False)
    common = [str(path), "--target", "y", "--models", "logistic_regression", "--trials", "1", "--cv", "3",
              "--groups", "patient", "--weights", "w", "--storage", storage_url]
    assert runner.invoke(app, ["run", *common, "--run", "direct"]).exit_code == 0
    assert runner.invoke(app, ["run", *common, "--run", "queued", "--create-only"]).exit_code == 0
    res = runner.invoke(app, ["worker", "--storage", storage_url, "--run", "queued", "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    boards = {run: json.loads(runner.invoke(app, ["leaderboard", "--storage", storage_url, "--run", run,
                                                  "--format", "json"]).stdout) for run in ("direct", "queued")}
    assert boards["queued"][0]["fold_scores"]["roc_auc"] == pytest.approx(
        boards["direct"][0]["fold_scores"]["roc_auc"])
    report = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--storage", storage_url, "--run", "queued", "--out", str(report)])
    assert res.exit_code == 0, res.output
    page = report.read_text()
    assert "3-fold group CV over 30 groups of &#x27;patient&#x27;" in page or "group CV over 30 groups" in page
    assert "in every fit and metric" in page
