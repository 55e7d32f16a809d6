"""Workers: the loop that claims and runs trials until the run's budget is spent, in this
process or in several local processes.

A worker interleaves the run's families round-robin (each local process starts at a
different family), claims one trial at a time under the run's lock (``tuner.budget``),
runs it with a heartbeat (``tuner.heartbeat``), and stops when every family has its
complete trials, the run's clock has run out, or the worker's own limit is reached. A
family whose remaining trials are all running elsewhere is not finished: the worker
waits, because one of them may be pruned, fail, or lose its worker and need a retry.

``--n-jobs J`` works with J processes: this one and J - 1 fresh helper interpreters (not
threads: the GIL; not fork: open database connections and threads), each with
``max(1, cores // J)`` threads for its models and BLAS, so J × threads never oversubscribes
the machine. This process starts on trials at once while the helpers import; it shows their
trials (JSON lines on their standard output) in its progress, and forwards Ctrl-C once to
each helper (they run in their own session, so a terminal's Ctrl-C does not reach them twice).
"""

from __future__ import annotations

import contextlib
import os
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
            claimed = None
            try:
                with _signals_deferred():  # a trial is claimed and known to us, or not claimed at all
                    claim = budget.claim(driver.storage, driver.config.run, fam.study, look_first=fam.name in full)
                    claimed = claim.trial
            except KeyboardInterrupt:  # held back until the claim was complete
                if claimed is not None:
                    _record_interrupted(fam.study, claimed)
                raise
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
            trial = claimed
            try:
                with heartbeat.Heartbeat(driver.storage, trial._trial_id, first_beat=False):
                    state = driver.run_trial(fam, deadline, trial)
            except optuna.exceptions.UpdateFinishedTrialError:
                # Another worker saw no heartbeat for the grace period, failed this trial
                # and enqueued its retry: our result is dropped, the retry counts.
                state = "lost"
            except KeyboardInterrupt:
                _record_interrupted(fam.study, trial)  # if run_trial had no chance to
                raise
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
    try:
        if study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
            trial.set_user_attr("fail_reason", "interrupted by the user")
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        pass


# -- several local processes ------------------------------------------------------------
@dataclass
class _HelperSpec:
    """What a helper process needs, pickled to its standard input."""

    index: int
    storage_url: str
    run: str
    dataset: object  # tuner.data.Dataset
    threads: int
    deadline_epoch: float | None
    max_trials: int | None
    parent_pid: int
    families: dict  # search_spaces.FAMILIES of the parent: families registered at run time too


class _Orphaned(Exception):
    pass


def helper_main(spec: _HelperSpec, events) -> int:
    """Body of a helper process (``python -m tuner._helper_process``); events as JSON lines."""
    import json

    def emit(*event) -> None:
        events.write(json.dumps(event) + "\n")
        events.flush()

    install_sigterm_handler()
    import search_spaces

    search_spaces.FAMILIES.update(spec.families)
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
            emit("trial", fam.name, state, number, fam.failures_in_a_row, fam.gave_up)
            if os.getppid() != spec.parent_pid:  # the parent is gone: stop after this trial
                raise _Orphaned()

        work(driver, families, deadline=to_monotonic(spec.deadline_epoch), max_trials=spec.max_trials,
             offset=spec.index, on_trial=on_trial)
        return 0
    except _Orphaned:
        return 0
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return 143 if isinstance(exc, Interrupted) else 130
    except TunerError as exc:
        emit("error", str(exc), 2)
        return 2
    except Exception as exc:  # noqa: BLE001 — reported by the parent as this worker's failure
        import traceback

        emit("error", f"{type(exc).__name__}: {exc}", 1)
        sys.stderr.write(traceback.format_exc())
        return 1


def _storage_url(storage) -> str:
    backend = getattr(storage, "_backend", storage)
    return backend.url


