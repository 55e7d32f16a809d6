"""One trial: run its folds (``evaluate``), say how it ended as a plain ``Outcome``, and store that
outcome in one place (``record``).

A trial ends complete (every fold scored), pruned (behind the family's best on the folds seen:
``tuner.evaluation.pruning``, or per epoch: ``tuner.evaluation.epoch_pruning``), stopped (the clock
ran out, or it would take more than ``TRIAL_SHARE`` of the clock, ``FIRST_TRIAL_SHARE`` for a
family's first trial), failed (an error, with its
reason and traceback) or interrupted (Ctrl-C / SIGTERM: stored as failed, then raised again). The
driver counts the outcome in the family's state (``tuner.execution.family_state``), which owns the
rules that set a family aside.

Under a clock the trial is stopped between folds once the next fold would end past the deadline
(unless no family of the run has a result yet: a run must end with a model), or once it would take
more than ``TRIAL_SHARE`` of the clock; inside a fold, the wait ends at the same limits
(``tuner.execution.fit_watchdog``).
"""

from __future__ import annotations

import contextlib
import math
import time
import traceback
from dataclasses import dataclass, field

import optuna
import threadpoolctl
from optuna.trial import TrialState

from tuner.data import preprocessing
from tuner.evaluation.cross_validation import evaluate_fold, score_folds, summarise
from tuner.evaluation.epoch_pruning import EpochPruner, accepts_epoch_callback
from tuner.evaluation.estimator import build_estimator
from tuner.execution.fit_watchdog import FitTimeLimit, call_with_limit
from tuner.search import space_file
from tuner.storage import out_of_fold, trial_writes

# Under a clock no trial may take more than this share of it (stopped between folds when its
# measured fold time says it would), and a trial stopped by the clock may end at most
# OVERRUN_SHARE of it late.
TRIAL_SHARE = 0.25
OVERRUN_SHARE = 0.04
# A family's first trial (its enqueued start point, the cheap defaults) may take up to this share
# of the clock while the family has no result and none of its trials was stopped by the cap yet:
# a family whose one cheap configuration fits in the clock then ends with a result, instead of
# being set aside because its first two trials each took a little over TRIAL_SHARE.
FIRST_TRIAL_SHARE = 0.5


def trial_share(fam) -> float:
    """The share of the clock a trial of ``fam`` may take (``FIRST_TRIAL_SHARE`` for its first
    trial, while it has no result and no trial of it was capped; else ``TRIAL_SHARE``)."""
    return FIRST_TRIAL_SHARE if not fam.has_result() and not fam.capped else TRIAL_SHARE

_STATES = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "stopped": TrialState.PRUNED,
           "failed": TrialState.FAIL, "interrupted": TrialState.FAIL}


@dataclass
class Outcome:
    """How a trial ended, before anything is stored."""

    state: str  # "complete" | "pruned" | "stopped" | "failed" | "interrupted"
    value: float | None = None  # the mean CV score of a complete trial
    attrs: dict = field(default_factory=dict)  # user attributes to store with it
    scores: dict[int, float] = field(default_factory=dict)  # fold → score
    capped: bool = False  # stopped because it would take more than TRIAL_SHARE of the clock
    interrupt: BaseException | None = None  # Ctrl-C / SIGTERM: raised again once the trial is stored


class _OutOfTime(Exception):
    """The invocation's time budget ran out in the middle of a trial."""


class _OverCap(Exception):
    """The trial would take more than its share of the time budget."""


