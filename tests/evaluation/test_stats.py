"""Paired comparison with the leader: the corrected resampled t-test and the tied verdict."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
from typer.testing import CliRunner

import search_spaces
import tuner
from tuner.cli import app
from tuner.evaluation.stats import compare_with_leader, corrected_resampled_ttest, fold_size_ratio
from tuner.results import leaderboard as lb
from tuner.storage.runs import open_storage, require_config


def _t4_two_sided_p(t: float) -> float:
    """Two-sided p of Student's t with 4 degrees of freedom, from its closed-form CDF."""
    u = 1 + t * t / 4
    cdf = 0.5 + 3 / 8 * (t / math.sqrt(u)) * (1 - t * t / (12 * u))
    return 2 * (1 - cdf)


def test_corrected_ttest_matches_a_hand_computed_example():
    a = [0.80, 0.82, 0.78, 0.85, 0.81]
    b = [0.78, 0.80, 0.79, 0.80, 0.78]
    # d = [0.02, 0.02, -0.01, 0.05, 0.03]; mean 0.022; sample variance 0.00188 / 4 = 4.7e-4
    # 5-fold CV: n_test / n_train = 1/4; corrected variance (1/5 + 1/4) * 4.7e-4 = 2.115e-4
    t = 0.022 / math.sqrt(2.115e-4)
    assert t == pytest.approx(1.512751, abs=1e-6)
    res = corrected_resampled_ttest(a, b, fold_size_ratio(5))
    assert res.n_pairs == 5 and res.dof == 4
    assert res.mean_diff == pytest.approx(0.022)
    assert res.t == pytest.approx(t, rel=1e-9)
    assert res.p_value == pytest.approx(_t4_two_sided_p(t), rel=1e-9)
    assert res.p_value == pytest.approx(0.20489, abs=1e-5)
    # the sign of the difference does not change a two-sided p
    assert corrected_resampled_ttest(b, a, 0.25).p_value == pytest.approx(res.p_value)


def test_correction_is_larger_than_the_naive_paired_ttest():
    from scipy import stats

    a = [0.91, 0.88, 0.93, 0.90, 0.87, 0.92]
    b = [0.89, 0.88, 0.90, 0.86, 0.87, 0.90]
    naive = stats.ttest_rel(a, b)
    res = corrected_resampled_ttest(a, b, fold_size_ratio(3))  # 3-fold x 2 repeats: J = 6, ratio 1/2
    assert fold_size_ratio(3) == 0.5
    assert res.t == pytest.approx(naive.statistic * math.sqrt((1 / 6) / (1 / 6 + 0.5)))
    assert res.p_value > naive.pvalue


def test_degenerate_and_missing_folds():
    same = corrected_resampled_ttest([0.7, 0.8, 0.9], [0.7, 0.8, 0.9], 0.5)
    assert same.p_value == 1.0 and same.t == 0.0
    offset = corrected_resampled_ttest([0.7, 0.8, 0.9], [0.6, 0.7, 0.8], 0.5)  # constant difference
    assert offset.p_value == 0.0
    partial = corrected_resampled_ttest([0.7, None, 0.9, 0.8], [0.6, 0.5, float("nan"), 0.75], 0.5)
    assert partial.n_pairs == 2
    with pytest.raises(ValueError):
        corrected_resampled_ttest([0.7, 0.8], [0.7], 0.5)


def test_compare_with_leader_marks_rows():
    rows = [
        {"rank": 1, "status": "ok", "fold_scores": {"m": [0.9, 0.92, 0.91, 0.93, 0.9]}},
        {"rank": 2, "status": "ok", "fold_scores": {"m": [0.9, 0.91, 0.92, 0.92, 0.9]}},
        {"rank": 3, "status": "ok", "fold_scores": {"m": [0.5, 0.52, 0.49, 0.5, 0.51]}},
        {"rank": None, "status": "no completed trial yet"},
    ]
    compare_with_leader(rows, "m", cv=5)
    assert rows[0]["p_value_vs_leader"] is None and rows[0]["tied_with_leader"] is True
    assert rows[1]["tied_with_leader"] is True and rows[1]["p_value_vs_leader"] > 0.05
    assert rows[2]["tied_with_leader"] is False and rows[2]["p_value_vs_leader"] < 0.001
    assert rows[3]["p_value_vs_leader"] is None and rows[3]["tied_with_leader"] is None


