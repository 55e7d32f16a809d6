"""Workers: the loop that claims and runs trials until the run's budget is spent.

A worker picks the next family with ``tuner.execution.scheduler`` (turns under trial counts; under
a clock alone, time shares by each family's chance of beating the leader; each local
process starts at a different family), claims one trial at a time under the run's lock
(``tuner.execution.budget``), runs it with a heartbeat (``tuner.execution.heartbeat``), and stops when every
family has its complete trials, the run's clock has run out, or the worker's own limit is
reached. A family whose remaining trials are all running elsewhere is not finished: the
worker waits, because one of them may be pruned, fail, or lose its worker and need a retry.

Several local processes, and ``--trial-timeout``: ``tuner.execution.local_workers``.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import optuna
from optuna.trial import TrialState

from tuner.config import RunConfig
from tuner.execution import budget, fit_watchdog, heartbeat, plateau, write_behind
from tuner.execution.family_state import MAX_CAPPED_WITHOUT_RESULT, FamilyState, too_slow
from tuner.execution.heartbeat import worker_id  # noqa: F401 — this process' "host:pid"
from tuner.storage.optuna_adapter import UpdateFinishedTrialError, storage_of, trial_id
from tuner.storage.runs import load_family_study

POLL_S = 1.0


class TrialRunner(Protocol):
    """What the loop needs of the search driver (``tuner.search.driver.Driver``), a layer above."""

    storage: object
    config: RunConfig
    ds: object  # the training part (tuner.data.dataset.Dataset), handed to helper processes

    def run_trial(self, fam: FamilyState, deadline: float | None, trial: optuna.Trial | None = None, *,
                  others_have_result: bool = True) -> str: ...

    def memory_sampler(self, family: str, n_stored: int) -> optuna.samplers.BaseSampler: ...

    def open_families(self) -> list[FamilyState]: ...


def best_value(study: optuna.Study) -> float | None:
    """The study's best value so far (None: no complete trial yet)."""
    try:
        return study.best_value
    except ValueError:
        return None


class Interrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler stopping the job): handled like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Interrupted()


def install_sigterm_handler():
    """Treat SIGTERM like Ctrl-C; returns the previous handler (None if it could not be set)."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        return None


@dataclass
class Outcome:
    """How a worker's loop ended."""

    reason: str  # "done" | "deadline" | "limit" | "set aside" | "flat" (tuner.execution.plateau)
    trials: int = 0  # trials this worker (or its processes) ran
    states: dict[str, int] = field(default_factory=dict)


def to_monotonic(deadline_epoch: float | None) -> float | None:
    if deadline_epoch is None:
        return None
    return time.monotonic() + (deadline_epoch - time.time())


# -- one worker, in this process --------------------------------------------------------
def work(driver: TrialRunner, families: list[FamilyState], *, deadline: float | None, max_trials: int | None = None, offset: int = 0,
         on_trial: Callable | None = None, on_wait: Callable | None = None,
         on_start: Callable | None = None, in_memory: bool = True) -> Outcome:
    """Claim and run trials until the budget is spent (``deadline`` is ``time.monotonic()``-based).

    ``on_start(fam, trial)`` before and ``on_trial(fam, state, trial_number)`` after every
    trial; ``on_wait(running)`` when the only trials left are running in other workers.
    ``in_memory``: under a clock alone, run the trials in memory and store them in batches
    (``tuner.execution.write_behind``); False: every trial is claimed from the storage.
    """
    try:
        with _setup_frozen():
            return _work(driver, families, deadline=deadline, max_trials=max_trials, offset=offset,
                         on_trial=on_trial, on_wait=on_wait, on_start=on_start, in_memory=in_memory)
    finally:
        fit_watchdog.release()  # an idle fit thread's OpenMP team slows every later fit (its docstring)


