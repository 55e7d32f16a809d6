"""The words of the leaderboard and the report (issue #35): the train−CV note in the metric's direction,
the line explaining 'tied' / 'worse', the ensemble's export hint only when it is not already the winner,
the API frame's whole-number columns, and the report's winner, importance caveat and page width."""

from __future__ import annotations

import copy

import pytest
from rich.console import Console

from tuner.config import RunConfig
from tuner.evaluation import stats
from tuner.evaluation.metrics import metrics_for
from tuner.models.ensemble import NAME as ENSEMBLE
from tuner.results import leaderboard as lb

LEADER = [0.90, 0.91, 0.92, 0.93, 0.94]


def _config(task: str = "binary", metric: str = "accuracy") -> RunConfig:
    return RunConfig(run="r", target="y", task=task, metric=metric,
                     direction="minimize" if metric in ("rmse", "mse", "mae") else "maximize",
                     families=["logistic_regression", "random_forest", "svm"], cv=5, classes=[0, 1])


def _row(config: RunConfig, model: str, folds: list[float], *, gap: float | None = None,
         members: list[dict] | None = None) -> dict:
    mean = sum(folds) / len(folds)
    names = [m.name for m in metrics_for(config.task, config.metric)]
    row = {"rank": None, "model": model, "status": "ok", "trials": {"complete": 3, "pruned": 0, "failed": 0},
           "metrics": {n: {"mean": mean, "std": 0.01} for n in names}, "fold_scores": {config.metric: folds},
           "fit_time_s": 0.1, "predict_time_ms_per_1k": 1.0, "params": {}, "trial_number": 2}
    if gap is not None:
        row["train_scores"] = {n: mean + gap for n in names}
        row["overfitting"] = {n: gap for n in names}
    if members is not None:
        row.update(members=members, trial_number=None, trials={"complete": 0, "pruned": 0, "failed": 0})
    return row


def _rank(rows: list[dict], config: RunConfig) -> list[dict]:
    """Rank in the given order (best first) and compare with the leader, as ``lb.build`` does."""
    for i, r in enumerate(rows, 1):
        r["rank"] = i if r["status"] == "ok" else None
    stats.compare_with_leader(rows, config.metric, config.cv)
    return rows


def _terminal_text(rows: list[dict], config: RunConfig) -> str:
    import io

    console = Console(width=250, record=True, file=io.StringIO())
    console.print(lb.fitted_table(rows, config, width=None).renderable, crop=False)
    return " ".join(console.export_text().split())


# -- train−CV ---------------------------------------------------------------------------------
def test_train_cv_note_of_an_error_metric_says_the_gap_is_negative():
    config = _config("regression", "rmse")
    rows = _rank([_row(config, "lasso", [10.0, 11, 12, 13, 14], gap=-9695.6),
                  _row(config, "random_forest", [12.0, 13, 14, 15, 16], gap=-3.0)], config)
    note = next(n for n in lb.notes(rows, config) if n.startswith("train−CV"))
    assert "rmse is an error (lower is better)" in note and "large negative gap" in note
    assert "score far better" not in note and "positive gap" not in note
    assert note in _terminal_text(rows, config)


def test_train_cv_note_of_a_score_says_the_gap_is_positive():
    config = _config("binary", "accuracy")
    rows = _rank([_row(config, "logistic_regression", LEADER, gap=0.08),
                  _row(config, "svm", [v - 0.05 for v in LEADER], gap=0.01)], config)
    note = next(n for n in lb.notes(rows, config) if n.startswith("train−CV"))
    assert "large positive gap" in note and "training score far above the CV score" in note
    assert "is an error" not in note and "negative" not in note


def test_reranked_by_an_error_metric_the_note_follows_that_metric():
    config = _config("regression", "r2")
    config.direction = "maximize"
    rows = _rank([_row(config, "lasso", [0.5, 0.6, 0.7, 0.6, 0.5], gap=0.1)], config)
    assert "large positive gap" in next(n for n in lb.notes(rows, config, "r2") if n.startswith("train−CV"))
    assert "mae is an error" in next(n for n in lb.notes(rows, config, "mae") if n.startswith("train−CV"))


# -- tied / worse -------------------------------------------------------------------------------
def test_one_line_explains_worse_above_tied():
    config = _config()
    steady = [v - 0.010 + 0.0005 * (i % 2) for i, v in enumerate(LEADER)]  # a little behind on every fold
    noisy = [v + d for v, d in zip(LEADER, (0.03, -0.10, 0.02, -0.09, 0.01))]  # further behind, noisily
    rows = _rank([_row(config, "logistic_regression", LEADER), _row(config, "random_forest", steady),
                  _row(config, "svm", noisy)], config)
    assert stats.verdict(rows[1]).startswith("worse") and stats.verdict(rows[2]).startswith("tied")
    line = [n for n in lb.notes(rows, config) if n.startswith("tied / worse")]
    assert len(line) == 1
    assert "'worse' = behind the leader with p < 0.05" in line[0] and "'tied' = p ≥ 0.05" in line[0]
    assert "a 'worse' row can rank above a 'tied' one" in line[0]
    assert "tied / worse" in _terminal_text(rows, config)
    markdown = lb.to_markdown(rows, config)
    assert "- tied / worse:" in markdown


def test_a_single_family_has_no_tied_worse_line():
    config = _config()
    rows = _rank([_row(config, "logistic_regression", LEADER)], config)
    assert not [n for n in lb.notes(rows, config) if n.startswith("tied / worse")]


# -- the ensemble's export hint ------------------------------------------------------------------------
MEMBERS = [{"model": "logistic_regression", "trial_number": 3, "weight": 0.6},
           {"model": "random_forest", "trial_number": 5, "weight": 0.4}]


