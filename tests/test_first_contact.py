"""What a new user sees (#18): tables that fit the terminal, the run choice said, bare `tuner`."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.results import leaderboard as lb
from tuner.results.table import Column, fit
from tuner.storage.runs import choose_run, load_config, open_storage

runner = CliRunner()
WIDTHS = (80, 100, 120, 200, 300)


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory):
    """Two small runs in one storage: binary with a held-out test set, and regression."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fc') / 'tuner.db'}"
    tuner.tune("builtin:breast_cancer", target="target", models="logistic_regression,random_forest", trials=2, cv=2,
               storage=url, n_jobs=1, test_size=0.2)
    tuner.tune("builtin:diabetes", target="target", models="lasso,random_forest", trials=2, cv=2, storage=url, n_jobs=1)
    return url


def render(fitted, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, highlight=False, color_system=None)
    console.print(fitted.renderable)
    return console.file.getvalue()


def table_lines(text: str) -> list[str]:
    """The header and body lines of the table (between the title and the notes)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("rank"))
    rule = start + 1
    end = next(i for i in range(rule + 1, len(lines)) if not re.match(r"^\s+(\d+|—)\s", lines[i]))
    return lines[start:end]


def rows_of(store_url, run, rename=None):
    store = open_storage(store_url, create=False)
    config = load_config(store, run)
    rows = lb.build(store, config)
    if rename:  # the longest family name there is: the kept columns must still fit 80 columns
        rows[0]["model"] = rename
    return rows, config


@pytest.mark.parametrize("run", ["breast_cancer", "diabetes"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_leaderboard_fits_each_width_and_keeps_its_columns_whole(store_url, run, width):
    rows, config = rows_of(store_url, run, rename="hist_gradient_boosting")
    fitted = lb.fitted_table(rows, config, width=width)
    text = render(fitted, width)
    assert "…" not in text
    assert all(len(line) <= width for line in text.splitlines()), text
    table = table_lines(text)
    header = table[0]
    for kept in ("rank", "model", f"{config.metric} (CV)", "vs leader", "train−CV", "trials"):
        assert kept in header, (kept, text)
    for r, line in zip(rows, table[2:]):
        m = r["metrics"][config.metric]
        assert f"{m['mean']:.4f} ± {m['std']:.4f}" in line  # the headline, whole
        assert r["model"] in line and stats_verdict(r) in line
        assert lb.trial_counts(r) in line
    shown = [c.header for c in lb.terminal_columns(rows, config) if c.header not in fitted.hidden]
    if fitted.hidden:
        assert f"hidden at {width} columns: {', '.join(fitted.hidden)}" in " ".join(text.split())
        assert "--wide" in text
    if width == 200:
        assert len(shown) >= 8  # every metric of the task, or nearly
    if width >= 100 and run == "breast_cancer":
        assert f"{config.metric} (test)" in header  # the --test-size column comes first of the rest
    assert len(shown) >= 6


def stats_verdict(row):
    from tuner.evaluation.stats import verdict

    return verdict(row)


def test_more_width_shows_more_columns_and_means_only_when_short(store_url):
    rows, config = rows_of(store_url, "breast_cancer")
    hidden = [len(lb.fitted_table(rows, config, width=w).hidden) for w in WIDTHS]
    assert hidden == sorted(hidden, reverse=True) and hidden[0] > 0 and hidden[-1] == 0
    narrow = render(lb.fitted_table(rows, config, width=120), 120)
    assert "other metrics show the mean only" in narrow
    full = lb.fitted_table(rows, config, width=None)
    assert full.hidden == [] and not full.shortened
    text = render(full, full.width)
    for name in ("accuracy", "precision", "recall", "f1", "log_loss", "fit s/fold", "roc_auc (test)"):
        assert name in text
    assert "hidden" not in text


def test_pipes_get_one_full_stable_layout(store_url):
    first = invoke("leaderboard", "--storage", store_url, "--run", "breast_cancer")
    again = invoke("leaderboard", "--storage", store_url, "--run", "breast_cancer", "--wide")
    assert first.exit_code == 0 and again.exit_code == 0
    assert first.stdout == again.stdout
    assert "hidden at" not in first.stdout and "…" not in first.stdout
    for name in ("accuracy", "precision", "recall", "f1 ", "log_loss", "roc_auc (test)"):
        assert name in first.stdout
    header = next(line for line in first.stdout.splitlines() if line.startswith("rank"))
    assert "trials c/p/f" in header


def test_tuner_runs_fits_too(store_url):
    store = open_storage(store_url, create=False)
    assert [c.run for c in tuner.api.list_runs(store)] == ["breast_cancer", "diabetes"]
    result = invoke("runs", "--storage", store_url)
    assert result.exit_code == 0 and "hidden" not in result.stdout
    assert "builtin:diabetes" in result.stdout and "logistic_regression,random_forest" in result.stdout


def test_fit_keeps_kept_columns_and_hides_the_rest_in_order():
    cols = [Column("run", ["a" * 30], kept=True, justify="left"), Column("best", ["b" * 20], kept=True),
            Column("families", ["c" * 25]), Column("data", ["d" * 40])]
    fitted = fit(cols, 80, wide_hint="`tuner runs --wide`")
    assert fitted.hidden == ["data"]
    text = render(fitted, 80)
    assert "a" * 30 in text and "c" * 25 in text and "d" * 40 not in text
    assert "hidden at 80 columns: data" in text and "`tuner runs --wide`" in text
    assert fit(cols, None).hidden == []


# -- the run choice -------------------------------------------------------------------
def test_every_command_chooses_the_same_run_and_says_which(store_url, tmp_path):
    store = open_storage(store_url, create=False)
    config, why = choose_run(store, None)
    assert config.run == "diabetes" and "most recent of 2 runs" in why and "tuner runs" in why
    config, why = choose_run(store, None, data="/somewhere/breast_cancer.csv")
    assert config.run == "breast_cancer" and "named after" in why
    assert choose_run(store, "breast_cancer") == (load_config(store, "breast_cancer"), "")

    board = invoke("leaderboard", "--storage", store_url, "--format", "json")
    assert board.exit_code == 0
    assert json.loads(board.stdout)[0]["model"] in ("lasso", "random_forest", "ensemble")  # stdout stays pure JSON
    assert "run 'diabetes' (the most recent of 2 runs; `tuner runs` lists them" in board.stderr
    report = invoke("report", "--storage", store_url, "--out", tmp_path / "r.html")
    assert report.exit_code == 0 and "run 'diabetes' (the most recent of 2 runs" in report.stderr


def test_the_only_run_is_named_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    tuner.tune("builtin:diabetes", target="target", models="lasso", trials=1, cv=2, storage=url)
    result = invoke("leaderboard", "--storage", url)
    assert result.exit_code == 0 and "run 'diabetes' (the only run in the storage" in result.stderr
    bad = invoke("leaderboard", "--storage", url, "--run", "nope")
    assert bad.exit_code == 2 and bad.output.strip().startswith("Error: no run named 'nope'")
    assert len(bad.output.strip().splitlines()) == 1


# -- bare `tuner` and tune() ------------------------------------------------------------
def test_bare_tuner_prints_the_short_help_with_a_quick_start():
    result = invoke()
    assert result.exit_code == 0
    assert "Quick start" in result.stdout and "tuner run builtin:breast_cancer --target target" in result.stdout
    assert len(result.stdout.splitlines()) < 15  # short: the full listing is `tuner --help`
    assert "Commands:" in result.stdout


def test_tune_is_quiet_by_default_and_progress_shows_on_request(tmp_path, capfd, caplog):
    import logging

    import optuna

    url = f"sqlite:///{tmp_path / 'q.db'}"
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level(logging.INFO):
            quiet = tuner.tune("builtin:diabetes", target="target", models="lasso", trials=1, cv=2, storage=url,
                               run="quiet")
    finally:
        optuna.logging.disable_propagation()
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert not [r for r in caplog.records if r.name.startswith("optuna") and r.levelno < logging.WARNING]
    shown = tuner.tune("builtin:diabetes", target="target", models="lasso", trials=1, cv=2, storage=url,
                       run="shown", progress=True)
    captured = capfd.readouterr()
    assert captured.out == "" and "lasso" in captured.err and "best rmse" in captured.err
    assert list(shown.columns) == list(quiet.columns) and len(shown) == len(quiet) == 1


def test_the_run_choice_is_said_before_the_table_it_describes(store_url):
    table = invoke("leaderboard", "--storage", store_url)
    assert table.exit_code == 0
    said = table.output.index("(the most recent of 2 runs")
    assert said < table.output.index("ranked by cross-validated"), table.output
    assert table.output.count("(the most recent of 2 runs") == 1


def test_bare_tuner_lists_every_command():
    import typer.main

    from tuner.cli.app import SHORT_HELP

    listed = SHORT_HELP.split("Commands: ", 1)[1].split("\n", 1)[0].split(", ")
    assert sorted(listed) == sorted(typer.main.get_command(app).commands)
