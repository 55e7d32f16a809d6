"""A run's budget lives in its storage, so any number of workers on any number of machines
stop exactly where the run should.

What is stored
--------------
* family study ``R::family``, user attribute ``tuner_target``: how many **COMPLETE** trials
  the family is owed in total (``None``: no trial limit, only the clock). Each
  ``tuner run --trials N`` (with or without ``--create-only``) adds N:
  ``target = max(target, complete) + N``. Pruned and failed trials do not count: a pruned
  trial is a partial evaluation, a failed one has no score, and a trial whose worker died
  is retried. So every family of a finished run has exactly ``target`` complete trials
  (unless it was set aside because its trials kept failing, see ``tuner.execution.worker``).
* run study ``R``, user attribute ``tuner_budget``: ``{"timeout_s", "deadline"}``. The
  deadline is a Unix time. ``tuner run --timeout T`` sets it to now + T; with
  ``--create-only`` the clock starts when the first worker joins.

How workers share it
--------------------
Under a clock alone (no trial counts) a worker runs its trials in memory and stores them in
batches under the run's lock (``tuner.execution.write_behind``); what follows is how every trial of a
counted run, and a family's WAITING trials (its default configuration, retries), are claimed.

A worker claims a trial under the run's lock (:func:`run_lock`): it fails stale trials and
the trials of processes of this machine that are gone (their retries become ``WAITING``) —
at most every ``SWEEP_S`` per process and family, and always before it calls a family full —
counts the family's COMPLETE and RUNNING trials, and calls ``study.ask()`` only if
``complete + running < target``; the new trial records its process (``host:pid``) and gets
its first heartbeat before the lock is released. RUNNING trials are reservations: a pruned or
failed trial gives its slot back, a finished one keeps it. Since every claim sees every
earlier claim, ``complete`` can never pass ``target`` however many workers race. A worker
whose family is done, or full with every running trial still beating, learns so without
the lock (waiting workers poll every second and must not queue on it).

An interrupted trial (Ctrl-C, SIGTERM) is recorded FAIL and frees its slot; a trial whose
worker vanished is failed by the heartbeat check (at once if the worker was a process of
this machine) and retried with the same parameters (``tuner.execution.heartbeat``); its WAITING
retry is what the next ``ask()`` pops.

The lock (``tuner.storage.locks``) is a PostgreSQL transaction-level advisory lock, MySQL
``GET_LOCK``, or an ``flock`` on ``<file>.lock`` beside a SQLite file; other backends get no
lock and a best-effort budget.
"""

from __future__ import annotations

import json
import math
import time
import weakref
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from tuner.execution import heartbeat
from tuner.storage import trial_writes
from tuner.storage.locks import LOCK_TIMEOUT_S, run_lock  # noqa: F401 — the run's lock, used with the budget
from tuner.storage.optuna_adapter import UpdateFinishedTrialError, models, rdb, stale_trial_ids, storage_of, trial_id
from tuner.storage.runs import load_family_study

TARGET_ATTR = "tuner_target"
BUDGET_ATTR = "tuner_budget"


# -- the budget -------------------------------------------------------------------------
@dataclass
class Budget:
    targets: dict[str, int | None]
    timeout_s: float | None = None
    deadline: float | None = None  # Unix time; None: no clock, or not started yet
    early_stop: bool = False  # the workers may stop once the leaderboard is flat (tuner.execution.plateau)
    stopped: str | None = None  # why they stopped before the clock, when they did

    def describe(self) -> str:
        parts = []
        values = {t for t in self.targets.values()}
        if values and None not in values:
            parts.append(f"{min(values)} complete trials per family" if len(values) == 1
                         else "complete trials per family: " + ", ".join(f"{f} {t}" for f, t in self.targets.items()))
        if self.deadline is not None:
            parts.append(f"until {time.strftime('%H:%M:%S', time.localtime(self.deadline))}")
        elif self.timeout_s is not None:
            parts.append(f"{self.timeout_s:g}s from the first worker")
        return " and ".join(parts) or "no limit"


def _run_study(storage, run: str) -> optuna.Study:
    return optuna.load_study(study_name=run, storage=storage)


