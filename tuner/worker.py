"""Workers: the loop that claims and runs trials until the run's budget is spent, in this
process or in several local processes.

A worker interleaves the run's families round-robin (each local process starts at a
different family), claims one trial at a time under the run's lock (``tuner.budget``),
runs it with a heartbeat (``tuner.heartbeat``), and stops when every family has its
complete trials, the run's clock has run out, or the worker's own limit is reached. A
family whose remaining trials are all running elsewhere is not finished: the worker
waits, because one of them may be pruned, fail, or lose its worker and need a retry.

``--n-jobs J`` starts J worker processes (``multiprocessing`` with *spawn*: the GIL makes
threads useless for scikit-learn's Python-heavy fits), each with ``max(1, cores // J)``
threads for its models and BLAS, so J × threads never oversubscribes the machine. The
parent shows progress from the children's events and forwards Ctrl-C once to each.
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

import optuna
from optuna.trial import TrialState

from . import budget, heartbeat
from .errors import TunerError

# After a family has a result, this many failed trials in a row (in one worker) set it aside.
MAX_FAILURES_IN_A_ROW = 25
POLL_S = 1.0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads_per_worker(n_workers: int) -> int:
    """Model / BLAS threads for each of ``n_workers`` local processes: the cores shared out.

    One worker (the default) keeps one thread per model, as ``tuner`` always did: a
    multi-threaded XGBoost on a machine that is busy with anything else (a CI runner, a
    second run) spins its OpenMP threads and can run several times slower.
    """
    if n_workers <= 1:
        return 1
    return max(1, cpu_count() // n_workers)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Interrupted(KeyboardInterrupt):
    """SIGTERM (a scheduler stopping the job): handled like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Interrupted()


def install_sigterm_handler() -> None:
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass


@dataclass
class Outcome:
    """How a worker's loop ended."""

    reason: str  # "done" | "deadline" | "limit" | "set aside"
    trials: int = 0  # trials this worker (or its processes) ran
    states: dict[str, int] = field(default_factory=dict)


def to_monotonic(deadline_epoch: float | None) -> float | None:
    if deadline_epoch is None:
        return None
    return time.monotonic() + (deadline_epoch - time.time())


# -- one worker, in this process --------------------------------------------------------
def work(driver, families, *, deadline: float | None, max_trials: int | None = None, offset: int = 0,
         on_trial: Callable | None = None, on_wait: Callable | None = None) -> Outcome:
    """Claim and run trials until the budget is spent (``deadline`` is ``time.monotonic()``-based).

    ``on_trial(fam, state, trial_number)`` after every trial; ``on_wait(running)`` when
    the only trials left are running in other workers.
    """
    from .study import MAX_FAILURES_WITHOUT_RESULT

    outcome = Outcome("done")
    n = len(families)
    order = [families[(offset + i) % n] for i in range(n)] if n else []
    while True:
        progressed = False
        running_elsewhere = 0
        for fam in order:
            if getattr(fam, "finished", False) or fam.gave_up:
                continue
            if max_trials is not None and outcome.trials >= max_trials:
                outcome.reason = "limit"
                return outcome
            if deadline is not None:
                now = time.monotonic()
                if now >= deadline:
                    outcome.reason = "deadline"
                    return outcome
                # Do not start a trial that is expected to overrun the budget once the
                # family already has a result; cheaper families may still fit.
                if fam.has_result() and now + fam.expected_duration() > deadline:
                    continue
            claim = budget.claim(driver.storage, driver.config.run, fam.study)
            fam.completed = max(fam.completed, claim.complete)
            fam.target = claim.target
            if claim.status == "done":
                fam.finished = True
                continue
            if claim.status == "full":
                running_elsewhere += claim.running
                continue
            trial = claim.trial
            try:
                with heartbeat.Heartbeat(driver.storage, trial._trial_id):
                    state = driver.run_trial(fam, deadline, trial)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Another worker saw no heartbeat for the grace period, failed this trial
                # and enqueued its retry: our result is dropped, the retry counts.
                state = "lost"
            outcome.trials += 1
            outcome.states[state] = outcome.states.get(state, 0) + 1
            progressed = True
            limit = min(MAX_FAILURES_WITHOUT_RESULT, fam.target) if fam.target else MAX_FAILURES_WITHOUT_RESULT
            if state == "failed" and fam.failures_in_a_row >= (MAX_FAILURES_IN_A_ROW if fam.has_result() else limit):
                fam.gave_up = True
            if on_trial is not None:
                on_trial(fam, state, trial.number)
        active = [f for f in families if not (getattr(f, "finished", False) or f.gave_up)]
        if not active:
            outcome.reason = "done" if all(getattr(f, "finished", False) for f in families) else "set aside"
            return outcome
        if not progressed:
            if not running_elsewhere:
                outcome.reason = "deadline"  # every family left would overrun the clock
                return outcome
            if on_wait is not None:
                on_wait(running_elsewhere)
            sleep_s = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            time.sleep(sleep_s)


# -- several local processes ------------------------------------------------------------
@dataclass
class _ChildSpec:
    index: int
    n_workers: int
    storage_url: str
    run: str
    dataset: object  # tuner.data.Dataset, pickled to the child
    threads: int
    deadline_epoch: float | None
    max_trials: int | None
    events: object  # multiprocessing queue
    parent_pid: int
    heartbeat_s: str | None
    families: dict  # search_spaces.FAMILIES of the parent: families registered at run time too