def evaluate(driver, fam, trial: optuna.Trial, deadline: float | None, *, others_have_result: bool) -> Outcome:
    """Run ``trial`` of family ``fam`` on the driver's folds (``deadline``: ``time.monotonic()``-based)."""
    study, space, cfg = trial.study, fam.space, driver.config
    start = time.monotonic()
    clock = driver.clock_s()
    share = trial_share(fam)
    cap = clock * share if clock else None
    slack = clock * OVERRUN_SHARE if clock else 0.0
    out = Outcome("failed")
    epochs = None
    model_s = 0.0
    try:
        with trial_writes.params_held(trial):
            asked = space_file.wrap(trial, cfg.space.get(fam.name))  # --space overrides, if any
            preprocessing.suggest(asked, driver.ctx, space.preprocessing, driver.schema, cfg.y_min, bool(cfg.weights))
            space.suggest(asked, driver.ctx)
        ctx = driver.trial_context()

        # one pipeline a trial, refitted fold after fold: fitting forgets the previous fold
        # (tests/spaces/test_search_spaces.py checks every family), and a new one costs a build a fold
        estimator = build_estimator(cfg, fam.name, trial.params, ctx, driver.schema)
        epochs = EpochPruner(study, trial) if accepts_epoch_callback(estimator) else None
        results = []
        per_fold = None  # seconds a fold of this trial takes, once one has run
        fewer = ctx.n_jobs < driver.ctx.n_jobs  # a busy machine: fewer OpenMP / BLAS threads too
        limits = (lambda: threadpoolctl.threadpool_limits(limits=ctx.n_jobs)) if fewer else contextlib.nullcontext
        limited = lambda: fam.has_result() or others_have_result  # noqa: E731 — only then may the clock stop it
        for i, fold in enumerate(driver.folds):
            if i > 0:
                now = time.monotonic()
                per_fold = (now - start) / i
                if deadline is not None and limited() and (now > deadline or now + per_fold > deadline + slack):
                    raise _OutOfTime
                if cap is not None and limited() and (now - start) + per_fold * (len(driver.folds) - i) > cap:
                    raise _OverCap(f"would take ~{per_fold * len(driver.folds):.0f}s, more than "
                                   f"{share:.0%} of the {clock:g}s budget")
            # the first fold's epochs are compared with earlier trials' (tuner.evaluation.epoch_pruning)
            fit_params = {"model__epoch_callback": epochs} if epochs is not None and i == 0 else {}
            # inside the fit too: the wait for the fold ends at the limit, whatever it runs (tuner.execution.fit_watchdog)
            until_deadline = deadline + slack if (limited() and deadline is not None) else None
            until_cap = start + cap if (limited() and cap is not None) else None
            until = min((u for u in (until_deadline, until_cap) if u is not None), default=None)
            fold_start = time.monotonic()
            try:
                # the training rows' scores (overfitting gap) from the first K folds, not every repeat
                with limits():
                    result, notes = call_with_limit(
                        lambda: evaluate_fold(lambda: estimator, driver.ds.X, driver.ds.y, fold, i, cfg.task,
                                              len(cfg.classes), fit_params, score_train=i < cfg.cv,
                                              headline=cfg.metric, weights=driver.ds.weights), until,
                        expected_s=per_fold, threads=ctx.n_jobs)
            except FitTimeLimit:
                model_s += time.monotonic() - fold_start  # all of it inside the model
                if until_deadline is not None and until == until_deadline:
                    raise _OutOfTime from None
                raise _OverCap(f"stopped inside fold {i + 1} at {cap:.0f}s, {share:.0%} of the "
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
            if notes:
                out.attrs["warnings"] = notes[:3]  # the last fold's warnings
            out.scores[i] = value
            # a finished trial is kept; FoldPruner (tuner.evaluation.pruning) reads the scores from memory
            if i < len(driver.folds) - 1 and study.pruner.prune_values(study, trial.number, out.scores):
                raise optuna.TrialPruned()
        kept = driver.kept_predictions(fam, results)  # before score_folds lets them go
        score_folds(results, cfg.task, len(cfg.classes), cfg.metric)  # every metric, all folds at once
        summary = summarise(results)
        summary["duration_s"] = time.monotonic() - start
        summary["model_time_s"] = model_s
        out.value = summary["metrics"][cfg.metric]["mean"]
        fam.last_value = out.value
        study.pruner.note_complete(study, out.value, out.scores)
        if kept is not None and fam.note_top(out.value, cfg.direction == "maximize"):
            summary[out_of_fold.TRIAL_ATTR] = out_of_fold.pack(kept)
        out.state = "complete"
        out.attrs.update(summary)
        return out
    except optuna.TrialPruned:
        at_epoch = epochs is not None and epochs.pruned_at is not None and not out.scores
        out.state, out.attrs["stopped"] = "pruned", (
            f"pruned at epoch {epochs.pruned_at + 1} of the first fold" if at_epoch
            else f"pruned after {len(out.scores)} fold(s)")
    except _OutOfTime:
        out.state, out.attrs["stopped"] = "stopped", "time budget reached"
    except _OverCap as exc:
        out.state, out.attrs["stopped"], out.capped = "stopped", f"time cap: {exc}", True
    except KeyboardInterrupt as exc:
        out.state, out.attrs, out.interrupt = "interrupted", {"fail_reason": "interrupted by the user"}, exc
    except Exception as exc:  # a failed trial is recorded with its reason; the run goes on
        message = str(exc).strip()
        out.attrs["fail_reason"] = f"{type(exc).__name__}: {message.splitlines()[0] if message else ''}"[:500]
        out.attrs["traceback"] = traceback.format_exc()[-4000:]
    out.attrs["model_time_s"] = model_s
    return out


def record(study: optuna.Study, trial: optuna.Trial, outcome: Outcome) -> None:
    """Store how the trial ended, in one transaction (``tuner.storage.trial_writes``): its state,
    value, fold scores and attributes (a pruned or stopped trial is PRUNED with its reason)."""
    trial_writes.finish(study, trial, _STATES[outcome.state],
                        outcome.value if outcome.state == "complete" else None, outcome.attrs, outcome.scores)


__all__ = ["Outcome", "evaluate", "record", "trial_share", "TRIAL_SHARE", "FIRST_TRIAL_SHARE", "OVERRUN_SHARE"]
