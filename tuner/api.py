"""The Python API: the same run as the CLI, returning the leaderboard as a DataFrame.

``import tuner`` loads this module on the first use of ``tuner.tune`` / ``leaderboard`` /
``report`` / ``runs``; it then sets up the SQL layer at once, so that the clock of the first
``tune(timeout=...)`` is spent on models.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Callable

import pandas as pd

from tuner.config import validate_budget
from tuner.data.dataset import check_test_size, prepare, read_table
from tuner.data.frames import as_pandas
from tuner.errors import TunerError
from tuner.execution import cores
from tuner.results import leaderboard as lb
from tuner.storage.runs import (
    DEFAULT_STORAGE,
    default_run_name,
    list_runs,
    load_sql_layer,
    open_storage,
    require_config,
)

if TYPE_CHECKING:
    from tuner.deploy.artifact.loaded_model import LoadedModel

load_sql_layer()  # imported with the API, not inside the first tune()'s clock


def tune(
    data: pd.DataFrame | str,
    *,
    target: str,
    task: str = "auto",
    metric: str | Callable | None = None,
    models: list[str] | str | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    cv: int | None = None,
    seed: int | None = None,
    storage: str | None = None,
    run: str | None = None,
    n_jobs: int | None = None,
    progress: bool | object = False,
    cv_repeats: int | None = None,
    test_size: float | None = None,
    pos_label=None,
    trial_timeout: float | None = None,
    groups: str | None = None,
    time_column: str | None = None,
    gap: int | None = None,
    weights: str | None = None,
    space: str | dict | None = None,
    early_stop: bool | None = None,
    threshold_metric: str | None = None,
) -> pd.DataFrame:
    """Tune every family on ``data`` and return the leaderboard (best first).

    ``data`` is a DataFrame or anything ``tuner run`` accepts (a path or ``builtin:NAME``).
    With neither ``trials`` nor ``timeout``, each family gets 20 trials. Runs persist in
    ``storage`` (default ``sqlite:///tuner.db``); calling again with the same ``run``
    continues it, adding ``trials`` more complete trials per family. ``n_jobs``: worker
    processes on the run (README, "Scaling out"); None (default) uses every core
    (``tuner.execution.cores``: one process with every core as model threads for a trial
    count, so a fixed seed and trial count give the same result; one process per core under
    a clock alone). ``cv_repeats`` repeats the K-fold CV with new shuffles; ``test_size`` holds
    out that fraction of the rows before tuning (stratified, seeded) and scores each
    family's best on it once, after tuning (``test_<metric>`` columns). ``pos_label``: for a
    binary target, the class the binary metrics score as positive (default: the second of
    the sorted labels); a run keeps it, so pass the same value to continue the run.
    ``trial_timeout``: seconds after which a trial is stopped whatever it is doing (recorded
    as failed, reason ``timeout``); trials then run in supervised worker processes.
    ``groups``: a column naming each row's group (folds and ``test_size`` keep every group on
    one side); ``time_column``: a column that orders the rows (forward folds, the latest rows
    held out, ``gap`` rows left out between past and future); ``weights``: a column of row
    weights (≥ 0) used in every fit and every metric. None of these columns is a feature; a run
    keeps them, so pass the same values to continue it. ``space``: a ``--space`` TOML file (path)
    or the same overrides as a dict, e.g. ``{"xgboost": {"max_depth": 6}}``; stored with the run.
    ``early_stop`` (``tuner run --early-stop``; a ``timeout`` and no ``trials``): the trials end
    before the clock once the leaderboard has stopped moving (``tuner.execution.plateau``); why is
    in the returned frame's ``attrs["stopped_early"]`` (None: the whole clock was used).
    ``threshold_metric`` (``--threshold-metric``; binary tasks): the label metric the model's decision
    threshold is chosen for on out-of-fold predictions (default: the run's metric when it scores
    labels, else accuracy; ``tuner.evaluation.threshold``).

    Quiet by default: nothing is printed and none of Optuna's INFO logs show. ``progress=True``
    shows the live per-family progress (trials done, best so far, time left) on stderr, as
    ``tuner run`` does on a terminal; an object with ``update(family, done, best, last_state)``
    receives the same updates. The returned DataFrame is the same either way.
    """
    started_at = time.time()  # the timeout covers reading the data and opening the storage too
    metric = _metric_name(metric)
    validate_budget(trials, timeout, trial_timeout)
    cores.requested(n_jobs, "n_jobs")
    if cv_repeats is not None and cv_repeats < 1:
        raise TunerError(f"cv_repeats must be at least 1 (got {cv_repeats})")
    check_test_size(test_size)
    data = as_pandas(data)  # polars / pyarrow tables: converted once, here
    source = data if isinstance(data, str) else "<DataFrame>"
    frame = read_table(data) if isinstance(data, str) else data
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    full = prepare(frame, target, task, source=source, pos_label=pos_label, groups=groups, time_column=time_column,
                   weights=weights)
    from tuner.workflow.run import TuningRun

    with _optuna_quiet():  # Optuna's own INFO lines ("A new study created ...") are noise here
        the_run = TuningRun.begin(full, url=storage or DEFAULT_STORAGE,
                                  run=run or (default_run_name(source) if isinstance(data, str) else "dataframe"),
                                  metric=metric, models=models, cv=cv, seed=seed, cv_repeats=cv_repeats,
                                  test_size=test_size, gap=gap, space=space, trials=trials, timeout=timeout,
                                  n_jobs=n_jobs, started_at=started_at, early_stop=early_stop,
                                  threshold_metric=threshold_metric)
        with _progress(progress, the_run.config, trials, timeout) as shown:
            families = the_run.tune(progress=shown, trial_timeout=trial_timeout)
    board = lb.to_frame(the_run.finish(families).rows, the_run.config)
    board.attrs["stopped_early"] = the_run.stopped_early()
    return board


@contextlib.contextmanager
def _progress(progress, config, trials: int | None, timeout: float | None):
    """``progress=True``: the CLI's live display on stderr; False / None: nothing; else the object itself."""
    if progress is True:
        from tuner.cli.progress import RunProgress
        from tuner.search.driver import DEFAULT_TRIALS

        total = trials if trials is not None or timeout is not None else DEFAULT_TRIALS
        with RunProgress(config.families, total, timeout, config.metric, enabled=True) as shown:
            yield shown
    else:
        yield progress or None


