"""One run, as every entry point drives it: ``tuner run`` and ``tuner.tune`` (and the scikit-learn
estimators over it) ``begin`` a run, ``tune`` it and ``finish`` it; ``tuner worker`` ``join``s one,
works through its driver and finishes without keeping a model; ``tuner run --create-only`` records
the budget. The sequence lives here once: validate, open the storage, split off the held-out part,
start or continue the run, plan the cores, tune, then write what is derived from the trials
(``tuner.workflow.derived``: the ensemble selection, held-out scores) and the final model
(``tuner.deploy.final_fit``). Printing, progress and signals stay with the entry points.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from tuner.config import RunConfig
from tuner.data.dataset import Dataset
from tuner.deploy import final_fit
from tuner.errors import TunerError
from tuner.execution import budget, cores, plateau
from tuner.execution.family_state import FamilyState
from tuner.results import holdout
from tuner.results import leaderboard as lb
from tuner.search.driver import DEFAULT_TRIALS, Driver
from tuner.search.run_setup import make_config, start_run
from tuner.storage.runs import load_config, open_storage
from tuner.workflow import derived


@dataclass
class Finished:
    rows: list[dict]  # the leaderboard, best first
    kept: final_fit.Kept | None  # the final model (None: a worker's end, or no completed trial)


@dataclass
class TuningRun:
    store: object
    url: str
    config: RunConfig
    ds: Dataset  # the training part: all the trials ever see
    test_ds: Dataset | None = None  # the held-out part (--test-size), scored once at the end
    existed: bool = True  # continuing a run already in the storage
    started_at: float = field(default_factory=time.time)  # the epoch the clock counts from
    timeout: float | None = None
    trials: int | None = None
    n_jobs: int | None = None
    clocked: bool = False  # a clock and no trial count: the clocked core plan and folds
    early_stop: bool = plateau.DEFAULT  # a clocked run may end once its leaderboard is flat

    @classmethod
    def begin(cls, full: Dataset, *, url: str, run: str, metric=None, models=None, cv=None, seed=None,
              cv_repeats=None, test_size=None, gap=None, space=None, trials: int | None = None,
              timeout: float | None = None, n_jobs: int | None = None,
              started_at: float | None = None, early_stop: bool | None = None,
              threshold_metric: str | None = None) -> TuningRun:
        """Create the run for ``full`` (all rows of the table, prepared) or check this call may
        continue it; the options are checked against the data before anything is written.
        ``early_stop`` (None: ``tuner.execution.plateau.DEFAULT``): under a clock alone, the trials
        may end before the clock once the leaderboard is flat."""
        if early_stop and (timeout is None or trials is not None):
            raise TunerError("early stopping ends a run bounded by a clock alone: give a timeout and no trial count "
                             "(tuner run --timeout SECONDS --early-stop)")
        make_config(full, run=run, metric=metric, models=models, cv=cv, seed=seed, cv_repeats=cv_repeats,
                    gap=gap, space=space, threshold_metric=threshold_metric)
        store = open_storage(url, create=True)
        ds, test_ds, fraction = holdout.resolve_split(store, full, run=run, test_size=test_size, seed=seed, gap=gap)
        existed = load_config(store, run) is not None
        clocked = timeout is not None and trials is None
        config = start_run(store, ds, run=run, metric=metric, models=models, cv=cv, seed=seed,
                           cv_repeats=cv_repeats, test_size=fraction, clocked=clocked, gap=gap, space=space,
                           threshold_metric=threshold_metric)
        return cls(store, url, config, ds, test_ds, existed, time.time() if started_at is None else started_at,
                   timeout, trials, n_jobs, clocked, plateau.DEFAULT if early_stop is None else bool(early_stop))

    @classmethod
    def join(cls, store, url: str, config: RunConfig, ds: Dataset, *, timeout: float | None = None,
             trials: int | None = None, n_jobs: int | None = None) -> TuningRun:
        """A worker's share of a recorded run: the clocked core plan (a worker is there for throughput)."""
        return cls(store, url, config, ds, None, True, time.time(), timeout, trials, n_jobs, clocked=True)

    @cached_property
    def split(self) -> cores.CorePlan:
        """Processes × threads for the trials (``tuner.execution.cores.plan``)."""
        return cores.plan(self.n_jobs, clocked=self.clocked, n_families=len(self.config.families))

    def driver(self, *, progress=None, trial_timeout: float | None = None, salt: str = "") -> Driver:
        return Driver(self.store, self.config, self.ds, n_jobs=self.split.workers, threads=self.split.threads,
                      progress=progress, trial_timeout=trial_timeout, salt=salt)

    def tune(self, *, progress=None, trial_timeout: float | None = None) -> list[FamilyState]:
        """The trials: this invocation's budget, with the final fit's reserve kept off the clock."""
        return self.driver(progress=progress, trial_timeout=trial_timeout).run(
            self.trials, final_fit.tuning_s(self.timeout), started_at=self.started_at, early_stop=self.early_stop)

    def stopped_early(self) -> str | None:
        """Why this invocation's trials ended before the clock (``early_stop``), if they did."""
        return budget.stopped_early(self.store, self.config.run) if self.early_stop and self.clocked else None

    def record_budget(self) -> budget.Budget:
        """``--create-only``: the families' studies and the budget, for workers to spend."""
        families = Driver(self.store, self.config, self.ds).open_families()
        trials = DEFAULT_TRIALS if self.trials is None and self.timeout is None else self.trials
        return budget.add(self.store, self.config, {f.name: f.study for f in families}, trials=trials,
                          timeout=self.timeout, start_clock=False, early_stop=self.early_stop)

    def finish(self, families: list[FamilyState], *, keep_model: bool = True) -> Finished:
        """Write what is derived from the trials: the ensemble selection; then (``keep_model``) the
        final model, fitted and kept inside what is left of the clock; then, with a test part, the
        held-out scores (after the clock: one refit per family, the final model's reused)."""
        studies = {f.name: f.study for f in families}
        derived.store_ensemble(self.store, self.config, studies)
        rows = lb.build(self.store, self.config, studies=studies)
        kept = None
        if keep_model:  # the model first: it is what the clock is for
            deadline = None if self.timeout is None else self.started_at + self.timeout
            kept = final_fit.fit_and_keep(self.store, self.url, self.config, self.ds, rows, timeout=self.timeout,
                                          deadline_epoch=deadline, n_jobs=cores.refit_threads(self.n_jobs))
        if self.test_ds is not None:  # each family's best refit on the training part, scored on the test part once
            reuse = (kept.family, kept.params, kept.fitted) if kept is not None and kept.fitted is not None else None
            derived.score_best(self.store, self.config, self.ds, self.test_ds, n_jobs=self.split.cores, fitted=reuse)
            rows = lb.build(self.store, self.config, studies=studies)
        return Finished(rows, kept)


__all__ = ["TuningRun", "Finished"]