# -- on real runs: a family registered twice is tied, a clearly worse one is not ---------------
@pytest.fixture
def test_families(tmp_path, monkeypatch):
    """Two test-only families: an exact copy of logistic_regression and a constant predictor."""
    (tmp_path / "twin_family.py").write_text(textwrap.dedent("""
        import dataclasses
        from search_spaces.logistic_regression import SPACE as _LR
        SPACE = dataclasses.replace(_LR, name="logistic_regression_twin")
    """))
    (tmp_path / "prior_family.py").write_text(textwrap.dedent("""
        from sklearn.dummy import DummyClassifier
        from search_spaces._base import Preprocessing, SearchSpace
        SPACE = SearchSpace(
            name="prior", tasks=("binary", "multiclass"), suggest=lambda trial, ctx: {},
            build=lambda params, ctx: DummyClassifier(strategy="prior"), defaults=lambda ctx: {},
            describe={}, preprocessing=Preprocessing(scale=False, encoding="ordinal", poly=False, select=False),
        )
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(search_spaces.FAMILIES, "logistic_regression_twin", "twin_family")
    monkeypatch.setitem(search_spaces.FAMILIES, "prior", "prior_family")


def test_identical_families_are_tied_and_a_clearly_worse_one_is_not(test_families, mixed_frame, storage_url):
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression", "logistic_regression_twin", "prior"],
               trials=1, cv=5, storage=storage_url, run="r")
    store = open_storage(storage_url, create=False)
    rows = {r["model"]: r for r in lb.build(store, require_config(store, "r"))}
    lr, twin, prior = rows["logistic_regression"], rows["logistic_regression_twin"], rows["prior"]
    assert lr["fold_scores"]["roc_auc"] == twin["fold_scores"]["roc_auc"]  # the same folds, the same model
    assert {lr["rank"], twin["rank"]} == {1, 2} and prior["rank"] == 3
    follower = twin if twin["rank"] == 2 else lr
    assert follower["tied_with_leader"] is True and follower["p_value_vs_leader"] == 1.0
    assert prior["metrics"]["roc_auc"]["mean"] == pytest.approx(0.5)
    assert prior["tied_with_leader"] is False and prior["p_value_vs_leader"] < 0.01

    # JSON rows carry the two keys; the terminal table marks the tied group
    runner = CliRunner()
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--run", "r", "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["rank"] for r in data] == [1, 2, 3]
    assert data[0]["p_value_vs_leader"] is None and data[0]["tied_with_leader"] is True
    assert data[1]["tied_with_leader"] is True and data[2]["tied_with_leader"] is False
    res = runner.invoke(app, ["leaderboard", "--storage", storage_url, "--run", "r"])
    assert res.exit_code == 0, res.output
    assert "tied p=1.000" in res.stdout and "worse p=" in res.stdout and "leader" in res.stdout
    assert "± " in res.stdout and "tied group: " in res.stdout


def test_cv_repeats_gives_k_times_r_paired_folds(mixed_frame, storage_url):
    board = tuner.tune(mixed_frame, target="churned", models=["logistic_regression", "random_forest"],
                       trials=1, cv=3, cv_repeats=2, storage=storage_url, run="r")
    store = open_storage(storage_url, create=False)
    config = require_config(store, "r")
    assert config.cv_repeats == 2
    rows = lb.build(store, config)
    assert all(len(r["fold_scores"]["roc_auc"]) == 6 for r in rows)
    expected = corrected_resampled_ttest(rows[0]["fold_scores"]["roc_auc"], rows[1]["fold_scores"]["roc_auc"], 0.5)
    assert rows[1]["p_value_vs_leader"] == pytest.approx(expected.p_value)
    assert expected.dof == 5
    assert {"p_value_vs_leader", "tied_with_leader"} <= set(board.columns)


def test_repeated_cv_scores_the_training_rows_on_the_first_repeat_only(mixed_frame, storage_url, monkeypatch):
    """The overfitting gap needs the training rows' score once per row split, not per repeat:
    each later repeat skips that predict (about a tenth of a small-data fold)."""
    import tuner.search.trial as driver  # where a trial runs its folds

    real, asked = driver.evaluate_fold, []

    def recording(*args, score_train=True, **kwargs):
        asked.append((args[4], score_train))  # (fold index, score the training rows?)
        return real(*args, score_train=score_train, **kwargs)

    monkeypatch.setattr(driver, "evaluate_fold", recording)
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=1, cv=3, cv_repeats=2,
               storage=storage_url, run="r")
    assert asked == [(0, True), (1, True), (2, True), (3, False), (4, False), (5, False)]
    store = open_storage(storage_url, create=False)
    row = lb.build(store, require_config(store, "r"))[0]
    assert 0.5 < row["train_scores"]["roc_auc"] <= 1.0


def test_cli_cv_repeats_is_stored_and_checked(tmp_path, mixed_frame, storage_url):
    csv = tmp_path / "churn.csv"
    mixed_frame.to_csv(csv, index=False)
    runner = CliRunner()
    args = ["run", str(csv), "--target", "churned", "--models", "logistic_regression", "--trials", "1",
            "--cv", "3", "--storage", storage_url, "--run", "r"]
    res = runner.invoke(app, args + ["--cv-repeats", "2"])
    assert res.exit_code == 0, res.output
    assert "3-fold CV × 2 repeats" in res.stdout and "over 6 folds" in res.stdout
    res = runner.invoke(app, args + ["--cv-repeats", "3"])
    assert res.exit_code == 2 and "--cv-repeats" in res.output
    res = runner.invoke(app, args + ["--cv-repeats", "0"])
    assert res.exit_code == 2 and "at least 1" in res.output


@pytest.mark.parametrize("rows, clocked, expected", [
    (160, True, 3), (1_000, True, 3), (1_001, True, 2), (2_500, True, 2), (2_501, True, 1),
    (160, False, 1), (100_000, True, 1),
])
def test_default_cv_repeats_only_under_a_clock_on_small_data(rows, clocked, expected):
    from tuner.search.run_setup import default_cv_repeats

    assert default_cv_repeats(rows, clocked) == expected


def test_a_clocked_run_on_small_data_repeats_the_split_unless_cv_is_chosen(tmp_path, mixed_frame):
    runs = {}
    for name, options in {"clock": {"timeout": 3}, "count": {"trials": 1}, "cv": {"timeout": 3, "cv": 4},
                          "given": {"timeout": 3, "cv_repeats": 1}}.items():
        url = f"sqlite:///{tmp_path / name}.db"
        tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], storage=url, run="r", **options)
        runs[name] = require_config(open_storage(url, create=False), "r")
    assert (runs["clock"].cv, runs["clock"].cv_repeats) == (5, 3)  # 160 rows
    assert runs["count"].cv_repeats == 1 and runs["given"].cv_repeats == 1
    assert (runs["cv"].cv, runs["cv"].cv_repeats) == (4, 1)
    rows = lb.build(open_storage(f"sqlite:///{tmp_path / 'clock'}.db", create=False), runs["clock"])
    assert len(rows[0]["fold_scores"]["roc_auc"]) == 15