def _start_helper(spec: _HelperSpec):
    """A helper process: ``python -m tuner._helper_process``, in its own session (Ctrl-C in a
    terminal reaches the parent only, which forwards it once), with the parent's ``sys.path``.
    Not ``multiprocessing``: its *spawn* re-runs the caller's main script, which breaks
    ``tuner.tune(n_jobs=2)`` called from a script without ``if __name__ == "__main__"``."""
    import pickle
    import subprocess
    import threading

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
    proc = subprocess.Popen([sys.executable, "-m", "tuner._helper_process"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env, start_new_session=True)
    payload = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)

    def feed() -> None:  # in the background: the helper reads only once its imports are done
        try:
            proc.stdin.write(payload)
            proc.stdin.close()
        except (BrokenPipeError, OSError):  # it died at start; its exit code tells
            pass

    threading.Thread(target=feed, name="tuner-helper-feed", daemon=True).start()
    return proc


class WorkerError(TunerError):
    """A local worker process failed for a reason other than the user's input (exit code 1)."""

    exit_code = 1


def run_local(driver, families, n_workers: int, *, deadline_epoch: float | None, max_trials: int | None = None,
              progress=None) -> Outcome:
    """Work on the driver's run with ``n_workers`` processes: this one and ``n_workers - 1``
    helpers (this process starts on trials at once while the helpers import).

    ``max_trials`` limits each process. The helpers' trials reach ``progress`` through their
    standard output, read by one thread each; ``families`` end with every process' counts.
    """
    import json
    import threading

    import search_spaces

    threads = threads_per_worker(n_workers)
    procs = []
    for i in range(1, n_workers):
        spec = _HelperSpec(i, _storage_url(driver.storage), driver.config.run, driver.ds, threads, deadline_epoch,
                           max_trials, os.getpid(), dict(search_spaces.FAMILIES))
        procs.append(_start_helper(spec))

    helpers = Outcome("done")
    done_by_helpers = {f.name: 0 for f in families}
    helper_gave_up: dict[str, int] = {}
    errors: list[tuple[int, str, int]] = []
    lock = threading.Lock()

    def show(name: str, state: str) -> None:
        if progress is not None:
            fam = next(f for f in families if f.name == name)
            progress.update(name, fam.done_now + done_by_helpers[name], _best(fam.study), state)

    def read_events(index: int, stream) -> None:
        for line in stream:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with lock:
                if event[0] == "trial":
                    _, name, state, _number, failures, gave_up = event
                    done_by_helpers[name] += 1
                    helpers.trials += 1
                    helpers.states[state] = helpers.states.get(state, 0) + 1
                    if gave_up:
                        helper_gave_up[name] = failures
                    show(name, state)
                elif event[0] == "error":
                    errors.append((index, event[1], event[2]))

    readers = [threading.Thread(target=read_events, args=(i, p.stdout), name=f"tuner-events-{i}", daemon=True)
               for i, p in enumerate(procs, 1)]
    for reader in readers:
        reader.start()

    def on_trial(fam, state, number) -> None:
        with lock:
            show(fam.name, state)

    interrupted: KeyboardInterrupt | None = None
    outcome = Outcome("done")
    previous_sigterm = install_sigterm_handler()  # a SIGTERM must reach the helpers too
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
            while p.poll() is None:
                time.sleep(0.2)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Interrupted): our trial is recorded
        interrupted = exc
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not kill the clean-up
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM if isinstance(exc, Interrupted) else signal.SIGINT)
                except ProcessLookupError:
                    pass
        stop_at = time.monotonic() + 60
        for p in procs:
            try:
                p.wait(timeout=max(0.1, stop_at - time.monotonic()))
            except Exception:  # noqa: BLE001 — subprocess.TimeoutExpired: it had its chance
                p.kill()
                p.wait()
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        for reader in readers:
            reader.join(timeout=10)
        for p in procs:
            if p.stdout is not None:
                p.stdout.close()
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
    crashed = [(i, p.returncode) for i, p in enumerate(procs, 1) if p.returncode != 0]
    if crashed:
        codes = ", ".join(f"process {i}: exit code {code}" for i, code in crashed)
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
