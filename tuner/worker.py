"""Workers: the loop that claims and runs trials until the run's budget is spent, in this
process or in several local processes.

A worker interleaves the run's families round-robin (each local process starts at a
different family), claims one trial at a time under the run's lock (``tuner.budget``),
runs it with a heartbeat (``tuner.heartbeat``), and stops when every family has its
complete trials, the run's clock has run out, or the worker's own limit is reached. A
family whose remaining trials are all running elsewhere is not finished: the worker
waits, because one of them may be pruned, fail, or lose its worker and need a retry.

``--n-jobs J`` works with J processes: this one and J - 1 helpers started with
``multiprocessing``'s *spawn* (not threads: the GIL; not fork: open database connections
and threads), each with ``max(1, cores // J)`` threads for its models and BLAS, so J ×
threads never oversubscribes the machine. This process starts on trials at once while the
helpers import; it shows their trials (a queue) in its progress and forwards Ctrl-C once to
each helper (they run in their own process group, so a terminal's Ctrl-C reaches them once).
"""

from __future__ import annotations

import os
import queue as queue_module
import signal
import socket
import sys
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


def install_sigterm_handler():
    """Treat SIGTERM like Ctrl-C; returns the previous handler (None if it could not be set)."""
    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        return None


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
    full: set[str] = set()  # families whose last claim found every remaining slot running
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
            claim = budget.claim(driver.storage, driver.config.run, fam.study, look_first=fam.name in full)
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
            trial = claim.trial
            try:
                with heartbeat.Heartbeat(driver.storage, trial._trial_id, first_beat=False):
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
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        spec.events.put(("interrupted", spec.index))
        code = 143 if isinstance(exc, Interrupted) else 130
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
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)  # no interpreter teardown: the queue is flushed, the heartbeat threads are daemons


class _Orphaned(Exception):
    pass


def _storage_url(storage) -> str:
    backend = getattr(storage, "_backend", storage)
    return backend.url


class WorkerError(TunerError):
    """A local worker process failed for a reason other than the user's input (exit code 1)."""

    exit_code = 1


def run_local(driver, families, n_workers: int, *, deadline_epoch: float | None, max_trials: int | None = None,
              progress=None) -> Outcome:
    """Work on the driver's run with ``n_workers`` processes: this one and ``n_workers - 1``
    spawned helpers (this process starts on trials at once while the helpers import).

    ``max_trials`` limits each process. The helpers' trials reach ``progress`` through a queue
    drained by a thread; ``families`` end with every process' counts.
    """
    import multiprocessing
    import threading

    import search_spaces

    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    threads = threads_per_worker(n_workers)
    procs = []
    for i in range(1, n_workers):
        spec = _ChildSpec(i, n_workers, _storage_url(driver.storage), driver.config.run, driver.ds, threads,
                          deadline_epoch, max_trials, events, os.getpid(), os.environ.get(heartbeat.ENV),
                          dict(search_spaces.FAMILIES))
        proc = ctx.Process(target=_child_main, args=(spec,), name=f"tuner-worker-{i}")
        proc.start()
        procs.append(proc)

    helpers = Outcome("done")
    done_by_helpers = {f.name: 0 for f in families}
    helper_gave_up: dict[str, int] = {}
    errors: list[tuple[int, str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def show(name: str, state: str) -> None:
        if progress is not None:
            fam = next(f for f in families if f.name == name)
            progress.update(name, fam.done_now + done_by_helpers[name], _best(fam.study), state)

    def drain() -> None:  # the helpers' events, while this process runs trials of its own
        while not (stop.is_set() and not any(p.is_alive() for p in procs) and events.empty()):
            try:
                event = events.get(timeout=0.2)
            except (queue_module.Empty, OSError, ValueError):
                if stop.is_set() and not any(p.is_alive() for p in procs):
                    return
                continue
            with lock:
                kind = event[0]
                if kind == "trial":
                    _, _, name, state, _number, failures, gave_up = event
                    done_by_helpers[name] += 1
                    helpers.trials += 1
                    helpers.states[state] = helpers.states.get(state, 0) + 1
                    if gave_up:
                        helper_gave_up[name] = failures
                    show(name, state)
                elif kind == "error":
                    errors.append((event[1], event[2], event[3]))

    drainer = threading.Thread(target=drain, name="tuner-events", daemon=True)
    drainer.start()

    def on_trial(fam, state, number) -> None:
        with lock:
            show(fam.name, state)

    interrupted: KeyboardInterrupt | None = None
    outcome = Outcome("done")
    try:
        try:
            import threadpoolctl

            limits = threadpoolctl.threadpool_limits(limits=threads)
        except ImportError:
            limits = None
        try:
            outcome = work(driver, families, deadline=to_monotonic(deadline_epoch), max_trials=max_trials,
                           offset=0, on_trial=on_trial)
        finally:
            if limits is not None:
                limits.restore_original_limits()
        for p in procs:  # the helpers stop on their own once the budget is spent
            while p.is_alive():
                p.join(timeout=0.5)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Interrupted): our trial is recorded
        interrupted = exc
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not kill the clean-up
        for p in procs:
            if p.is_alive():
                try:
                    os.kill(p.pid, signal.SIGTERM if isinstance(exc, Interrupted) else signal.SIGINT)
                except ProcessLookupError:
                    pass
        stop_at = time.monotonic() + 60
        for p in procs:
            p.join(timeout=max(0.1, stop_at - time.monotonic()))
            if p.is_alive():
                p.kill()
    finally:
        stop.set()
        drainer.join(timeout=10)
        for p in procs:
            p.join(timeout=5)
        events.close()
    for fam in families:
        fam.done_now += done_by_helpers[fam.name]
        if fam.name in helper_gave_up and not fam.finished:
            fam.gave_up = True
            fam.failures_in_a_row = max(fam.failures_in_a_row, helper_gave_up[fam.name])
    if interrupted is not None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise interrupted
    for index, message, code in errors:
        if code == 2:
            raise TunerError(f"worker process {index}: {message}")
    if errors:
        index, message, _ = errors[0]
        raise WorkerError(f"worker process {index} failed: {message}")
    crashed = [p for p in procs if p.exitcode not in (0, None)]
    if crashed:
        codes = ", ".join(f"{p.name}: exit code {p.exitcode}" for p in crashed)
        raise WorkerError(f"{len(crashed)} worker process(es) stopped abnormally ({codes}); "
                          "rerun the same command to continue the run")
    _refresh(driver, families)
    outcome.trials += helpers.trials
    for state, count in helpers.states.items():
        outcome.states[state] = outcome.states.get(state, 0) + count
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