@contextlib.contextmanager
def _optuna_quiet():
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(min(max(before, optuna.logging.WARNING), optuna.logging.CRITICAL))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def _metric_name(metric) -> str | None:
    """A metric given as a function or scorer: its stored reference (``tuner.evaluation.custom_metric``)."""
    if metric is None or isinstance(metric, str):
        return metric
    from tuner.evaluation.custom_metric import reference

    return reference(metric)


def leaderboard(*, run: str | None = None, storage: str | None = None, metric: str | Callable | None = None) -> pd.DataFrame:
    """The leaderboard of a stored run as a DataFrame, ranked by ``metric`` (default: the run's).

    Columns include ``p_value_vs_leader`` / ``tied_with_leader`` (corrected resampled
    t-test on the paired fold scores) and, with a held-out test set, ``test_<metric>``.
    """
    metric = _metric_name(metric)
    from tuner.evaluation.metrics import check_metric

    store = open_storage(storage, create=False)
    config = require_config(store, run)
    metric = check_metric(metric or config.metric, config.task).name
    from tuner.workflow.derived import ensure_scores

    ensure_scores(store, config, metric)
    return lb.to_frame(lb.build(store, config, metric), config)


def report(out: str, *, run: str | None = None, storage: str | None = None, data: pd.DataFrame | None = None,
           n_jobs: int | None = None) -> str:
    """Write the self-contained HTML report of a run to ``out``; returns the path (``n_jobs``:
    threads of the winner's refit, default every core).

    ``data`` is needed only for a run made from an in-memory DataFrame (the winner's
    curves refit the model); pass the same DataFrame.
    """
    from tuner.results.html_report import write_report
    from tuner.workflow.derived import ensure_scores

    store = open_storage(storage, create=False)
    config = require_config(store, run)
    threads = cores.refit_threads(n_jobs)
    note = ensure_scores(store, config, n_jobs=threads) if data is None else None
    return str(write_report(store, config, out, data=data, n_jobs=threads, note=note))


