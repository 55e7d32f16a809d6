"""The Optuna driver: one study per family in one storage, families interleaved, budgets
respected, every trial recorded (complete, pruned or failed with its reason)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
import traceback
import warnings

import numpy as np
import optuna
import threadpoolctl
from optuna.trial import TrialState

import search_spaces
from search_spaces import SpaceContext
from search_spaces.portfolio import portfolio

from tuner.execution import budget
from tuner.data import preprocessing
from tuner.execution import cores, threads, worker
from tuner.config import RunConfig
from tuner.data.dataset import Dataset
from tuner.evaluation.epoch_pruning import EpochPruner, accepts_epoch_callback
from tuner.evaluation.pruning import FoldPruner
from tuner.evaluation.estimator import build_estimator, space_context
from tuner.execution.family_state import FamilyState
from tuner.execution.fit_watchdog import FitTimeLimit, call_with_limit
from tuner.errors import TunerError
from tuner.evaluation.cross_validation import evaluate_fold, score_folds, summarise
from tuner.evaluation.folds import folds_for_run
from tuner.search import space_file
from tuner.search.run_setup import schema_of
from tuner.storage import out_of_fold, trial_writes
from tuner.storage.runs import family_study_name

DEFAULT_TRIALS = 20
# Under a clock no trial may take more than this share of it (stopped between folds when
# its measured fold time says it would), and a trial stopped by the clock may end at most
# OVERRUN_SHARE of it late; a family whose trials are stopped this many times before it
# has a result is too slow for the budget and is set aside.
TRIAL_SHARE = 0.25
OVERRUN_SHARE = 0.04
MAX_CAPPED_WITHOUT_RESULT = 2


class _OutOfTime(Exception):
    """The invocation's time budget ran out in the middle of a trial."""


