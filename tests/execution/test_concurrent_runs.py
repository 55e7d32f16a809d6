"""Two `tuner run` processes on one run at the same time (issue #8, part 5).

Started at the same moment on a storage that does not exist yet (embedded SQLite, and
an empty PostgreSQL database): both create it without tripping over each other, both
contribute trials (each trial records the process that ran it), each adds its
`--trials N` to the run (so every family ends with exactly 2N complete trials), and the
books stay consistent. Different data under the same run name is refused (exit 2)
whether the first process is already running or starts at the same moment, and the
refused process writes nothing.

In CI a skip is a failure: the PostgreSQL case needs the server of the distributed tests.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

import _scaleout as so
import _slow_family
from tuner.execution.heartbeat import WORKER_ATTR
from tuner.storage.runs import require_config

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

FAMILIES = ["logistic_regression", "random_forest"]
RUN = "shared"
TRIALS = 2


def _classification_csv(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    n = 120
    X = rng.normal(size=(n, 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["y"] = np.where(X[:, 0] - X[:, 1] + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    df.to_csv(path, index=False)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_storage(request, tmp_path):
    """A storage URL where nothing exists yet: the two processes create it together."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tuner.db'}"
        return
    with so.postgres_database() as url:
        yield url


def test_two_runs_at_once_share_the_run_and_the_books_balance(fresh_storage, tmp_path):
    url = fresh_storage
    data = _classification_csv(tmp_path / "small.csv")
    args = ("run", data, "--target", "y", "--models", ",".join(FAMILIES), "--trials", TRIALS, "--cv", 2,
            "--storage", url, "--run", RUN)
    procs = [so.start(*args), so.start(*args)]  # the same moment, before either has created anything
    results = [so.finish(p, timeout=300) for p in procs]
    for code, out, err in results:
        assert code == 0, out + err
        assert "Traceback" not in err and "database is locked" not in err
        assert "ranked by cross-validated roc_auc" in out
    ran = [int(re.search(r"(\d+) trial\(s\) in", out).group(1)) for _, out, _ in results]
    assert all(ran), ran

    # each invocation added TRIALS complete trials per family; nothing left running or waiting;
    # trial numbers unique and contiguous; every trial run counted once
    so.assert_books_balance(url, RUN, FAMILIES, 2 * TRIALS, ran_by_workers=sum(ran))
    store = so.storage(url)
    workers = Counter()
    for family in FAMILIES:
        study = optuna.load_study(study_name=f"{RUN}::{family}", storage=store)
        assert study.user_attrs["tuner_target"] == 2 * TRIALS
        trials = study.get_trials(deepcopy=False)
        assert sum("fixed_params" in t.system_attrs for t in trials) == 1  # the defaults enqueued once
        for t in trials:
            worker = t.system_attrs[WORKER_ATTR]
            assert worker["id"].endswith(f":{worker['pid']}")
            workers[worker["pid"]] += 1
    assert set(workers) == {p.pid for p in procs}, workers  # both contributed trials

    config = require_config(store, RUN)  # the run's config is whole and is this data's
    assert config.families == FAMILIES and config.target == "y" and config.cv == 2
    summaries = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
    assert sorted(summaries) == sorted([RUN] + [f"{RUN}::{f}" for f in FAMILIES])
    board = json.loads(so.cli("leaderboard", "--storage", url, "--run", RUN, "--format", "json").stdout)
    families = [row for row in board if row["model"] != "ensemble"]  # the ensemble is built from both runs' trials
    assert {row["model"] for row in families} == set(FAMILIES)
    assert all(row["trials"]["complete"] == 2 * TRIALS for row in families)


def _slow_args(url, data, trials):
    return ("run", data, "--target", "y", "--models", _slow_family.NAME, "--trials", trials, "--cv", 2,
            "--storage", url, "--run", RUN)


def test_different_data_under_a_running_run_is_refused(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'tuner.db'}"
    data = so.write_regression_csv(tmp_path / "first.csv")
    other = so.write_regression_csv(tmp_path / "other.csv", seed=1)
    first = so.start(*_slow_args(url, data, 2), TUNER_TEST_SLOW_FIT_S=1.0)
    so.wait_for(lambda: so.running_trial(url, RUN, _slow_family.NAME), timeout=120, poll=0.2,
                what="the first run to start a trial")
    fingerprint = require_config(so.storage(url), RUN).fingerprint

    so.register_slow_family(monkeypatch)
    result = so.cli(*_slow_args(url, other, 5), code=2)  # while the first one runs
    assert first.poll() is None
    assert f"run '{RUN}' was made on different data" in result.output and "fingerprint" in result.output
    assert "Traceback" not in result.output

    code, out, err = so.finish(first)
    assert code == 0, out + err
    so.assert_books_balance(url, RUN, [_slow_family.NAME], 2)  # the refused call added no budget
    assert require_config(so.storage(url), RUN).fingerprint == fingerprint


def test_different_data_started_at_the_same_moment_the_second_config_is_refused(tmp_path, mixed_frame):
    """Two calls may both find no run yet: the config is written under the run's lock after
    reading it again, so the second to get there is refused like any later call."""
    from tuner.data.dataset import prepare
    from tuner.errors import TunerError
    from tuner.search.run_setup import make_config
    from tuner.storage.runs import open_storage, save_config

    store = open_storage(f"sqlite:///{tmp_path / 'tuner.db'}", create=True)
    first = make_config(prepare(mixed_frame, "churned", "auto"), run=RUN, metric=None,
                        models=["logistic_regression"], cv=2, seed=None)
    other = make_config(prepare(mixed_frame.iloc[:-10], "churned", "auto"), run=RUN, metric=None,
                        models=["random_forest"], cv=2, seed=None)  # built before the first was stored
    same = make_config(prepare(mixed_frame, "churned", "auto"), run=RUN, metric=None,
                       models=["random_forest"], cv=2, seed=None)
    save_config(store, first)
    with pytest.raises(TunerError, match="made on different data"):
        save_config(store, other)
    assert require_config(store, RUN).fingerprint == first.fingerprint
    stored = save_config(store, same)  # same data: the run goes on, with both families
    assert stored.families == ["logistic_regression", "random_forest"] and stored.created_at == first.created_at
    assert require_config(store, RUN).families == stored.families


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_openers_of_a_new_storage_at_the_same_moment_do_not_collide(backend, tmp_path):
    """Optuna creates a new storage's tables without a lock: four openers at the same moment
    ("table studies already exists", a duplicate alembic version) all succeed."""
    import threading

    from tuner.storage.runs import open_storage

    def race(url: str) -> list[str]:
        barrier, errors = threading.Barrier(4), []

        def open_it():
            barrier.wait()
            try:
                open_storage(url, create=True).engine.dispose()
            except Exception as exc:  # noqa: BLE001 — collected, asserted below
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    if backend == "sqlite":
        for i in range(5):
            assert race(f"sqlite:///{tmp_path / f'new{i}.db'}") == []
    else:
        with so.postgres_database() as url:
            assert race(url) == []
