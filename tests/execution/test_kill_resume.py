"""Interruptions of a real `tuner run` process (issue #8, part 3).

SIGKILL at any moment (during start-up, in the middle of a trial, right after trials
finished, at random moments while the SQLite file is being written; the parent of
`--n-jobs 2`): every trial finished before the kill is still there with the same value,
the storage opens (`PRAGMA integrity_check` is ok, `tuner runs` works), the killed
process' trial is failed as soon as a run on this machine claims a trial ("the process
running it (host:pid) is gone") and retried, and rerunning the same command finishes
the run with nothing left RUNNING. Ctrl-C: exit 130, no traceback, the trial recorded,
the leaderboard so far printed (test_crash_safety covers the mid-trial Ctrl-C itself).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import time
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import _scaleout as so
import _slow_family
from tuner.execution.heartbeat import WORKER_ATTR

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

FAMILIES = ["logistic_regression", "random_forest"]
RUN = "k"


@pytest.fixture
def data_csv(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    n = 120
    X = rng.normal(size=(n, 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["y"] = np.where(X[:, 0] - X[:, 1] + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    path = tmp_path / "small.csv"
    df.to_csv(path, index=False)
    return path


class View:
    """Read-only look at a SQLite storage while a `tuner run` writes it: plain Optuna,
    no table creation, no write lock, opened once the file exists and kept open (polls
    must not take the core from the process under test)."""

    def __init__(self, path: Path, families=tuple(FAMILIES)):
        self.path, self.families = path, list(families)
        self.store = None

    def trials(self, family: str) -> list[optuna.trial.FrozenTrial]:
        if self.store is None:
            if not self.path.exists():
                return []
            try:
                self.store = optuna.storages.RDBStorage(f"sqlite:///{self.path}", skip_compatibility_check=True,
                                                        skip_table_creation=True)
            except Exception:  # noqa: BLE001 — the schema is being created right now
                return []
        try:
            return optuna.load_study(study_name=f"{RUN}::{family}", storage=self.store).get_trials(deepcopy=False)
        except Exception:  # noqa: BLE001 — KeyError: not created yet; OperationalError: no tables yet
            return []

    def all_trials(self) -> list[tuple[str, optuna.trial.FrozenTrial]]:
        return [(f, t) for f in self.families for t in self.trials(f)]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.engine.dispose()
            self.store = None


def complete(trials) -> dict:
    """{(family, number): (value, params)} of the COMPLETE trials."""
    return {(f, t.number): (t.value, t.params) for f, t in trials if t.state == TrialState.COMPLETE}


def kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up of any kind
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL


def check_storage(url: str, path: Path, kept: dict) -> list[tuple[str, optuna.trial.FrozenTrial]]:
    """After a kill: the file is sound, tuner opens it, and every trial seen complete before is unchanged."""
    if not path.exists():  # killed before tuner opened it
        assert not kept
        return []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = so.storage(url)  # the way `tuner run` opens it
    try:
        optuna.get_all_study_summaries(store, include_best_trial=False)
        trials = []
        for family in FAMILIES:
            try:
                study = optuna.load_study(study_name=f"{RUN}::{family}", storage=store)
            except KeyError:
                continue
            trials += [(family, t) for t in study.get_trials(deepcopy=True)]
    finally:
        store.engine.dispose()
    so.cli("runs", "--storage", url)
    now = complete(trials)
    for key, value in kept.items():
        assert now.get(key) == value, (key, value, now.get(key))
    return trials


def by_pid(trials, pid: int) -> list:
    return [(f, t) for f, t in trials if (t.system_attrs.get(WORKER_ATTR) or {}).get("pid") == pid]


def test_sigkill_at_any_moment_keeps_finished_trials_and_a_rerun_finishes_the_run(tmp_path, data_csv):
    path = tmp_path / "tuner.db"
    url = f"sqlite:///{path}"
    args = ("run", data_csv, "--target", "y", "--models", ",".join(FAMILIES), "--trials", 1, "--cv", 2,
            "--storage", url, "--run", RUN)
    kept: dict = {}
    with View(path) as view:
        # (a) start-up: while the interpreter starts (nothing written), then as soon as the file appears
        proc = so.start(*args)
        time.sleep(0.3)
        kill(proc)
        check_storage(url, path, kept)
        proc = so.start(*args)
        so.wait_for(path.exists, timeout=120, poll=0.01, what="the storage file")
        kill(proc)
        check_storage(url, path, kept)

        # (b) in the middle of a trial (its params suggested: inside the fit); a random forest's
        # fit is the longer one, and should the trial end just before the kill, kill again
        for _ in range(4):
            proc = so.start(*args)
            so.wait_for(lambda pid=proc.pid: [t for f, t in by_pid(view.all_trials(), pid)
                                              if f == "random_forest" and t.state == TrialState.RUNNING and t.params],
                        timeout=120, poll=0.05, what="a random forest trial in its fit")
            kept = complete(view.all_trials())
            kill(proc)
            trials = check_storage(url, path, kept)
            victims = [(f, t) for f, t in by_pid(trials, proc.pid) if t.state == TrialState.RUNNING]
            if victims:
                break
        else:
            pytest.fail("every kill fell between two trials")
        (family, killed), = victims
        number = killed.number  # nobody could record it: the next run on this machine does
        assert killed.system_attrs[WORKER_ATTR]["id"] == f"{socket.gethostname()}:{proc.pid}"
        victim_pid = proc.pid

        # (c) right after trials finished: the new process first fails the dead one's trial (no grace period)
        proc = so.start(*args)

        def victim_failed_and_progress():
            exited = proc.poll() is not None
            trials = view.all_trials()
            mine = [t for f, t in by_pid(trials, proc.pid) if t.state == TrialState.COMPLETE]
            dead = [t for f, t in trials if f == family and t.number == number]
            if mine and dead and dead[0].state == TrialState.FAIL:
                return trials
            if exited:
                out, err = so.output(proc)
                pytest.fail(f"the rerun exited ({proc.returncode}) without failing the dead trial:\n{out}\n{err}")
            return None

        kept = complete(so.wait_for(victim_failed_and_progress, timeout=120, poll=0.1,
                                    what="the killed trial failed and a new one complete"))
        kill(proc)
        trials = check_storage(url, path, kept)
        mine = [t for f, t in trials if f == family]
        killed = next(t for t in mine if t.number == number)
        assert killed.state == TrialState.FAIL
        assert killed.user_attrs["fail_reason"] == (f"the process running it ({socket.gethostname()}:{victim_pid}) "
                                                     "is gone")
        retries = [t for t in mine if t.system_attrs.get("failed_trial") == number]
        assert len(retries) == 1 and retries[0].params == killed.params
        assert "fail_reason" not in retries[0].user_attrs  # the retry does not inherit the reason

        # (d) random moments while the process claims, runs and records trials (SQLite writes)
        rng = random.Random(8)
        for _ in range(3):
            proc = so.start(*args)
            so.wait_for(lambda pid=proc.pid: by_pid(view.all_trials(), pid), timeout=120, poll=0.1,
                        what="the process to claim a trial")
            kept = complete(view.all_trials())
            time.sleep(rng.uniform(0.0, 0.6))
            kill(proc)
            kept = complete(check_storage(url, path, kept))

    # the same command again finishes the run: nothing RUNNING or WAITING, the budget exact
    code, out, err = so.finish(so.start(*args), timeout=300)
    assert code == 0, out + err
    assert "Traceback" not in err and "database is locked" not in err
    trials = check_storage(url, path, kept)
    store = so.storage(url)
    for fam in FAMILIES:
        study = optuna.load_study(study_name=f"{RUN}::{fam}", storage=store)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0, (fam, states)
        assert states[TrialState.COMPLETE] == study.user_attrs["tuner_target"], (fam, states)
        numbers = sorted(t.number for t in study.get_trials(deepcopy=False))
        assert numbers == list(range(len(numbers)))
    store.engine.dispose()
    for _, t in trials:  # every failure says why: its process was gone, or it never began
        if t.state == TrialState.FAIL:
            assert t.user_attrs.get("fail_reason"), t
    board = [r for r in json.loads(so.cli("leaderboard", "--storage", url, "--run", RUN, "--format", "json").stdout)
             if r["model"] != "ensemble"]
    assert {row["model"] for row in board} == set(FAMILIES)


def _slow_args(url, trials, *extra):
    data = so.write_regression_csv(Path(url.removeprefix("sqlite:///")).with_name("r.csv"))
    return ("run", data, "--target", "y", "--models", _slow_family.NAME, "--trials", trials, "--cv", 2,
            "--storage", url, "--run", RUN, *extra)


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def test_sigkill_of_an_n_jobs_parent_its_helpers_stop_and_a_rerun_leaves_nothing_running(tmp_path, monkeypatch):
    path = tmp_path / "tuner.db"
    url = f"sqlite:///{path}"
    args = _slow_args(url, 6, "--n-jobs", 2)
    proc = so.start(*args, TUNER_TEST_SLOW_FIT_S=1.0)
    with View(path, [_slow_family.NAME]) as view:
        def two_in_their_fit():
            trials = [t for _, t in view.all_trials()]
            return trials if sum(t.state == TrialState.RUNNING and bool(t.params) for t in trials) >= 2 else None

        before = so.wait_for(two_in_their_fit, timeout=150, poll=0.1, what="both processes in a trial")
    helpers = _children(proc.pid)
    assert helpers, "no helper process"
    kept = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    os.kill(proc.pid, signal.SIGKILL)
    so.finish(proc, timeout=120)  # returns once the helpers (holding its stderr) have stopped by themselves
    assert proc.returncode == -signal.SIGKILL
    so.wait_for(lambda: all(_ended(pid) for pid in helpers), timeout=30, what="the helpers to stop")

    trials = {t.number: t for t in so.family_trials(url, RUN, _slow_family.NAME)}
    for number, value in kept.items():
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == value
    # the helpers recorded their trials; at most the killed parent's trial is left for the next run
    running = [t for t in trials.values() if t.state == TrialState.RUNNING]
    assert all((t.system_attrs.get(WORKER_ATTR) or {}).get("pid", proc.pid) == proc.pid for t in running), running
    assert any(t.state != TrialState.RUNNING and t.system_attrs[WORKER_ATTR]["pid"] in helpers
               for t in trials.values())

    so.register_slow_family(monkeypatch)
    monkeypatch.setenv(_slow_family.FIT_SECONDS_ENV, "0.05")
    so.cli(*args)  # the same command again
    so.assert_books_balance(url, RUN, [_slow_family.NAME], 12)  # the 6 owed, and 6 more
    trials = {t.number: t for t in so.family_trials(url, RUN, _slow_family.NAME)}
    for left in running:  # failed at the rerun's first claim, and retried
        dead = trials[left.number]
        assert dead.state == TrialState.FAIL
        if WORKER_ATTR not in left.system_attrs:  # killed inside its claim: it never began
            assert dead.user_attrs["fail_reason"].startswith("abandoned")
            continue
        assert dead.user_attrs["fail_reason"].endswith(f":{proc.pid}) is gone")
        assert [t.state for t in trials.values() if t.system_attrs.get("failed_trial") == dead.number] in \
            ([TrialState.COMPLETE], [TrialState.PRUNED])


def test_ctrl_c_during_start_up_exits_130_quietly_and_leaves_a_sound_storage(tmp_path):
    path = tmp_path / "tuner.db"
    url = f"sqlite:///{path}"
    proc = so.start(*_slow_args(url, 2))
    so.wait_for(path.exists, timeout=120, poll=0.01, what="the storage file")  # tuner is opening it
    so.interrupt(proc)
    code, out, err = so.finish(proc, timeout=60)
    assert code == 130, out + err
    assert "Traceback" not in err
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    so.cli("runs", "--storage", url)
    trials = []
    try:
        trials = so.family_trials(url, RUN, _slow_family.NAME)
    except KeyError:  # interrupted before the family was created
        pass
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.COMPLETE)]


def test_ctrl_c_after_some_trials_prints_the_leaderboard_so_far(tmp_path):
    path = tmp_path / "tuner.db"
    url = f"sqlite:///{path}"
    proc = so.start(*_slow_args(url, 3), TUNER_TEST_SLOW_FIT_S=0.5)
    with View(path, [_slow_family.NAME]) as view:
        def one_done_one_running():
            trials = [t for _, t in view.all_trials()]
            done = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
            return (done, running[0]) if done and running else None

        so.wait_for(one_done_one_running, timeout=120, poll=0.05, what="a second trial in its fit")
    so.interrupt(proc)
    code, out, err = so.finish(proc, timeout=60)
    assert code == 130, out + err
    assert "Traceback" not in err
    trials = so.family_trials(url, RUN, _slow_family.NAME)
    states = Counter(t.state for t in trials)
    assert states[TrialState.RUNNING] == 0 and states[TrialState.COMPLETE] >= 1
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert len(interrupted) == 1 and interrupted[0].user_attrs["fail_reason"] == "interrupted by the user"
    stands = next(line for line in out.splitlines() if "stands at:" in line)
    assert f"{_slow_family.NAME} {states[TrialState.COMPLETE]}/3 (" in stands and "1 failed" in stands
    assert "ranked by cross-validated rmse" in out  # the leaderboard so far
    row = next(line for line in out.splitlines()  # the leaderboard's row (the fitted table has no "│")
               if _slow_family.NAME in line.split() and "stands at:" not in line and "note:" not in line)
    c, p, f = (states[s] for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    assert f"{c}/{p}/{f}" in row  # trials complete / pruned / failed


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_sigterm_records_the_trial_and_exits_143(tmp_path, n_jobs):
    """A scheduler stopping the job (SIGTERM) is handled like Ctrl-C, with exit code 143."""
    path = tmp_path / "tuner.db"
    url = f"sqlite:///{path}"
    proc = so.start(*_slow_args(url, 3), "--n-jobs", n_jobs, TUNER_TEST_SLOW_FIT_S=0.5)
    with View(path, [_slow_family.NAME]) as view:
        so.wait_for(lambda: [t for _, t in view.all_trials() if t.state == TrialState.RUNNING and t.params],
                    timeout=120, poll=0.05, what="a trial in its fit")
    proc.send_signal(signal.SIGTERM)
    code, out, err = so.finish(proc, timeout=60)
    assert code == 143, out + err
    assert "Traceback" not in err
    trials = so.family_trials(url, RUN, _slow_family.NAME)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert any(t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == "interrupted by the user"
               for t in trials)


def test_a_storage_left_without_its_indexes_by_a_kill_gets_them_back(tmp_path):
    """A process killed between Optuna's CREATE TABLE and CREATE INDEX statements left a
    storage whose study names were not unique: the next opening completes the schema."""
    from tuner.storage.runs import open_storage

    path = tmp_path / "tuner.db"
    url = f"sqlite:///{path}"
    open_storage(url, create=True).engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ix_studies_study_name")
    store = open_storage(url, create=False)
    store.engine.dispose()
    with sqlite3.connect(path) as conn:
        names = {row[1] for row in conn.execute("PRAGMA index_list('studies')")}
    assert "ix_studies_study_name" in names
    optuna.create_study(study_name="s", storage=url)
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        optuna.create_study(study_name="s", storage=url)
