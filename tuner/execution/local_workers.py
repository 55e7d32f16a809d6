"""Several local worker processes, and the supervision that enforces ``--trial-timeout``.

``--n-jobs J`` works with J processes: this one and J - 1 fresh helper interpreters (not
threads: the GIL; not fork: open database connections and threads), each with
``max(1, cores // J)`` threads for its models and BLAS, so J × threads never oversubscribes
the machine. This process starts on trials at once while the helpers import; it shows their
trials (JSON lines on their standard output) in its progress, and forwards Ctrl-C once to
each helper (they run in their own session, so a terminal's Ctrl-C does not reach them twice).

With ``--trial-timeout S`` every trial runs in a helper (J helpers, this process only
watches them), because only a process can be stopped whatever its code is doing (a kernel
SVM deep inside libsvm does not look at a clock). A helper announces each trial it starts;
one that is still on it after S seconds is killed with its process group, the trial is
recorded FAIL with reason ``timeout`` and a fresh helper takes its place. A helper killed
by the system in the middle of a trial (the kernel's out-of-memory killer, a segfault in
native code) is recorded the same way, with the signal as the reason. A family whose
trials are stopped like that ``SET_ASIDE_AFTER`` times in a row is set aside for the rest
of the invocation: it would only burn the budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from tuner.errors import TunerError
from tuner.execution import budget
from tuner.execution.cores import threads_per_worker
from tuner.execution.worker import Interrupted, Outcome, best_value, install_sigterm_handler, to_monotonic, work
from tuner.storage.optuna_adapter import UpdateFinishedTrialError, rdb, storage_of, trial_id

SET_ASIDE_AFTER = 3  # trials of a family timed out / killed in a row
MAX_RESTARTS = 50  # replacement helpers per invocation and slot
SUPERVISE_POLL_S = 0.1


@dataclass
class _HelperSpec:
    """What a helper process needs, pickled to its standard input."""

    index: int
    storage_url: str
    run: str
    dataset: object  # tuner.data.dataset.Dataset
    threads: int
    deadline_epoch: float | None
    max_trials: int | None
    parent_pid: int
    families: dict  # search_spaces.FAMILIES of the parent: families registered at run time too
    in_memory: bool = True  # trials under a clock alone in memory (tuner.execution.write_behind); not with --trial-timeout
    skip: list = field(default_factory=list)  # families set aside by the supervisor


class _Orphaned(Exception):
    pass


def helper_main(spec: _HelperSpec, events, make_driver) -> int:
    """Body of a helper process (``python -m tuner._helper_process``); events as JSON lines.

    ``make_driver(storage, config, spec)`` builds the search driver (``tuner.search``, which
    this layer does not import) of one worker process."""

    def emit(*event) -> None:
        try:
            events.write(json.dumps(event) + "\n")
            events.flush()
        except (BrokenPipeError, OSError):  # the parent is gone (killed): nobody to report to
            raise _Orphaned() from None

    install_sigterm_handler()
    import search_spaces

    search_spaces.FAMILIES.update(spec.families)
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(limits=spec.threads)  # noqa: F841 — kept for the process' life
    except ImportError:
        pass
    try:
        from tuner.storage.runs import open_storage, require_config

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        store = open_storage(spec.storage_url, create=False, checked=True)  # the parent opened it
        config = require_config(store, spec.run)
        driver = make_driver(store, config, spec)
        families = driver.open_families()
        for fam in families:
            if fam.name in spec.skip:
                fam.set_aside()

        def on_start(fam, trial):  # a trial run in memory has no storage id: None
            emit("start", fam.name, trial.number,
                 trial_id(trial) if rdb(trial.storage) is not None else None)

        def on_trial(fam, state, number):
            if os.getppid() != spec.parent_pid:  # the parent is gone: stop after this trial
                raise _Orphaned()
            emit("trial", fam.name, state, number, fam.failures_in_a_row, fam.aside_reason() if fam.gave_up else "")

        work(driver, families, deadline=to_monotonic(spec.deadline_epoch), max_trials=spec.max_trials,
             offset=spec.index, on_trial=on_trial, on_start=on_start, in_memory=spec.in_memory)
        return 0
    except _Orphaned:
        return 0
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return 143 if isinstance(exc, Interrupted) else 130
    except TunerError as exc:
        with contextlib.suppress(_Orphaned):
            emit("error", str(exc), 2)
        return 2
    except Exception as exc:  # noqa: BLE001 — reported by the parent as this worker's failure
        import traceback

        with contextlib.suppress(_Orphaned):
            emit("error", f"{type(exc).__name__}: {exc}", 1)
        sys.stderr.write(traceback.format_exc())
        return 1


def _storage_url(storage) -> str:
    return rdb(storage).url


def _start_helper(spec: _HelperSpec):
    """A helper process: ``python -m tuner._helper_process``, in its own session (Ctrl-C in a
    terminal reaches the parent only, which forwards it once), with the parent's ``sys.path``.
    Not ``multiprocessing``: its *spawn* re-runs the caller's main script, which breaks
    ``tuner.tune(n_jobs=2)`` called from a script without ``if __name__ == "__main__"``."""
    import pickle
    import subprocess

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


@dataclass
class _Slot:
    """One helper position: its current process, the trial it is on, and its history."""

    index: int
    proc: object
    reader: threading.Thread | None = None
    current: tuple | None = None  # (family, number, trial_id, started monotonic)
    restarts: int = 0
    handled: bool = False  # its process was stopped (and recorded) by the supervisor


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Pool:
    """The helpers of one ``run_local`` call and what they report."""

    def __init__(self, driver, families, n_workers: int, *, deadline_epoch, max_trials, progress,
                 trial_timeout: float | None):
        import search_spaces

        self.driver, self.families, self.progress = driver, families, progress
        self.trial_timeout = trial_timeout
        self.deadline_epoch = deadline_epoch
        self.threads = threads_per_worker(n_workers)
        self.base_spec = dict(storage_url=_storage_url(driver.storage), run=driver.config.run, dataset=driver.ds,
                              threads=self.threads, deadline_epoch=deadline_epoch, max_trials=max_trials,
                              parent_pid=os.getpid(), families=dict(search_spaces.FAMILIES),
                              in_memory=trial_timeout is None)  # the supervisor must find a trial it stops
        self.lock = threading.Lock()
        self.outcome = Outcome("done")
        self.done_by_helpers = {f.name: 0 for f in families}
        self.helper_gave_up: dict[str, tuple[int, str]] = {}  # family → (failures in a row, why)
        self.errors: list[tuple[int, str, int]] = []
        self.stopped_in_a_row: dict[str, int] = {}  # timeouts / kills per family since its last result
        self.skip: set[str] = set()
        # supervised: every trial runs in a helper (0..J-1); else this process is worker 0
        first, count = (0, n_workers) if trial_timeout is not None else (1, n_workers - 1)
        self.slots = [self._launch(_Slot(i, None)) for i in range(first, first + count)]

    # -- helpers --------------------------------------------------------------------------
    def _launch(self, slot: _Slot) -> _Slot:
        slot.proc = _start_helper(_HelperSpec(slot.index, skip=sorted(self.skip), **self.base_spec))
        slot.current = None
        slot.handled = False
        slot.reader = threading.Thread(target=self._read, args=(slot, slot.proc), daemon=True,
                                       name=f"tuner-events-{slot.index}")
        slot.reader.start()
        return slot

    def _family(self, name: str):
        return next(f for f in self.families if f.name == name)

    def show(self, name: str, state: str) -> None:
        if self.progress is not None:
            fam = self._family(name)
            self.progress.update(name, fam.done_now + self.done_by_helpers[name], best_value(fam.study), state)

    def _read(self, slot: _Slot, proc) -> None:
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if slot.proc is not proc:  # a stale reader of a replaced process
                    continue
                if event[0] == "start":
                    _, name, number, trial_id = event
                    slot.current = (name, number, trial_id, time.monotonic())
                elif event[0] == "trial":
                    _, name, state, _number, failures, aside = event  # aside: why the helper set it aside
                    slot.current = None
                    self.done_by_helpers[name] += 1
                    self.outcome.trials += 1
                    self.outcome.states[state] = self.outcome.states.get(state, 0) + 1
                    if state == "complete":
                        self.stopped_in_a_row[name] = 0
                    if aside:
                        self.helper_gave_up[name] = (failures, aside)
                    self.show(name, state)
                elif event[0] == "error":
                    self.errors.append((slot.index, event[1], event[2]))

    # -- supervision ------------------------------------------------------------------------
    def supervise(self) -> None:
        """Until every helper has exited: stop trials past the timeout, replace helpers that
        were killed in the middle of a trial."""
        while True:
            alive = False
            for slot in self.slots:
                code = slot.proc.poll()
                if code is None:
                    alive = True
                    with self.lock:
                        current = slot.current
                    if (self.trial_timeout is not None and current is not None
                            and time.monotonic() - current[3] > self.trial_timeout):
                        _kill_group(slot.proc)
                        self._stopped(slot, current, f"timeout: still running after --trial-timeout "
                                                     f"{self.trial_timeout:g}s; the process was stopped")
                        alive = True
                    continue
                with self.lock:
                    current = slot.current
                if code < 0 and current is not None and not slot.handled:  # killed by a signal in the middle of a trial
                    self._stopped(slot, current, f"killed by {_signal_name(code)} (by the system: out of "
                                                 "memory?) while running this trial")
                    alive = True
            if not alive:
                return
            time.sleep(SUPERVISE_POLL_S)

    def _stopped(self, slot: _Slot, current: tuple, reason: str) -> None:
        """Record the trial the helper of ``slot`` was on as FAIL and start a fresh helper."""
        name, number, trial_id, _ = current
        slot.proc.wait()
        fam = self._family(name)
        storage = storage_of(fam.study)
        try:
            if trial_id is None:  # run in memory (tuner.execution.write_behind): it died with the helper, recorded here
                with budget.run_lock(storage, self.driver.config.run):
                    fam.study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={
                        "fail_reason": f"{reason} (its parameters were in the helper's memory)"}))
            elif storage.get_trial(trial_id).state == TrialState.RUNNING:
                storage.set_trial_user_attr(trial_id, "fail_reason", reason)
                storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, KeyError, ValueError):
            pass
        with self.lock:
            self.done_by_helpers[name] += 1
            self.outcome.trials += 1
            self.outcome.states["failed"] = self.outcome.states.get("failed", 0) + 1
            self.stopped_in_a_row[name] = self.stopped_in_a_row.get(name, 0) + 1
            if self.stopped_in_a_row[name] >= SET_ASIDE_AFTER and name not in self.skip:
                self.skip.add(name)
                self.helper_gave_up[name] = (self.stopped_in_a_row[name], "")
            self.show(name, "failed")
        out_of_time = self.deadline_epoch is not None and time.time() >= self.deadline_epoch
        if slot.restarts < MAX_RESTARTS and not out_of_time and self._work_left():
            slot.restarts += 1
            self._launch(slot)
        else:
            slot.current = None
            slot.handled = True

    def _work_left(self) -> bool:
        """Is any family neither set aside nor at its target of complete trials?"""
        for fam in self.families:
            if fam.name in self.skip:
                continue
            target = budget.target(fam.study)
            if target is None or len(fam.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < target:
                return True
        return False

    def interrupt(self, exc: KeyboardInterrupt) -> None:
        for slot in self.slots:
            if slot.proc.poll() is None:
                try:
                    slot.proc.send_signal(signal.SIGTERM if isinstance(exc, Interrupted) else signal.SIGINT)
                except ProcessLookupError:
                    pass
        stop_at = time.monotonic() + 60
        for slot in self.slots:
            try:
                slot.proc.wait(timeout=max(0.1, stop_at - time.monotonic()))
            except Exception:  # noqa: BLE001 — subprocess.TimeoutExpired: it had its chance
                _kill_group(slot.proc)
                slot.proc.wait()

    def close(self) -> None:
        for slot in self.slots:
            if slot.reader is not None:
                slot.reader.join(timeout=10)
            if slot.proc.stdout is not None:
                slot.proc.stdout.close()

    def settle(self) -> None:
        """Fold the helpers' counts into ``families``; raise what a helper could not handle."""
        for fam in self.families:
            fam.done_now += self.done_by_helpers[fam.name]
            if fam.name in self.helper_gave_up and not fam.finished:
                failures, aside = self.helper_gave_up[fam.name]
                fam.set_aside(f"{self.stopped_in_a_row[fam.name]} trials in a row timed out or were killed"
                              if fam.name in self.skip else aside)
                fam.failures_in_a_row = max(fam.failures_in_a_row, failures)
        for index, message, code in self.errors:
            if code == 2:
                raise TunerError(f"worker process {index}: {message}")
        if self.errors:
            index, message, _ = self.errors[0]
            raise WorkerError(f"worker process {index} failed: {message}")
        crashed = [(s.index, s.proc.returncode) for s in self.slots if s.proc.returncode != 0 and not s.handled]
        if crashed:
            codes = ", ".join(f"process {i}: exit code {code}" for i, code in crashed)
            raise WorkerError(f"{len(crashed)} worker process(es) stopped abnormally ({codes}); "
                              "rerun the same command to continue the run")


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def run_local(driver, families, n_workers: int, *, deadline_epoch: float | None, max_trials: int | None = None,
              progress=None, trial_timeout: float | None = None) -> Outcome:
    """Work on the driver's run with ``n_workers`` processes: this one and ``n_workers - 1``
    helpers (this process starts on trials at once while the helpers import) — or, with a
    ``trial_timeout``, ``n_workers`` helpers supervised by this process.

    ``max_trials`` limits each process. The helpers' trials reach ``progress`` through their
    standard output, read by one thread each; ``families`` end with every process' counts.
    """
    pool = _Pool(driver, families, n_workers, deadline_epoch=deadline_epoch, max_trials=max_trials,
                 progress=progress, trial_timeout=trial_timeout)

    def on_trial(fam, state, number) -> None:
        with pool.lock:
            pool.show(fam.name, state)

    interrupted: KeyboardInterrupt | None = None
    outcome = Outcome("done")
    previous_sigterm = install_sigterm_handler()  # a SIGTERM must reach the helpers too
    try:
        if trial_timeout is None:
            try:
                import threadpoolctl

                limits = threadpoolctl.threadpool_limits(limits=pool.threads)
            except ImportError:
                limits = None
            try:
                outcome = work(driver, families, deadline=to_monotonic(deadline_epoch), max_trials=max_trials,
                               offset=0, on_trial=on_trial)
            finally:
                if limits is not None:
                    limits.restore_original_limits()
        pool.supervise()  # the helpers stop on their own once the budget is spent
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Interrupted): our trial is recorded
        interrupted = exc
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not kill the clean-up
        pool.interrupt(exc)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        pool.close()
    if interrupted is not None:
        for fam in families:
            fam.done_now += pool.done_by_helpers[fam.name]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise interrupted
    pool.settle()
    _refresh(driver, families)
    outcome.trials += pool.outcome.trials
    for state, count in pool.outcome.states.items():
        outcome.states[state] = outcome.states.get(state, 0) + count
    if trial_timeout is not None:
        outcome.reason = _reason(families, deadline_epoch)
    return outcome


def _reason(families, deadline_epoch) -> str:
    if all(f.finished for f in families):
        return "done"
    if deadline_epoch is not None and time.time() >= deadline_epoch - 1:
        return "deadline"
    return "set aside" if not any(f.active for f in families) else "done"


def _refresh(driver, families) -> None:
    """Complete counts and finished flags from the storage (the children did the work)."""
    for fam in families:
        trials = fam.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        fam.completed = len(trials)
        limit = budget.target(fam.study)
        fam.target = limit
        fam.finished = limit is not None and fam.completed >= limit


__all__ = ["run_local", "helper_main", "WorkerError", "SET_ASIDE_AFTER"]