def _child_main(spec: _ChildSpec) -> None:
    """Entry point of a local worker process (spawned)."""
    if hasattr(os, "setpgrp"):
        os.setpgrp()  # the parent forwards Ctrl-C exactly once; the terminal's copy would double it
    install_sigterm_handler()
    if spec.heartbeat_s:
        os.environ[heartbeat.ENV] = spec.heartbeat_s
    import search_spaces

    search_spaces.FAMILIES.update(spec.families)
    code = 0
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=spec.threads)  # noqa: F841 — kept for the process' life
    except ImportError:
        pass
    try:
        from .storage import open_storage, require_config
        from .study import Driver

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        store = open_storage(spec.storage_url, create=False)
        config = require_config(store, spec.run)
        driver = Driver(store, config, spec.dataset, n_jobs=1, threads=spec.threads,
                        salt=f"{worker_id()}:{spec.index}")
        families = driver.open_families()

        def on_trial(fam, state, number):
            spec.events.put(("trial", spec.index, fam.name, state, number, fam.failures_in_a_row, fam.gave_up))
            if os.getppid() != spec.parent_pid:  # the parent is gone: stop after this trial
                raise _Orphaned()

        deadline = to_monotonic(spec.deadline_epoch)
        outcome = work(driver, families, deadline=deadline, max_trials=spec.max_trials, offset=spec.index,
                       on_trial=on_trial)
        spec.events.put(("exit", spec.index, outcome.reason, outcome.trials))
    except _Orphaned:
        code = 0
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        spec.events.put(("interrupted", spec.index))
        code = 130
    except TunerError as exc:
        spec.events.put(("error", spec.index, str(exc), 2))
        code = 2
    except Exception as exc:  # noqa: BLE001 — reported by the parent as this worker's failure
        import traceback

        spec.events.put(("error", spec.index, f"{type(exc).__name__}: {exc}", 1, traceback.format_exc()[-2000:]))
        code = 1
    finally:
        try:
            spec.events.close()
            spec.events.join_thread()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


class _Orphaned(Exception):
    pass


def _storage_url(storage) -> str:
    backend = getattr(storage, "_backend", storage)
    return backend.url


def run_local(driver, families, n_workers: int, *, deadline_epoch: float | None, max_trials: int | None = None,
              progress=None) -> Outcome:
    """Run ``n_workers`` worker processes on the driver's run; update ``families`` from their events."""
    import multiprocessing

    import search_spaces

    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    by_name = {f.name: f for f in families}
    threads = threads_per_worker(n_workers)
    procs = []
    for i in range(n_workers):
        spec = _ChildSpec(i, n_workers, _storage_url(driver.storage), driver.config.run, driver.ds, threads,
                          deadline_epoch, max_trials, events, os.getpid(), os.environ.get(heartbeat.ENV),
                          dict(search_spaces.FAMILIES))
        proc = ctx.Process(target=_child_main, args=(spec,), name=f"tuner-worker-{i}")
        proc.start()
        procs.append(proc)
    outcome = Outcome("done")
    errors: list[tuple[int, str, int]] = []
    interrupted = False

    def drain(timeout: float) -> None:
        try:
            event = events.get(timeout=timeout)
        except queue_module.Empty:
            return
        kind = event[0]
        if kind == "trial":
            _, _, name, state, _number, failures, gave_up = event
            fam = by_name[name]
            fam.done_now += 1
            outcome.trials += 1
            outcome.states[state] = outcome.states.get(state, 0) + 1
            if state == "complete":
                fam.completed += 1
            fam.failures_in_a_row = failures
            fam.gave_up = fam.gave_up or gave_up
            if progress is not None:
                progress.update(name, fam.done_now, _best(fam.study), state)
        elif kind == "error":
            errors.append((event[1], event[2], event[3]))
        elif kind == "exit" and event[2] != "done":
            outcome.reason = event[2] if outcome.reason == "done" else outcome.reason

    try:
        while any(p.is_alive() for p in procs):
            drain(0.5)
        while True:  # what the last children sent before exiting
            before = outcome.trials + len(errors)
            drain(0.1)
            if outcome.trials + len(errors) == before:
                break
    except KeyboardInterrupt:
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not kill the clean-up
        for p in procs:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        stop_at = time.monotonic() + 60
        while any(p.is_alive() for p in procs) and time.monotonic() < stop_at:
            drain(0.2)
        for p in procs:
            if p.is_alive():
                p.kill()
    finally:
        for p in procs:
            p.join(timeout=5)
        events.close()
    if interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise KeyboardInterrupt
    for index, message, code in errors:
        if code == 2:
            raise TunerError(f"worker {index}: {message}")
    if errors:
        index, message, _ = errors[0]
        raise RuntimeError(f"worker process {index} failed: {message}")
    crashed = [p for p in procs if p.exitcode not in (0, None)]
    if crashed:
        codes = ", ".join(f"worker {procs.index(p)}: exit code {p.exitcode}" for p in crashed)
        raise RuntimeError(f"{len(crashed)} worker process(es) stopped abnormally ({codes}); "
                           "rerun the same command to continue the run")
    _refresh(driver, families)
    return outcome


def _refresh(driver, families) -> None:
    """Complete counts and finished flags from the storage (the children did the work)."""
    for fam in families:
        trials = fam.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        fam.completed = len(trials)
        limit = budget.target(fam.study)
        fam.target = limit
        fam.finished = limit is not None and fam.completed >= limit


def _best(study: optuna.Study) -> float | None:
    try:
        return study.best_value
    except ValueError:
        return None


# -- where a run stands -----------------------------------------------------------------
def standing(storage, config) -> list[dict]:
    """Per family: complete / pruned / failed / running / waiting counts and the target."""
    rows = []
    for family in config.families:
        study = budget._family(storage, config.run, family)
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


__all__ = ["work", "run_local", "threads_per_worker", "cpu_count", "standing", "standing_text", "Outcome",
           "install_sigterm_handler", "Interrupted", "to_monotonic"]