def _stored(study: optuna.Study) -> dict:
    raw = study.user_attrs.get(BUDGET_ATTR) or "{}"
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def read(storage, config) -> Budget:
    """The run's budget as stored."""
    stored = _stored(_run_study(storage, config.run))
    targets = {}
    for family in config.families:
        study = load_family_study(storage, config.run, family)
        targets[family] = study.user_attrs.get(TARGET_ATTR) if study is not None else 0
    return Budget(targets=targets, timeout_s=stored.get("timeout_s"), deadline=stored.get("deadline"),
                  early_stop=bool(stored.get("early_stop")), stopped=stored.get("stopped"))


def target(study: optuna.Study) -> int | None:
    return study.user_attrs.get(TARGET_ATTR)


def add(storage, config, studies: dict[str, optuna.Study], *, trials: int | None, timeout: float | None,
        start_clock: bool, started_at: float | None = None, early_stop: bool = False) -> Budget:
    """Add this invocation's budget to the run: ``trials`` more complete trials per family
    (``None``: no trial limit) and a clock of ``timeout`` seconds, started at ``started_at``
    (epoch seconds; default now: the invocation's own start, so reading data and opening
    the storage count against the budget) or, with ``start_clock=False``, by the first worker.
    ``early_stop``: under a clock alone, the workers may stop once the leaderboard is flat
    (``tuner.execution.plateau``); an earlier invocation's early stop is forgotten."""
    with run_lock(storage, config.run):
        for study in studies.values():
            if trials is None:
                study.set_user_attr(TARGET_ATTR, None)
                continue
            complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            study.set_user_attr(TARGET_ATTR, max(target(study) or 0, complete) + trials)
        deadline = (started_at or time.time()) + timeout if (timeout and start_clock) else None
        _run_study(storage, config.run).set_user_attr(BUDGET_ATTR, json.dumps(
            {"timeout_s": timeout, "deadline": deadline, "early_stop": bool(early_stop and timeout and trials is None)}))
    return read(storage, config)


def start_clock(storage, config) -> Budget:
    """The first worker of a run created with a timeout starts its clock."""
    budget = read(storage, config)
    if budget.timeout_s is None or budget.deadline is not None:
        return budget
    with run_lock(storage, config.run):
        budget = read(storage, config)
        if budget.timeout_s is not None and budget.deadline is None:
            budget.deadline = time.time() + budget.timeout_s
            study = _run_study(storage, config.run)
            study.set_user_attr(BUDGET_ATTR, json.dumps({**_stored(study), "deadline": budget.deadline}))
    return budget


def stop_early(storage, run: str, reason: str) -> str:
    """Record that the run's workers stop before the clock, and why (the first reason stands)."""
    with run_lock(storage, run):
        study = _run_study(storage, run)
        stored = _stored(study)
        if not stored.get("stopped"):
            stored["stopped"] = reason
            study.set_user_attr(BUDGET_ATTR, json.dumps(stored))
    return stored["stopped"]


def stopped_early(storage, run: str) -> str | None:
    """Why the run's workers stopped before the clock (None: they have not)."""
    return _stored(_run_study(storage, run)).get("stopped")


# -- claiming a trial -------------------------------------------------------------------
@dataclass
class Claim:
    """The outcome of asking for a trial of one family."""

    status: str  # "claimed" | "done" (target reached) | "full" (the rest is running elsewhere)
    trial: optuna.Trial | None = None
    complete: int = 0
    running: int = 0
    target: int | None = None


def claim(storage, run: str, study: optuna.Study, *, look_first: bool = True) -> Claim:
    """Ask for a trial of ``study`` if the family's budget has room (see the module doc).

    ``look_first``: try the lock-free answer first (for a family that was full or done last time).
    """
    quick = _without_lock(storage, study) if look_first else None
    if quick is not None:
        return quick
    with run_lock(storage, run):
        limit = target(study)
        counts = None if sweep_due(study) else _counts(storage, study)
        if counts is not None and (limit is None or sum(counts) < limit):
            complete, running = counts  # room for a trial: no need to look for dead workers' trials yet
        else:
            complete, running = sweep(storage, study)
        if limit is not None and complete >= limit:
            return Claim("done", complete=complete, running=running, target=limit)
        if limit is not None and complete + running >= limit:
            return Claim("full", complete=complete, running=running, target=limit)
        with heartbeat.quiet():
            trial = study.ask()
        try:
            heartbeat.record_worker(storage, trial_id(trial))  # and its first heartbeat
        except BaseException:
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        return Claim("claimed", trial=trial, complete=complete, running=running, target=limit)


