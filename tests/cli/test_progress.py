"""The live progress (tuner.cli.progress): 'left' from the clock for every family at every refresh,
complete trials never past the total (pruned and failed trials do not count toward --trials), and
the estimate line under trial counts once the first trials have run."""

from __future__ import annotations

import io

import optuna
from rich.console import Console

import tuner
from tuner.cli import progress as progress_module
from tuner.cli.progress import RunProgress, estimate_s, time_left


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=200, color_system=None), buffer


def _rendered(shown: RunProgress) -> str:
    console, buffer = _console()
    for renderable in shown._progress.get_renderables():
        console.print(renderable)
    return buffer.getvalue()


def test_time_left_is_the_clock_for_everyone():
    assert time_left(None, 5.0) == ""
    assert time_left(100.0, 69.2) == "31s left"
    assert time_left(100.0, 130.0) == "0s left"  # never negative


def test_every_family_shows_the_same_time_left_at_each_refresh(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress_module, "_clock", lambda: now[0])
    console, _ = _console()
    shown = RunProgress(["a", "b"], None, 60, "roc_auc", console=console, enabled=False)
    shown.update("a", 1, 0.9, "complete")  # only "a" reports; "b" never does
    now[0] += 29
    first = _rendered(shown)
    assert first.count("31s left") == 2, first  # "b" too, though it last reported nothing
    now[0] += 27
    second = _rendered(shown)
    assert second.count("4s left") == 2 and "31s left" not in second, second


def test_complete_trials_never_pass_the_total_and_pruned_ones_are_shown_beside():
    console, _ = _console()
    shown = RunProgress(["xgboost"], 3, None, "roc_auc", console=console, enabled=False)
    states = ["complete", "pruned", "pruned", "complete", "failed", "pruned", "complete"]
    for i, state in enumerate(states, start=1):
        shown.update("xgboost", i, 0.9, state)
        task = shown._progress.tasks[0]
        assert task.completed <= task.total == 3
    assert shown._progress.tasks[0].completed == 3
    text = _rendered(shown)
    assert "3/3" in text and "7/3" not in text and "3 pruned" in text and "1 failed" in text, text


def test_estimate_counts_what_is_owed_at_each_familys_cost():
    totals = {"a": 3, "b": 3, "c": 3}
    assert estimate_s({"a": 2.0}, {"a": 0}, totals) is None  # nothing complete yet
    assert estimate_s({"a": 2.0}, {"a": 1}, {"a": None}) is None  # a clock alone: no estimate
    # a: 2 s per complete trial, 2 owed; b: tried for 5 s, nothing complete: at least 5 s each; c: the median
    assert estimate_s({"a": 2.0, "b": 5.0}, {"a": 1, "b": 0}, totals) == 2 * 2.0 + 3 * 5.0 + 3 * 2.0


def test_the_estimate_line_appears_under_trial_counts_after_the_first_trials(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress_module, "_clock", lambda: now[0])
    console, buffer = _console()
    shown = RunProgress(["a", "b"], 2, None, "roc_auc", console=console, enabled=False)
    assert shown.estimate_line == ""
    now[0] += 4
    shown.update("a", 1, 0.8, "pruned")
    assert shown.estimate_line == ""  # nothing complete yet
    now[0] += 6
    shown.update("a", 2, 0.8, "complete")  # a: 10 s for one complete trial
    assert "estimate: about 30s more for 3 complete trials still owed" in shown.estimate_line
    assert "estimate:" in _rendered(shown)
    now[0] += 2
    shown.update("b", 1, 0.7, "complete")
    assert "about 12s more for 2 complete trials" in shown.estimate_line
    assert buffer.getvalue() == ""  # off a terminal nothing is printed: stderr stays empty
    shown.update("a", 3, 0.8, "complete")
    shown.update("b", 2, 0.7, "complete")
    assert shown.estimate_line == "estimate: every family has its complete trials"


def test_clocked_progress_has_no_estimate():
    console, _ = _console()
    shown = RunProgress(["a"], None, 30, "roc_auc", console=console, enabled=False)
    shown.update("a", 1, 0.8, "complete")
    assert shown.estimate_line == ""


def test_a_counted_run_with_pruning_never_shows_more_than_its_total(tmp_path, monkeypatch):
    """--trials 3 with every other trial pruned after its first fold: the bar reaches 3/3, never more,
    the estimate appears after the first trials, and the family ends with exactly 3 complete trials."""
    from tuner.evaluation.pruning import FoldPruner

    real = FoldPruner.prune_values

    def prune_odd(self, study, number, scores):
        return number % 2 == 1 or real(self, study, number, scores)

    monkeypatch.setattr(FoldPruner, "prune_values", prune_odd)
    console, _ = _console()
    seen: list[tuple[float, float | None]] = []
    lines: list[str] = []

    class Watched(RunProgress):
        def update(self, *args):
            super().update(*args)
            task = self._progress.tasks[0]
            seen.append((task.completed, task.total))
            lines.append(self.estimate_line)

    url = f"sqlite:///{tmp_path / 'p.db'}"
    shown = Watched(["logistic_regression"], 3, None, "roc_auc", console=console, enabled=False)
    tuner.tune("builtin:breast_cancer", target="target", models=["logistic_regression"], trials=3, cv=3,
               storage=url, run="p", progress=shown, n_jobs=1)
    study = optuna.load_study(study_name="p::logistic_regression", storage=url)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3
    assert states.count(optuna.trial.TrialState.PRUNED) >= 2  # the odd trials
    assert len(seen) == len(states) and all(done <= total == 3 for done, total in seen)
    assert seen[-1] == (3, 3)
    assert lines[0].startswith("estimate:")  # the first trial completed: an estimate at once
