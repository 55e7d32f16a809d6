"""Nothing of a run keeps computing after ``tuner.tune`` returns: its helper processes
(``--n-jobs``) have exited, so a refit that follows has every core (benchmarks/RESULTS.md,
"A regression in the time limit": an HGB refit with 2 OpenMP threads took 38 s instead of 3 s
with one core busy elsewhere)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import tuner

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)


def _children() -> list[int]:
    """Processes whose parent is this one (zombies included: a helper never waited for)."""
    me, out = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                out.append(int(entry))
    return out


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_tune_with_helper_processes_returns_with_none_left(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 5))
    df = pd.DataFrame(X, columns=list("abcde")).assign(target=X[:, 0] * 2 + rng.normal(size=800))
    before = set(_children())
    tuner.tune(df, target="target", task="regression", models=["hist_gradient_boosting", "random_forest"],
               timeout=6, seed=0, storage=f"sqlite:///{tmp_path / 'runs.db'}", run="r", n_jobs=2)
    assert set(_children()) - before == set()


def test_tune_in_this_process_returns_with_no_fit_thread_left(tmp_path):
    """An idle "tuner-fit" thread keeps its OpenMP team, and every later OpenMP fit of the process
    (the refit of the winner) then ran ~10x slower (tuner.execution.fit_watchdog.release)."""
    import threading

    from tuner.execution import fit_watchdog

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    df = pd.DataFrame(X, columns=list("abcde")).assign(target=X[:, 0] * 2 + rng.normal(size=600))
    tuner.tune(df, target="target", task="regression", models=["hist_gradient_boosting", "xgboost"],
               trials=6, timeout=30, seed=0, storage=f"sqlite:///{tmp_path / 'runs.db'}", run="r", n_jobs=1)
    left = [t for t in threading.enumerate() if t.name == "tuner-fit" and t not in fit_watchdog._abandoned]
    assert left == []
