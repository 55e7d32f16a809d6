"""`tuner run` says what it will do (kept / owed / added trials, clock, storage, run) and, on a
terminal or when asked, prints the next commands, which work as printed (#18)."""

from __future__ import annotations

import json
import shlex

import pandas as pd
from typer.testing import CliRunner

from tuner.cli import app
from tuner.execution.budget import TARGET_ATTR
from tuner.storage.runs import load_family_study, open_storage

runner = CliRunner()
RUN = ["run", "builtin:diabetes", "--target", "target", "--models", "lasso", "--cv", "2"]


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def test_a_resumed_run_states_the_owed_trials(storage_url):
    first = invoke(*RUN, "--trials", 2, "--storage", storage_url)
    assert first.exit_code == 0, first.output
    assert "Run 'diabetes' in " + storage_url + " (new)" in first.stdout
    assert "This invocation, per family: 0 kept, 0 owed + 2 added now = 2 trials to run" in first.stdout
    assert "Clock: none" in first.stdout and "Using 1 core" in first.stdout
    # As if `--trials 6` had been killed after those 2 trials: 4 are still owed.
    study = load_family_study(open_storage(storage_url, create=False), "diabetes", "lasso")
    study.set_user_attr(TARGET_ATTR, 6)
    again = invoke(*RUN, "--trials", 1, "--storage", storage_url, "--create-only")
    assert again.exit_code == 0, again.output
    assert "continuing run 'diabetes': 2 trials kept, 4 owed" in again.stdout
    assert "2 kept, 4 owed + 1 added now = 5 trials to run" in again.stdout
    assert "--timeout SECONDS bounds an invocation" in again.stdout
    clocked = invoke(*RUN, "--timeout", 30, "--storage", storage_url, "--create-only")
    assert "the 5 owed are dropped" in clocked.stdout and "Clock: 30s" in clocked.stdout


def test_next_steps_work_as_printed(storage_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    quiet = invoke(*RUN, "--trials", 1, "--storage", storage_url)
    assert quiet.exit_code == 0 and "Next steps" not in quiet.stdout  # a pipe stays clean
    result = invoke(*RUN, "--trials", 1, "--storage", storage_url, env={"TUNER_NEXT_STEPS": "1"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    steps = lines[lines.index("Next steps:") + 1:]
    commands = [line.split(":", 1)[1].strip() for line in steps]
    assert [c.split()[1] for c in commands] == ["export", "report", "predict", "leaderboard"]
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "tuner"
        done = invoke(*argv[1:])
        assert done.exit_code == 0, (command, done.output)
        if argv[1] == "leaderboard":
            assert json.loads(done.stdout)[0]["model"] == "lasso"
    assert (tmp_path / "diabetes_model" / "model_card.json").exists()
    assert (tmp_path / "diabetes_report.html").stat().st_size > 1000
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 442
    flag = invoke(*RUN, "--trials", 1, "--storage", storage_url, "--next-steps")
    assert "Next steps:" in flag.stdout