class _OverCap(Exception):
    """The trial would take more than its share of the time budget."""


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
        """Run ``trial`` (claimed by ``tuner.execution.budget.claim``; asked here if None) to its end.

        Under a clock the trial is stopped between folds once the next fold would end past
        the deadline (unless no family of the run has a result yet: a run must end with a
        model), or once it would take more than ``TRIAL_SHARE`` of the clock.
        """
        if trial is None:
            trial = fam.study.ask()
        study, space, cfg = trial.study, fam.space, self.config  # the stored study, or a worker's in-memory one
        start = time.monotonic()
        clock = self.clock_s()
        cap = clock * TRIAL_SHARE if clock else None
        slack = clock * OVERRUN_SHARE if clock else 0.0
        folds_done = 0
        model_s = 0.0
        epochs = None
        scores: dict[int, float] = {}  # fold → score: stored with the result (tuner.storage.trial_writes)
        noted: dict = {}  # the last fold's warnings, stored with the result

        def stopped_early(why: str) -> None:  # pruned, or stopped by the clock: PRUNED with its reason
            trial_writes.finish(study, trial, TrialState.PRUNED, attrs={
                **noted, "stopped": why, "model_time_s": model_s}, intermediate=scores)

        try:
            with trial_writes.params_held(trial):
                asked = space_file.wrap(trial, cfg.space.get(fam.name))  # --space overrides, if any
                preprocessing.suggest(asked, self.ctx, space.preprocessing, self.schema, cfg.y_min, bool(cfg.weights))
                space.suggest(asked, self.ctx)
            params = trial.params
            ctx = self._trial_context()

            # one pipeline a trial, refitted fold after fold: fitting forgets the previous fold
            # (tests/search_spaces/test_search_spaces.py checks every family), and a new one costs a build a fold
            estimator = build_estimator(cfg, fam.name, params, ctx, self.schema)
            epochs = EpochPruner(study, trial) if accepts_epoch_callback(estimator) else None
            results = []
            per_fold = None  # seconds a fold of this trial takes, once one has run
            fewer = ctx.n_jobs < self.ctx.n_jobs  # a busy machine: fewer OpenMP / BLAS threads too
            limits = (lambda: threadpoolctl.threadpool_limits(limits=ctx.n_jobs)) if fewer else contextlib.nullcontext
            for i, fold in enumerate(self.folds):
                if i > 0:
                    now = time.monotonic()
                    per_fold = (now - start) / i
                    if deadline is not None and (fam.has_result() or others_have_result) and (
                            now > deadline or now + per_fold > deadline + slack):
                        raise _OutOfTime
                    if cap is not None and (now - start) + per_fold * (len(self.folds) - i) > cap and (
                            fam.has_result() or others_have_result):
                        raise _OverCap(f"would take ~{per_fold * len(self.folds):.0f}s, more than "
                                       f"{TRIAL_SHARE:.0%} of the {clock:g}s budget")
                # the first fold's epochs are compared with earlier trials' (tuner.evaluation.epoch_pruning)
                fit_params = {"model__epoch_callback": epochs} if epochs is not None and i == 0 else {}
                # inside the fit too: the wait for the fold ends at the limit, whatever it runs (tuner.execution.fit_watchdog)
                limited = fam.has_result() or others_have_result
                until_deadline = deadline + slack if (limited and deadline is not None) else None
                until_cap = start + cap if (limited and cap is not None) else None
                until = min((u for u in (until_deadline, until_cap) if u is not None), default=None)
                fold_start = time.monotonic()
                try:
                    # the training rows' scores (overfitting gap) from the first K folds, not every repeat
                    with limits():
                        result, notes = call_with_limit(
                            lambda: evaluate_fold(lambda: estimator, self.ds.X, self.ds.y, fold, i, cfg.task,
                                                  len(cfg.classes), fit_params, score_train=i < cfg.cv,
                                                  headline=cfg.metric, weights=self.ds.weights), until,
                            expected_s=per_fold, threads=ctx.n_jobs)
                except FitTimeLimit:
                    model_s += time.monotonic() - fold_start  # all of it inside the model
                    if until_deadline is not None and until == until_deadline:
                        raise _OutOfTime from None
                    raise _OverCap(f"stopped inside fold {i + 1} at {cap:.0f}s, {TRIAL_SHARE:.0%} of the "
                                   f"{clock:g}s budget") from None
                except BaseException:  # the fold failed (or was interrupted) after time in its model
                    model_s += time.monotonic() - fold_start
                    raise
                model_s += result.model_time_s
                if epochs is not None and i == 0:
                    epochs.save()
                value = result.scores[cfg.metric]
                if not math.isfinite(value):
                    raise ValueError(f"{cfg.metric} is not finite on fold {i}")
                results.append(result)
                folds_done += 1
                if notes:
                    noted["warnings"] = notes[:3]
                scores[i] = value
                # a finished trial is kept; FoldPruner (_pruner) reads the scores from memory
                if i < len(self.folds) - 1 and study.pruner.prune_values(study, trial.number, scores):
                    raise optuna.TrialPruned()
            kept = self._kept_predictions(fam, results)  # before score_folds lets them go
            score_folds(results, cfg.task, len(cfg.classes))  # every metric, all folds at once
            summary = summarise(results)
            summary["duration_s"] = time.monotonic() - start
            summary["model_time_s"] = model_s
            fam.last_value = summary["metrics"][cfg.metric]["mean"]
            study.pruner.note_complete(study, fam.last_value, scores)
            if kept is not None and fam.note_top(fam.last_value, cfg.direction == "maximize"):
                summary[out_of_fold.TRIAL_ATTR] = out_of_fold.pack(kept)
            trial_writes.finish(study, trial, TrialState.COMPLETE, fam.last_value, {**noted, **summary}, scores)
            state = "complete"
        except optuna.TrialPruned:
            at_epoch = epochs is not None and epochs.pruned_at is not None and folds_done == 0
            stopped_early(f"pruned at epoch {epochs.pruned_at + 1} of the first fold" if at_epoch
                          else f"pruned after {folds_done} fold(s)")
            state = "pruned"
        except _OutOfTime:
            stopped_early("time budget reached")
            state = "stopped"
        except _OverCap as exc:
            stopped_early(f"time cap: {exc}")
            state = "stopped"
            fam.capped += 1
            if not fam.has_result() and fam.capped >= MAX_CAPPED_WITHOUT_RESULT:
                fam.set_aside(f"too slow for the time budget ({fam.capped} trials stopped by the time cap)")
        except KeyboardInterrupt:
            trial_writes.finish(study, trial, TrialState.FAIL, attrs={
                "fail_reason": "interrupted by the user", "model_time_s": model_s}, intermediate=scores)
            raise
        except Exception as exc:  # a failed trial is recorded with its reason; the run goes on
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500]
            trial_writes.finish(study, trial, TrialState.FAIL, attrs={
                **noted, "fail_reason": reason, "traceback": traceback.format_exc()[-4000:], "model_time_s": model_s},
                intermediate=scores)
            state = "failed"
        fam.record(state, time.monotonic() - start)  # the one set-aside rule (tuner.execution.family_state)
        return state

    def _trial_context(self) -> SpaceContext:
        """The space context of the next trial: its models get the cores other processes leave
        free (``tuner.execution.threads``), at most this worker's share."""
        n = threads.fit_threads(self.ctx.n_jobs)
        return self.ctx if n == self.ctx.n_jobs else dataclasses.replace(self.ctx, n_jobs=n)

    def _kept_predictions(self, fam: FamilyState, results) -> np.ndarray | None:
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
