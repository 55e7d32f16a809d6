"""The Python API: the same run as the CLI, returning the leaderboard as a DataFrame."""

from __future__ import annotations

import pandas as pd

from . import leaderboard as lb
from .data import prepare, read_table
from .errors import TunerError
from .storage import DEFAULT_STORAGE, default_run_name, list_runs, open_storage, require_config
from .study import Driver, make_config, start_run


def tune(
    data: pd.DataFrame | str,
    *,
    target: str,
    task: str = "auto",
    metric: str | None = None,
    models: list[str] | str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    cv: int | None = None,
    seed: int | None = None,
    storage: str | None = None,
    run: str | None = None,
    n_jobs: int = 1,
    progress=None,
) -> pd.DataFrame:
    """Tune every family on ``data`` and return the leaderboard (best first).

    ``data`` is a DataFrame or anything ``tuner run`` accepts (a path or ``builtin:NAME``).
    With neither ``trials`` nor ``timeout``, each family gets 20 trials. Runs persist in
    ``storage`` (default ``sqlite:///tuner.db``); calling again with the same ``run``
    continues it.
    """
    source = data if isinstance(data, str) else "<DataFrame>"
    frame = read_table(data) if isinstance(data, str) else data
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    ds = prepare(frame, target, task, source=source)
    run = run or (default_run_name(source) if isinstance(data, str) else "dataframe")
    make_config(ds, run=run, metric=metric, models=models, cv=cv, seed=seed)  # validate before writing
    store = open_storage(storage or DEFAULT_STORAGE, create=True)
    config = start_run(store, ds, run=run, metric=metric, models=models, cv=cv, seed=seed)
    Driver(store, config, ds, n_jobs=n_jobs, progress=progress).run(trials, timeout)
    return lb.to_frame(lb.build(store, config), config)


def leaderboard(*, run: str | None = None, storage: str | None = None, metric: str | None = None) -> pd.DataFrame:
    """The leaderboard of a stored run as a DataFrame."""
    store = open_storage(storage, create=False)
    config = require_config(store, run)
    return lb.to_frame(lb.build(store, config, metric), config)


def runs(*, storage: str | None = None) -> list[str]:
    """Names of the runs in ``storage``, oldest first."""
    return [c.run for c in list_runs(open_storage(storage, create=False))]


__all__ = ["tune", "leaderboard", "runs", "TunerError"]