def test_no_export_hint_when_the_ensemble_is_the_winner():
    config = _config()
    rows = _rank([_row(config, ENSEMBLE, [v + 0.01 for v in LEADER], members=MEMBERS),
                  _row(config, "logistic_regression", LEADER)], config)
    note = next(n for n in lb.notes(rows, config) if n.startswith("ensemble:"))
    assert "logistic_regression #3 (0.60), random_forest #5 (0.40)" in note
    assert "tuner export --model ensemble" not in note
    assert "tuner export --model ensemble" not in _terminal_text(rows, config)


def test_the_export_hint_stays_when_the_ensemble_is_not_first():
    config = _config()
    rows = _rank([_row(config, "logistic_regression", LEADER),
                  _row(config, ENSEMBLE, [v - 0.01 for v in LEADER], members=MEMBERS)], config)
    note = next(n for n in lb.notes(rows, config) if n.startswith("ensemble:"))
    assert "Export it with `tuner export --model ensemble`." in note


# -- the frame -------------------------------------------------------------------------------------------
def test_the_frame_ranks_are_nullable_integers():
    config = _config()
    unranked = _row(config, "svm", LEADER)
    unranked.update(status="no completed trial yet", trial_number=None)
    rows = _rank([_row(config, "logistic_regression", LEADER),
                  _row(config, ENSEMBLE, [v - 0.01 for v in LEADER], members=MEMBERS)], config) + [unranked]
    unranked["rank"] = None
    frame = lb.to_frame(rows, config)
    assert str(frame["rank"].dtype) == "Int64" and str(frame["best_trial"].dtype) == "Int64"
    assert frame["rank"].tolist()[:2] == [1, 2] and frame["rank"].isna().tolist() == [False, False, True]
    assert frame["best_trial"].isna().tolist() == [False, True, True]
    assert frame.to_csv(index=False).splitlines()[1].startswith("1,logistic_regression,")  # not 1.0


# -- the report --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_with_ensemble(tmp_path_factory):
    """A two-family run whose leaderboard holds an ensemble row; (storage, config, data)."""
    pytest.importorskip("plotly")
    import tuner
    from export_helpers import binary_frame
    from tuner.storage.runs import open_storage, require_config

    url = f"sqlite:///{tmp_path_factory.mktemp('text') / 'tuner.db'}"
    data = binary_frame(n=160)
    tuner.tune(data, target="churned", models=["logistic_regression", "random_forest"], trials=3, cv=3,
               storage=url, run="r")
    store = open_storage(url, create=False)
    config = require_config(store, "r")
    assert any(r["model"] == ENSEMBLE for r in lb.build(store, config)), "the run has no ensemble row"
    return store, config, data


def _report(store, config, data, monkeypatch, *, winner: str) -> tuple[str, list[dict]]:
    """The report with ``winner``'s row ranked first (whatever this small run found); (html, rows)."""
    from tuner.results import html_report

    rows = lb.build(store, config)
    rows = _rank([r for r in rows if r["model"] == winner] + [r for r in rows if r["model"] != winner], config)
    monkeypatch.setattr(lb, "build", lambda *args, **kwargs: copy.deepcopy(rows))
    return html_report.build_report(store, config, data=data), rows


def _winner_line(text: str) -> str:
    return text.split("<h2>The winner</h2>", 1)[1].split("</p>", 1)[0]


def test_a_report_whose_winner_is_the_ensemble_names_its_members(run_with_ensemble, monkeypatch):
    store, config, data = run_with_ensemble
    text, rows = _report(store, config, data, monkeypatch, winner=ENSEMBLE)
    assert rows[0]["model"] == ENSEMBLE and len(rows[0]["members"]) >= 2
    assert "trial None" not in text
    winner = _winner_line(text)
    assert "ensemble: the weighted average of " in winner
    for m in rows[0]["members"]:
        assert f"{m['model']} #{m['trial_number']} (" in winner
    assert "tuner export --model ensemble" not in text  # it is the winner: `tuner export` exports it


def test_a_report_whose_winner_is_a_family_names_its_trial(run_with_ensemble, monkeypatch):
    store, config, data = run_with_ensemble
    text, rows = _report(store, config, data, monkeypatch, winner="random_forest")
    assert f"random_forest (trial {rows[0]['trial_number']}), on the " in _winner_line(text)
    assert "Export it with `tuner export --model ensemble`." in text  # the ensemble is not the winner


def test_importances_of_few_trials_carry_a_caveat(run_with_ensemble, monkeypatch):
    from tuner.results import html_report

    store, config, data = run_with_ensemble
    text = html_report.build_report(store, config)  # 3 complete trials per family
    assert html_report.IMPORTANCE_MIN_TRIALS == 10
    assert "logistic_regression: importances from only 3 completed trials (fewer than 10)" in text
    assert html_report.TITLES["importance"].format(family="logistic_regression") in text  # still drawn
    monkeypatch.setattr(html_report, "IMPORTANCE_MIN_TRIALS", 3)
    assert "importances from only" not in html_report.build_report(store, config)


def test_the_report_uses_the_page_width_and_keeps_scores_on_one_line(run_with_ensemble):
    from tuner.results import html_report

    store, config, _ = run_with_ensemble
    text = html_report.build_report(store, config)
    css = text.split("<style>", 1)[1].split("</style>", 1)[0]
    body = next(rule for rule in css.split("}") if rule.strip().startswith("body{"))
    assert "max-width" not in body and "auto" not in body  # no centred column of fixed width
    cells = next(rule for rule in css.split("}") if rule.strip().startswith("table.leaderboard td,"))
    assert "white-space:nowrap" in cells  # `0.7671 ± 0.0634` on one line
    assert "<div class='wide'><table class='leaderboard'>" in text  # a wide table scrolls, the page does not