@contextlib.contextmanager
def _setup_frozen():
    """Keep what was set up before the trials (libraries, data, storage: most of the heap)
    out of the garbage collector's full passes while the trials run: each pass otherwise
    walks all of it. Unfrozen at the end; a caller's own freeze is left alone."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _work(driver, families, *, deadline, max_trials, offset, on_trial, on_wait, on_start, in_memory) -> Outcome:
    from tuner.execution.scheduler import FamilyScheduler

    n = len(families)
    order = [families[(offset + i) % n] for i in range(n)] if n else []
    for fam in families:  # as stored now (this invocation's budget was added after the families were opened)
        fam.target = budget.target(fam.study)
    # a clock and no trial counts: time goes where it pays (tuner.execution.scheduler); else turns
    by_time = deadline is not None and all(getattr(f, "target", None) is None for f in families)
    sched = FamilyScheduler(order, metric=driver.config.metric, direction=driver.config.direction, by_time=by_time)
    # a clock and no counts: trials in memory, stored in batches (tuner.execution.write_behind)
    in_memory = in_memory and by_time and write_behind.usable(driver.storage)
    # --early-stop: the run may end once its leaderboard is flat (tuner.execution.plateau)
    watch = plateau.Watch.of(driver.storage, driver.config, by_time=by_time)
    with (write_behind.attached(driver.storage, driver.config.run, families, driver.memory_sampler,
                                guard=_signals_deferred) if in_memory else contextlib.nullcontext()) as wb:
        return _loop(driver, families, order, sched, wb, deadline=deadline, max_trials=max_trials,
                     on_trial=on_trial, on_wait=on_wait, on_start=on_start, watch=watch)


def _loop(driver, families, order, sched, wb, *, deadline, max_trials, on_trial, on_wait, on_start,
          watch=None) -> Outcome:
    outcome = Outcome("done")
    full: set[str] = set()  # families whose last claim found every remaining slot running
    while True:
        if wb is not None:
            wb.flush_if_due()
        active = [f for f in order if f.active]
        if not active:
            outcome.reason = "done" if all(f.finished for f in families) else "set aside"
            return outcome
        if max_trials is not None and outcome.trials >= max_trials:
            outcome.reason = "limit"
            return outcome
        # past the deadline only while the run has no result at all: a run ends with a model
        if deadline is not None and time.monotonic() >= deadline and any(f.has_result() for f in families):
            outcome.reason = "deadline"
            return outcome
        if watch is not None and watch.check(families, wb.memory if wb is not None else
                                             {f.name: f.study for f in families}):
            outcome.reason = "flat"
            return outcome
        ran = None
        running_elsewhere = 0
        elsewhere: dict[str, int] = {}  # under a clock: first trials of families without a result, run by others
        if deadline is not None:
            for fam in active:  # before the order: another worker's first result makes a family tried
                if not fam.has_result():
                    elsewhere[fam.name] = _first_trial_elsewhere(wb.stored[fam.name] if wb is not None else fam.study,
                                                                 fam)
            active = [f for f in active if f.active]  # other workers' time-capped trials may set one aside
        for fam in sched.order(active):
            # Do not start a trial that is expected to overrun the budget once the family
            # already has a result; cheaper families may still fit.
            if deadline is not None and fam.has_result() and time.monotonic() + fam.expected_duration() > deadline:
                continue
            if elsewhere.get(fam.name):  # wait for its start point rather than run a costlier configuration beside it
                running_elsewhere += elsewhere[fam.name]
                continue
            if wb is not None and wb.runs_locally(fam.name):
                trial = fam.study.ask()
                try:
                    state, seconds = _run(driver, fam, trial, families, deadline, on_start, stored=False)
                finally:
                    wb.finished(fam.name, trial)
            else:
                stored = wb.stored[fam.name] if wb is not None else fam.study
                claim = _claim(driver, stored, look_first=fam.name in full)
                fam.completed = max(fam.completed, claim.complete)
                fam.target = claim.target
                if claim.status == "done":
                    fam.finished = True
                    continue
                if claim.status == "full":
                    full.add(fam.name)
                    running_elsewhere += claim.running
                    continue
                full.discard(fam.name)
                state, seconds = _run(driver, fam, claim.trial, families, deadline, on_start, stored=True)
                if wb is not None:
                    wb.stored_trial_ended(fam.name)
                trial = claim.trial
            sched.record(fam, seconds, state)
            sched.ran(fam)
            outcome.trials += 1
            outcome.states[state] = outcome.states.get(state, 0) + 1
            if on_trial is not None:
                on_trial(fam, state, trial.number)
            ran = fam
            break
        if ran is None:
            if not running_elsewhere:
                if any(f.active for f in families):
                    outcome.reason = "deadline"  # every family left would overrun the clock
                else:
                    outcome.reason = "done" if all(f.finished for f in families) else "set aside"
                return outcome
            if on_wait is not None:
                on_wait(running_elsewhere)
            sleep_s = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            time.sleep(sleep_s)


def _first_trial_elsewhere(stored: optuna.Study, fam: FamilyState) -> int:
    """Under a clock, for a family with no result in this worker: the number of its trials
    running in other workers (live processes), when it has no complete trial in the storage either.

    A family's first trial is its cheap start point (its enqueued defaults), given more of the
    clock (``tuner.search.trial.FIRST_TRIAL_SHARE``); another worker asking for a trial beside it
    would get a sampled configuration, often far costlier, stopped by the time cap, and two of
    those set the family aside before its start point has ended. A complete trial in the storage
    (another worker's) counts as the family's result here too, and its trials stopped by the time
    cap in the storage count toward the set-aside rule (``FamilyState.record``) in every worker."""
    trials = stored.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.PRUNED))
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    if complete:
        fam.completed = max(fam.completed, complete)
        return 0
    capped = sum(t.state == TrialState.PRUNED and str(t.user_attrs.get("stopped", "")).startswith("time cap")
                 for t in trials)
    if capped > fam.capped:
        fam.capped = capped
        if fam.capped >= MAX_CAPPED_WITHOUT_RESULT:
            fam.set_aside(too_slow(fam.capped))
            return 0
    return sum(t.state == TrialState.RUNNING and not heartbeat.process_gone(t.system_attrs.get(heartbeat.WORKER_ATTR))
               for t in trials)


def _claim(driver, study: optuna.Study, *, look_first: bool) -> budget.Claim:
    """``tuner.execution.budget.claim``, with Ctrl-C held back: a trial is claimed and known to us, or not claimed."""
    claimed = None
    try:
        with _signals_deferred():
            claim = budget.claim(driver.storage, driver.config.run, study, look_first=look_first)
            claimed = claim.trial
    except KeyboardInterrupt:  # held back until the claim was complete
        if claimed is not None:
            _record_interrupted(study, claimed)
        raise
    return claim


def _run(driver, fam, trial: optuna.Trial, families, deadline, on_start, *, stored: bool) -> tuple[str, float]:
    """Run ``trial`` of ``fam`` (a stored trial with a heartbeat); its state and seconds."""
    others = any(f.has_result() for f in families if f is not fam)
    started = time.monotonic()
    try:
        if on_start is not None:
            on_start(fam, trial)
        with (heartbeat.Heartbeat(driver.storage, trial_id(trial), first_beat=False) if stored
              else contextlib.nullcontext()):
            state = driver.run_trial(fam, deadline, trial, others_have_result=others)
    except UpdateFinishedTrialError:
        # Another worker saw no heartbeat for the grace period, failed this trial
        # and enqueued its retry: our result is dropped, the retry counts.
        state = "lost"
    except KeyboardInterrupt:
        _record_interrupted(trial.study, trial)  # if run_trial had no chance to
        raise
    except BaseException as exc:  # e.g. on_start could not report: the trial must not stay RUNNING
        _record_failed(trial.study, trial, f"the worker stopped: {type(exc).__name__}: {exc}"[:500])
        raise
    return state, time.monotonic() - started


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C / SIGTERM back for the duration of the block, then raise them."""
    received: list[int] = []

    def hold(signum, frame):
        received.append(signum)

    try:
        previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals cannot arrive here anyway
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            if received[0] == signal.SIGTERM and previous[signal.SIGTERM] is _on_sigterm:
                raise Interrupted()
            if received[0] == signal.SIGINT and previous[signal.SIGINT] is signal.default_int_handler:
                raise KeyboardInterrupt()
            signal.raise_signal(received[0])  # whatever the handler in place would have done


def _record_interrupted(study: optuna.Study, trial: optuna.Trial) -> None:
    """Record a claimed trial as failed by an interruption, unless it is already finished."""
    _record_failed(study, trial, "interrupted by the user")


def _record_failed(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """Record a claimed trial FAIL with ``reason``, unless it is already finished."""
    try:
        if storage_of(study).get_trial(trial_id(trial)).state == TrialState.RUNNING:
            trial.set_user_attr("fail_reason", reason)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    except (UpdateFinishedTrialError, ValueError):
        pass


# -- where a run stands -----------------------------------------------------------------
def standing(storage, config) -> list[dict]:
    """Per family: complete / pruned / failed / running / waiting counts and the target."""
    rows = []
    for family in config.families:
        study = load_family_study(storage, config.run, family)
        trials = study.get_trials(deepcopy=False) if study is not None else []
        counts = {s.name.lower(): 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                               TrialState.RUNNING, TrialState.WAITING)}
        for t in trials:
            counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        rows.append({"family": family, "target": budget.target(study) if study is not None else 0, **counts})
    return rows


def standing_text(storage, config) -> str:
    parts = []
    for row in standing(storage, config):
        target = "∞" if row["target"] is None else row["target"]
        extra = []
        if row["pruned"]:
            extra.append(f"{row['pruned']} pruned")
        if row["fail"]:
            extra.append(f"{row['fail']} failed")
        if row["running"]:
            extra.append(f"{row['running']} running")
        parts.append(f"{row['family']} {row['complete']}/{target}" + (f" ({', '.join(extra)})" if extra else ""))
    return "; ".join(parts)


def run_is_done(storage, config) -> bool:
    rows = standing(storage, config)
    return all(r["target"] is not None and r["complete"] >= r["target"] for r in rows)


__all__ = ["work", "standing", "standing_text", "Outcome",
           "install_sigterm_handler", "Interrupted", "to_monotonic"]