def export(out: str, *, run: str | None = None, storage: str | None = None, model: str | None = None,
           onnx: bool = False, data: object = None, n_jobs: int | None = None,
           trust_modules: tuple[str, ...] = (), importance: bool = False) -> LoadedModel:
    """``tuner export`` from Python: write the run's final model (the winner, or family ``model``'s
    best; refit on all training rows when the run does not keep it) to the artifact folder ``out``
    and return it loaded (``tuner.load(out)``).

    ``data``: the run's table, for a run made from an in-memory DataFrame (its rows cannot be
    reloaded from the storage); ``n_jobs``: threads of the refit (default every core);
    ``trust_modules``: packages of a plug-in family whose classes the model file may hold.
    """
    from tuner.deploy.artifact import load
    from tuner.deploy.export import export_model

    export_model(out, run=run, storage=storage, family=model, onnx=onnx, n_jobs=cores.refit_threads(n_jobs),
                 data=as_pandas(data), trust_modules=trust_modules, importance=importance)
    return load(out, trust_modules=trust_modules)


def best_model(*, run: str | None = None, storage: str | None = None, model: str | None = None,
               data: object = None, n_jobs: int | None = None) -> LoadedModel:
    """The fitted winner of a stored run (or family ``model``'s best) in one call, refit in memory
    on all its training rows: a ``LoadedModel`` like ``tuner.load`` gives (``predict``,
    ``predict_proba``, ``card``, ``pipeline``), without writing a folder. ``data`` as for ``export``.
    """
    from tuner.deploy.artifact import ArtifactError, load
    from tuner.deploy.artifact.loaded_model import LoadedModel
    from tuner.deploy.export import kept_for, refit_best

    kept = kept_for(run=run, storage=storage, family=model)[2]
    if kept is not None:  # the run's final model (tuner.deploy.kept_model): no refit
        try:
            return load(kept["path"])
        except ArtifactError:  # e.g. a plug-in family's types, which load refuses without trust: refit
            pass
    result = refit_best(run=run, storage=storage, family=model, n_jobs=cores.refit_threads(n_jobs),
                        data=as_pandas(data))
    return LoadedModel(None, result.card, result.fitted)


def importance(*, run: str | None = None, storage: str | None = None, model: str | None = None,
               data: object = None, repeats: int = 5, n_jobs: int | None = None) -> pd.DataFrame:
    """Permutation importance of each column for the run's winner (or family ``model``'s best):
    ``column``, ``mean``, ``std`` (how much worse the run's metric gets when the column is
    shuffled on held-out rows), most important first; ``attrs`` say where it was measured.
    ``data`` as for ``export``."""
    from tuner.data.dataset import load_split_for_run
    from tuner.deploy.export import choose_row
    from tuner.results.importance import permutation_importances

    store = open_storage(storage, create=False)
    config = require_config(store, run)
    row = choose_row(lb.build(store, config), model, config.run)
    train, test = load_split_for_run(config, as_pandas(data))
    found = permutation_importances(config, row["model"], row["params"], train, test,
                                    n_jobs=cores.refit_threads(n_jobs), repeats=repeats)
    frame = pd.DataFrame(found["columns"], columns=["column", "mean", "std"])
    frame.attrs.update({k: v for k, v in found.items() if k != "columns"})
    return frame


def runs(*, storage: str | None = None) -> list[str]:
    """Names of the runs in ``storage``, oldest first."""
    return [c.run for c in list_runs(open_storage(storage, create=False))]


__all__ = ["tune", "leaderboard", "report", "runs", "export", "best_model", "importance", "TunerError"]
