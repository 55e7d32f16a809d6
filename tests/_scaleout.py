"""Helpers for the parallel / distributed / crash-safety tests: a fresh PostgreSQL database
per test, tiny data on disk, worker subprocesses, and checks of a run's bookkeeping."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

TESTS = Path(__file__).resolve().parent
# PostgreSQL server for the distributed tests; a fresh database is created (and dropped) per test.
PG_ADMIN_URL = os.environ.get("TUNER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

# Subprocesses register the test-only slow family before the CLI starts (it never ships).
_LAUNCH = ("import sys; sys.path.insert(0, {tests!r}); import _slow_family; _slow_family.register(); "
           "from tuner.cli import main; sys.argv[0] = 'tuner'; main()")


@contextlib.contextmanager
def postgres_database():
    """Yield the URL of a new, empty database; drop it afterwards (skip if no server)."""
    psycopg2 = pytest.importorskip("psycopg2")
    from sqlalchemy.engine import make_url

    admin = make_url(PG_ADMIN_URL)
    params = dict(host=admin.host or "127.0.0.1", port=admin.port or 5432, user=admin.username or "postgres",
                  dbname=admin.database or "postgres")
    if admin.password:
        params["password"] = admin.password
    try:
        conn = psycopg2.connect(connect_timeout=5, **params)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at {admin.render_as_string(hide_password=True)}: {exc}")
    conn.autocommit = True
    name = f"tuner_test_{uuid.uuid4().hex[:12]}"
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@contextlib.contextmanager
def sqlite_or_postgres(kind: str, folder: Path):
    """An opened tuner storage: "sqlite" (a file in ``folder``) or "postgresql" (a fresh database)."""
    from tuner.storage.runs import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if kind == "sqlite":
        yield open_storage(f"sqlite:///{folder / 'tuner.db'}", create=True)
        return
    with postgres_database() as url:
        yield open_storage(url, create=True)


def write_regression_csv(path: Path, n: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["y"] = 2 * X[:, 0] - X[:, 1] + rng.normal(scale=0.3, size=n)
    df.to_csv(path, index=False)
    return path


def tuner_cmd(*args) -> list[str]:
    return [sys.executable, "-c", _LAUNCH.format(tests=str(TESTS)), *[str(a) for a in args]]


def env(**extra) -> dict:
    e = dict(os.environ)
    e.pop("CI", None)  # no effect on the tool; keeps the child's output identical
    e.update({k: str(v) for k, v in extra.items()})
    return e


def start(*args, cwd=None, **env_extra) -> subprocess.Popen:
    """A tuner process whose output goes to temporary files (``finish`` / ``output`` read them):
    a pipe that nobody reads while the test waits fills up and blocks the process."""
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(tuner_cmd(*args), stdout=out, stderr=err, text=True, cwd=cwd, env=env(**env_extra),
                            preexec_fn=_ctrl_c_as_from_a_terminal)
    proc.output_files = (out, err)
    return proc


def _ctrl_c_as_from_a_terminal() -> None:
    """A suite started in the background (``pytest &`` from a script) has SIGINT ignored,
    the children inherit that, and Python then never raises KeyboardInterrupt: the tests
    that press Ctrl-C would see the run finish instead. Give the child the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def output(proc: subprocess.Popen) -> tuple[str, str]:
    """What a process from ``start`` wrote so far (standard output, standard error)."""
    texts = []
    for f in proc.output_files:
        f.flush()
        f.seek(0)
        texts.append(f.read())
    return texts[0], texts[1]


def run(*args, cwd=None, timeout=240, **env_extra) -> subprocess.CompletedProcess:
    return subprocess.run(tuner_cmd(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=env(**env_extra))


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        out, err = output(proc)
        raise AssertionError(f"worker did not finish in {timeout}s\n{out}\n{err}") from exc
    out, err = output(proc)
    return proc.returncode, out, err


def storage(url: str):
    from tuner.storage.runs import open_storage

    return open_storage(url, create=False)


def load_study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage(url))


def family_trials(url: str, run: str, family: str) -> list[optuna.trial.FrozenTrial]:
    return load_study(url, f"{run}::{family}").get_trials(deepcopy=True)


def wait_for(predicate, timeout: float = 60, poll: float = 0.2, what: str = "condition"):
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def running_trial(url: str, run: str, family: str):
    from tuner.errors import StorageError

    try:
        trials = family_trials(url, run, family)
    except (KeyError, StorageError):  # not created yet
        return None
    # with its params suggested, i.e. inside the fit (a trial claimed a moment ago has none yet)
    running = [t for t in trials if t.state == TrialState.RUNNING and t.params]
    return running[0] if running else None


def worker_trial_count(stdout: str) -> int:
    match = re.search(r"it ran (\d+) trial\(s\)", stdout)
    assert match, f"no summary line in worker output:\n{stdout}"
    return int(match.group(1))


def assert_books_balance(url: str, run: str, families: list[str], target: int, ran_by_workers: int | None = None):
    """Exactly ``target`` COMPLETE trials per family, nothing left RUNNING or WAITING, trial
    numbers unique and contiguous, and (if given) every trial run by some worker counted once."""
    finished = 0
    for family in families:
        trials = family_trials(url, run, family)
        states = Counter(t.state for t in trials)
        assert states[TrialState.COMPLETE] == target, (family, states)
        assert states[TrialState.RUNNING] == 0 and states[TrialState.WAITING] == 0, (family, states)
        numbers = [t.number for t in trials]
        assert sorted(numbers) == list(range(len(trials))), numbers
        for t in trials:
            if t.state == TrialState.COMPLETE:
                assert "metrics" in t.user_attrs and t.value is not None
        finished += len(trials)
    if ran_by_workers is not None:
        assert ran_by_workers == finished, (ran_by_workers, finished)


def leaderboard_json(url: str, run: str) -> list[dict]:
    result = run_cli("leaderboard", "--storage", url, "--run", run, "--format", "json")
    return json.loads(result)


def run_cli(*args) -> str:
    """Run a `tuner` command in a subprocess; its stdout (exit code 0 asserted)."""
    result = run(*args)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def cli(*args, code: int = 0):
    """Run a `tuner` command in this process (no interpreter start-up); the click Result."""
    from typer.testing import CliRunner

    from tuner.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def register_slow_family(monkeypatch) -> None:
    import _slow_family
    import search_spaces

    monkeypatch.setitem(search_spaces.FAMILIES, _slow_family.NAME, _slow_family.__name__)


def interrupt(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
