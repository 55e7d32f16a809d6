"""`tuner worker`: join a run recorded in a shared storage and work until its budget is spent."""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path

from tuner.errors import TunerError
from tuner.execution import budget


class _Lines:
    """Progress for logs (a batch job has no terminal): one line per finished trial."""

    def __init__(self, console, metric: str):
        self.console, self.metric = console, metric

    def update(self, family: str, done: int, best: float | None, last_state: str) -> None:
        best_text = f"best {self.metric} {best:.4f}" if best is not None else "no result yet"
        self.console.print(f"  {family}: {last_state} ({done} trial(s) by this worker; {best_text})")


def load_data(config, data: str | None):
    """The run's data (training part), from ``data`` or the recorded location, fingerprint-checked."""
    from tuner.data.dataset import load_for_run

    if data is not None:
        source = data if data.startswith("builtin:") or "://" in data else str(Path(data).resolve())
        config = dataclasses.replace(config, source=source)
    try:
        return load_for_run(config)
    except TunerError as exc:
        raise TunerError(f"this worker refuses to join run {config.run!r}: {exc}") from None


def join(*, run_name: str, storage: str | None, timeout: float | None, trials: int | None, n_jobs: int | None,
         data: str | None, out, err, trial_timeout: float | None = None) -> int:
    """Run the worker; returns the exit code (0 done, 130 interrupted, 143 terminated)."""
    from tuner.execution import cores
    from tuner.execution.worker import install_sigterm_handler
    from tuner.storage.runs import DEFAULT_STORAGE, open_storage, require_config

    if timeout is not None and timeout <= 0:
        raise TunerError(f"--timeout must be a positive number of seconds (got {timeout:g})")
    if trials is not None and trials < 1:
        raise TunerError(f"--trials must be at least 1 (got {trials})")
    cores.requested(n_jobs)
    if trial_timeout is not None and not trial_timeout > 0:
        raise TunerError(f"--trial-timeout must be a positive number of seconds (got {trial_timeout:g})")
    url = storage or DEFAULT_STORAGE
    store = open_storage(url, create=False)
    config = require_config(store, run_name)
    if not budget.has_budget(store, config):
        raise TunerError(f"run {config.run!r} has no budget recorded in the storage (it predates `tuner worker`); "
                         f"record one with `tuner run DATA --target {config.target} --run {config.run} --create-only`")
    ds = load_data(config, data)
    previous = install_sigterm_handler()
    try:
        return _work(store, url, config, ds, timeout=timeout, trials=trials, n_jobs=n_jobs, out=out,
                     trial_timeout=trial_timeout)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _work(store, url: str, config, ds, *, timeout, trials, n_jobs: int | None, out, trial_timeout=None) -> int:
    from tuner.execution.worker import Interrupted, standing_text, worker_id
    from tuner.workflow.run import TuningRun

    me = worker_id()
    # a worker is there for throughput: the clocked split (one process per core, up to the families)
    the_run = TuningRun.join(store, url, config, ds, timeout=timeout, trials=trials, n_jobs=n_jobs)
    driver = the_run.driver(progress=_Lines(out, config.metric), trial_timeout=trial_timeout, salt=me)
    families = driver.open_families()
    spent = budget.start_clock(store, config)
    jobs = f" using {the_run.split.describe()}"
    out.print(f"Worker {me}{jobs} joined run {config.run!r} ({', '.join(config.families)}; {config.metric}, "
              f"{config.cv}-fold CV); budget {spent.describe()}", soft_wrap=True)
    out.print(f"  now: {standing_text(store, config)} complete", soft_wrap=True)

    waiting_said = []

    def on_wait(running: int) -> None:
        if not waiting_said:
            out.print(f"  waiting: {running} trial(s) still running in other workers "
                      "(a trial whose worker dies is retried here)")
            waiting_said.append(True)

    started = time.monotonic()
    try:
        outcome = driver.spend(families, deadline_epoch=spent.deadline, timeout=timeout, max_trials=trials,
                              on_wait=on_wait)
    except KeyboardInterrupt as exc:
        out.print(f"\nInterrupted: the trial in progress is recorded as failed. Run {config.run!r} stands at: "
                  f"{standing_text(store, config)} complete", soft_wrap=True)
        out.print(f"Start `tuner worker --storage {url} --run {config.run}` again (or rerun `tuner run`) to continue.",
                  soft_wrap=True)
        return 143 if isinstance(exc, Interrupted) else 130
    the_run.finish(families, keep_model=False)  # the ensemble of the trials so far; `tuner export` refits
    why = {"done": "the run's budget is spent", "deadline": "time is up", "limit": "this worker's --trials reached",
           "set aside": "the families left keep failing"}.get(outcome.reason, outcome.reason)
    out.print(f"Worker {me} stops: {why}; it ran {outcome.trials} trial(s) in {time.monotonic() - started:.1f}s",
              soft_wrap=True)
    for fam in families:
        if fam.gave_up:
            out.print(f"  note: {fam.name} set aside: {fam.aside_reason()}")
    out.print(f"Run {config.run!r}: {standing_text(store, config)} complete", soft_wrap=True)
    return 0