# Looking for the trials of dead workers (stale heartbeats, processes of this machine that
# are gone, claims that never began) takes several queries; a process does it at most every
# SWEEP_S per family, and always before it calls a family full or done. In between, a claim
# counts the family's complete and running trials in one query.
SWEEP_S = 2.0
_last_sweep: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # family study → time.monotonic()


def sweep_due(study: optuna.Study) -> bool:
    """Whether this process last looked for ``study``'s dead workers' trials ``SWEEP_S`` ago or more."""
    return time.monotonic() - _last_sweep.get(study, -math.inf) >= SWEEP_S


def sweep(storage, study: optuna.Study) -> tuple[int, int]:
    """Fail the trials of dead workers (their retries wait); (complete, running) after that."""
    heartbeat.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    gone = heartbeat.fail_trials_of_gone_processes(study, [t for t in trials if t.state == TrialState.RUNNING])
    orphans = gone | _fail_orphans(storage, study, [t for t in trials if t.state == TrialState.RUNNING
                                                    and trial_id(t) not in gone])
    running = sum(t.state == TrialState.RUNNING and trial_id(t) not in orphans for t in trials)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    _last_sweep[study] = time.monotonic()
    return complete, running


def _counts(storage, study: optuna.Study) -> tuple[int, int] | None:
    """(complete, running) trials of the family in one query (None: not an RDB storage)."""
    backend = rdb(storage)
    if backend is None:
        return None
    from sqlalchemy import func, select

    with trial_writes.session(backend) as db:
        rows = db.execute(select(models.TrialModel.state, func.count())
                          .where(models.TrialModel.study_id == trial_writes.study_id(storage, study),
                                 models.TrialModel.state.in_([TrialState.COMPLETE, TrialState.RUNNING]))
                          .group_by(models.TrialModel.state)).all()
    counts = {state: n for state, n in rows}
    return counts.get(TrialState.COMPLETE, 0), counts.get(TrialState.RUNNING, 0)


def _without_lock(storage, study: optuna.Study) -> Claim | None:
    """The answer when it needs no lock: the family is done (final: complete trials stay
    complete), or it is full and no running trial looks dead. Workers waiting for the last
    trials of a big run poll this, so they do not queue on the run's lock."""
    limit = target(study)
    if limit is None:
        return None
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    running = [trial_id(t) for t in trials if t.state == TrialState.RUNNING]
    if complete >= limit:
        return Claim("done", complete=complete, running=len(running), target=limit)
    if complete + len(running) < limit:
        return None
    backend = rdb(storage)
    if backend is None or backend.get_heartbeat_interval() is None:
        return None  # no heartbeats: let the locked path decide
    stale = stale_trial_ids(backend, study)
    if stale or heartbeat.trials_without_heartbeat(storage, running):
        return None
    if any(heartbeat.process_gone(t.system_attrs.get(heartbeat.WORKER_ATTR))
           for t in trials if t.state == TrialState.RUNNING):
        return None  # a process of this machine died mid-trial: the locked path fails and retries it
    return Claim("full", complete=complete, running=len(running), target=limit)


def has_budget(storage, config) -> bool:
    """Whether ``tuner run`` recorded a budget for the run (runs made before budgets were stored did not)."""
    return BUDGET_ATTR in _run_study(storage, config.run).user_attrs


def _fail_orphans(storage, study: optuna.Study, running: list) -> set[int]:
    """A RUNNING trial with no heartbeat, seen while we hold the lock, was claimed by a
    worker that died before its first heartbeat (claims record one before releasing the
    lock): it never ran, so it is failed without a retry and its slot freed. Returns their ids."""
    orphans = set(heartbeat.trials_without_heartbeat(storage, [trial_id(t) for t in running]))
    for tid in orphans:
        try:
            storage_of(study).set_trial_user_attr(tid, "fail_reason", "abandoned: its worker stopped before it began")
            storage_of(study).set_trial_state_values(tid, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, RuntimeError):
            pass
    return orphans
