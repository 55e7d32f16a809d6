"""The Optuna driver: one study per family in one storage, families interleaved, budgets
respected, every trial recorded (complete, pruned or failed with its reason)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
import warnings

import numpy as np
import optuna
import threadpoolctl
from optuna.trial import TrialState

import search_spaces
from search_spaces import SpaceContext
from search_spaces.portfolio import portfolio
from tuner.config import RunConfig
from tuner.data import preprocessing
from tuner.data.dataset import Dataset
from tuner.errors import TunerError
from tuner.evaluation.estimator import space_context
from tuner.evaluation.folds import folds_for_run
from tuner.evaluation.pruning import FoldPruner
from tuner.execution import budget, cores, threads, worker
from tuner.execution.family_state import FamilyState
from tuner.search import space_file
from tuner.search import trial as trial_run
from tuner.search.run_setup import schema_of
from tuner.storage import out_of_fold
from tuner.storage.runs import family_study_name

DEFAULT_TRIALS = 20


def _sampler(config: RunConfig, family: str, n_existing: int, salt: str = "") -> optuna.samplers.BaseSampler:
    # A fresh seed per invocation: a resumed run must not replay the same random start.
    # Concurrent workers add a salt of their own, or they would all propose the same start.
    digest = hashlib.sha256(f"{config.seed}:{family}:{n_existing}{':' + salt if salt else ''}".encode()).digest()
    seed = int.from_bytes(digest[:4], "little")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=8)


def _pruner() -> optuna.pruners.BasePruner:
    # Per-fold scores are paired across trials: a trial clearly behind the family's best on
    # the folds seen so far, or worse by the Wilcoxon signed-rank test, stops (tuner.evaluation.pruning).
    return FoldPruner()


def open_family_study(storage, config: RunConfig, family: str, ctx: SpaceContext, *, salt: str = "") -> optuna.Study:
    name = family_study_name(config.run, family)
    try:
        existing = optuna.load_study(study_name=name, storage=storage)
        n_existing = len(existing.get_trials(deepcopy=False))
    except KeyError:
        n_existing = 0
    if n_existing == 0:  # created (and its defaults enqueued) by one process only
        with budget.run_lock(storage, config.run):
            return _create_family_study(storage, config, family, ctx, salt)
    return optuna.create_study(
        study_name=name, storage=storage, direction=config.direction, load_if_exists=True,
        sampler=_sampler(config, family, n_existing, salt), pruner=_pruner(),
    )


def _create_family_study(storage, config: RunConfig, family: str, ctx: SpaceContext, salt: str) -> optuna.Study:
    name = family_study_name(config.run, family)
    try:
        n_existing = len(optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False))
    except KeyError:
        n_existing = 0
    study = optuna.create_study(
        study_name=name, storage=storage, direction=config.direction, load_if_exists=True,
        sampler=_sampler(config, family, n_existing, salt), pruner=_pruner(),
    )
    if n_existing == 0:
        space = search_spaces.get_space(family)
        schema = schema_of(config)
        prep = preprocessing.defaults(ctx, space.preprocessing, schema, config.y_min, bool(config.weights))
        # the defaults first, then the family's learned portfolio (search_spaces.portfolio), then TPE
        overrides = config.space.get(family)
        for start in [space.defaults(ctx), *portfolio(family, config.task)]:
            study.enqueue_trial(space_file.project({**start, **prep}, overrides), skip_if_exists=True)
        study.set_user_attr("family", family)
        study.set_user_attr("run", config.run)
    return study


class Driver:
    """Runs the trials of one invocation of ``tuner run``."""

    def __init__(self, storage, config: RunConfig, ds: Dataset, *, n_jobs: int = 1, progress=None,
                 threads: int | None = None, salt: str = "", trial_timeout: float | None = None):
        """``n_jobs``: worker processes (1: this one); each model gets ``threads`` threads
        (default: the cores shared out between the processes, ``tuner.execution.cores.threads_per_worker``).
        ``trial_timeout``: seconds after which a trial is stopped, whatever it is doing: trials
        then run in supervised helper processes (``tuner.execution.local_workers``)."""
        self.trial_timeout = trial_timeout
        self.storage, self.config, self.ds = storage, config, ds
        if config.test_size and len(ds.y) != config.n_rows:  # the held-out rows must never be tuned on
            raise TunerError(f"run {config.run!r} holds out a test set: tune on its {config.n_rows} training rows "
                             f"(tuner.data.dataset.load_for_run), not on {len(ds.y)} rows")
        self.n_jobs = n_jobs
        self.salt = salt
        self.ctx = space_context(config, threads if threads is not None else cores.threads_per_worker(n_jobs))
        self.schema = schema_of(config)
        self.folds = folds_for_run(config, ds)
        self.progress = progress

    # -- one trial ---------------------------------------------------------------------
    def run_trial(self, fam: FamilyState, deadline: float | None, trial: optuna.Trial | None = None, *,
                  others_have_result: bool = True) -> str:
        """Run ``trial`` (claimed by ``tuner.execution.budget.claim``; asked here if None) to its end
        (``tuner.search.trial``), store how it ended and count it in the family's state; the state."""
        if trial is None:
            trial = fam.study.ask()
        start = time.monotonic()
        outcome = trial_run.evaluate(self, fam, trial, deadline, others_have_result=others_have_result)
        trial_run.record(trial.study, trial, outcome)  # the stored study, or a worker's in-memory one
        if outcome.interrupt is not None:
            raise outcome.interrupt
        fam.record(outcome.state, time.monotonic() - start, capped=outcome.capped)  # the set-aside rules
        return outcome.state

    def trial_context(self) -> SpaceContext:
        """The space context of the next trial: its models get the cores other processes leave
        free (``tuner.execution.threads``), at most this worker's share."""
        n = threads.fit_threads(self.ctx.n_jobs)
        return self.ctx if n == self.ctx.n_jobs else dataclasses.replace(self.ctx, n_jobs=n)

    def kept_predictions(self, fam: FamilyState, results) -> np.ndarray | None:
        """The trial's out-of-fold predictions for the ensemble, when it ran every fold and they fit."""
        if len(results) != len(self.folds):
            return None
        column = 1 if self.config.task == "regression" else 2  # FoldResult.outputs: (y, pred, proba, w)
        kept = out_of_fold.trial_predictions([r.outputs[column] for r in results], self.config.task)
        return kept if out_of_fold.fits(kept.size) else None

    def memory_sampler(self, family: str, n_stored: int) -> optuna.samplers.BaseSampler:
        """A sampler for a worker's in-memory study of ``family`` (``tuner.execution.write_behind``)."""
        return _sampler(self.config, family, n_stored, f"{self.salt}:memory")

    def clock_s(self) -> float | None:
        """The run's time budget in seconds (None: no clock), read once per invocation."""
        if not hasattr(self, "_clock_s"):
            self._clock_s = budget.read(self.storage, self.config).timeout_s
        return self._clock_s

    # -- the loop ----------------------------------------------------------------------
    def run(self, trials: int | None, timeout: float | None, *, started_at: float | None = None,
            early_stop: bool = False) -> list[FamilyState]:
        """Add ``trials`` complete trials per family and a ``timeout`` clock (running since
        ``started_at``, epoch seconds, default now) to the run's budget (``tuner.execution.budget``),
        then work on the run until its budget is spent (``early_stop``: or its leaderboard is flat,
        ``tuner.execution.plateau``)."""
        if trials is None and timeout is None:
            trials = DEFAULT_TRIALS
        families = self.open_families()
        spent = budget.add(self.storage, self.config, {f.name: f.study for f in families},
                           trials=trials, timeout=timeout, start_clock=True, started_at=started_at,
                           early_stop=early_stop)
        self.outcome = self.spend(families, deadline_epoch=spent.deadline)
        return families

    def open_families(self) -> list[FamilyState]:
        families = []
        for name in self.config.families:
            study = open_family_study(self.storage, self.config, name, self.ctx, salt=self.salt)
            done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            families.append(FamilyState(name, study, search_spaces.get_space(name), remaining=math.inf,
                                        completed=len(done), target=budget.target(study),
                                        top=[t.value for t in done if t.value is not None]))
        return families

    def spend(self, families: list[FamilyState], *, deadline_epoch: float | None = None,
              timeout: float | None = None, max_trials: int | None = None, on_trial=None, on_wait=None):
        """Run trials until the run's budget is spent (or this worker's ``timeout`` /
        ``max_trials``); in ``n_jobs`` local processes when ``n_jobs > 1``."""
        local = time.monotonic() + timeout if timeout else None
        if self.n_jobs > 1 or self.trial_timeout is not None:
            from tuner.execution.local_workers import run_local

            epoch = deadline_epoch if local is None else min(x for x in (deadline_epoch, time.time() + timeout) if x)
            return run_local(self, families, self.n_jobs, deadline_epoch=epoch, max_trials=max_trials,
                             progress=self.progress, trial_timeout=self.trial_timeout)

        shown: dict[str, float | None] = {}  # the best shown per family: re-read when a trial completes

        def report(fam, state, number):
            if self.progress is not None:
                if state == "complete" or fam.name not in shown:
                    shown[fam.name] = worker.best_value(fam.study)
                self.progress.update(fam.name, fam.done_now, shown[fam.name], state)
            if on_trial is not None:
                on_trial(fam, state, number)

        deadline = worker.to_monotonic(deadline_epoch)
        deadline = local if deadline is None else (deadline if local is None else min(deadline, local))
        # OpenMP / BLAS pools (HistGradientBoosting, numpy) get this process' model threads, as the
        # helpers do: an unbounded OpenMP pool on a busy machine spins and runs many times slower
        with threadpoolctl.threadpool_limits(limits=self.ctx.n_jobs):
            return worker.work(self, families, deadline=deadline, max_trials=max_trials, on_trial=report,
                               on_wait=on_wait)


__all__ = ["Driver", "TunerError", "DEFAULT_TRIALS"]
