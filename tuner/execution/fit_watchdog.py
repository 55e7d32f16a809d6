"""Stop waiting for a model fit when a wall-clock limit passes.

Between folds a trial can look at the clock itself (``tuner.search.driver``); inside a fit it
cannot: one fold of a random forest with 500 deep trees, of XGBoost with 1000 rounds, or of
a linear SVM with a large C (liblinear's Newton solver: 13 s for C = 295 on 5,000 rows of
500 Nystroem features, all of it inside one C call) can take longer than the whole budget.

:func:`call_with_limit` runs the fold in a worker thread (one per calling thread, reused from
fold to fold) and waits for it until the limit.
Every solver we use releases the GIL (NumPy, liblinear, libsvm, XGBoost, TensorFlow), so the
waiting thread is free to give up on time: at the limit it raises :class:`FitTimeLimit` at
once, whatever the fit is doing, and tells the worker to stop with an asynchronous
exception. The worker receives it the next time it runs Python code: between the trees of
a forest, the boosting rounds of XGBoost, the batches of Keras — at once — or, for a solver
that stays in C (libsvm, liblinear, SAGA), when that call returns; it then ends by itself
in the background (a daemon thread: it never holds the process open), at the lowest CPU priority
(Linux), so that the refit or the next trial has the cores. ``--trial-timeout``
(``tuner.execution.local_workers``) kills a trial's whole process instead, for what not even this
contains (a fit exhausting memory, a native crash).

Ctrl-C and SIGTERM reach the waiting thread at once too, so they no longer wait for a C
solver to return. The limit is armed only around the model's own fit / predict, never
around storage writes.

A fit given up on may still be inside a C++ solver (liblinear, libsvm) when the program
ends; CPython then ends that daemon thread from inside the solver as it finalizes, and the
process can die of a segmentation fault after its work is done (seen on coil2000: exit 139
once in three runs, its results written). A program that knows its exit status calls
:func:`exit_now_if_fits_abandoned` (``tuner``'s CLI does): with such a fit alive it leaves at
once with that status (``os._exit``, after flushing its output) instead of finalizing.

Handing a fold to the thread and back costs ~0.1 ms, a share worth saving where a fold
fits in 10 ms (hundreds of trials of 15 folds on small data). A call whose caller expects it
to be short (``expected_s``, measured on the trial's earlier folds, same parameters) and to
end far inside the limit — at most ``INLINE_UP_TO_S`` and ``INLINE_MARGIN`` times over
before the limit — runs in the calling thread instead.
"""

from __future__ import annotations

import ctypes
import os
import queue
import sys
import threading
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class FitTimeLimit(Exception):
    """The fit ran past its wall-clock limit."""


INLINE_UP_TO_S = 0.25
INLINE_MARGIN = 10.0


def call_with_limit(fn: Callable[[], T], until: float | None, expected_s: float | None = None,
                    threads: int | None = None) -> T:
    """``fn()``, or :class:`FitTimeLimit` once ``time.monotonic()`` passes ``until``
    (None: no limit; ``fn`` then runs in this thread, as it does when ``expected_s`` says it
    is short and ends far inside the limit).

    ``threads``: the OpenMP threads ``fn`` may use in the fit thread. OpenMP's thread count is
    per thread, so a limit the caller set (``threadpoolctl``) does not reach the fit thread:
    without it XGBoost's data preparation there starts a team of every core."""
    if until is None:
        return fn()
    delay = until - time.monotonic()
    if delay <= 0:
        raise FitTimeLimit()
    if expected_s is not None and expected_s <= INLINE_UP_TO_S and expected_s * INLINE_MARGIN < delay:
        return fn()
    runner = _runner()
    outcome: dict = {}
    done = threading.Event()
    runner.jobs.put((_limited(fn, threads), outcome, done))
    try:
        finished = done.wait(delay)
    except BaseException:  # Ctrl-C / SIGTERM while waiting: the fit must not go on
        runner.abandon()
        raise
    if not finished:
        runner.abandon()
        raise FitTimeLimit()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _Runner:
    """One "tuner-fit" thread that runs the folds of a calling thread one after another
    (a thread per fold cost ~0.25 ms, on every fold of every trial). Once a fold is given
    up on, its runner is abandoned: it gets the async stop and the next fold gets a new one."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.abandoned = False
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._loop, name="tuner-fit", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        try:
            while not self.abandoned:
                job = self.jobs.get()
                if job is None:  # release(): the thread ends, and its OpenMP threads with it
                    return
                fn, outcome, done = job
                try:
                    outcome["value"] = fn()
                except BaseException as exc:  # noqa: BLE001 — handed to the waiting thread
                    outcome["error"] = exc
                finally:
                    done.set()
        except BaseException:  # noqa: BLE001 — the async stop, arriving between folds: this runner is done
            return

    def usable(self) -> bool:
        return not self.abandoned and self.pid == os.getpid() and self.thread.is_alive()

    def abandon(self) -> None:
        """Stop the fold it runs (FitTimeLimit at its next Python bytecode); never use it again."""
        self.abandoned = True
        _abandoned.append(self.thread)
        _stop(self.thread)
        _lowest_priority(self.thread)


def _limited(fn: Callable[[], T], threads: int | None) -> Callable[[], T]:
    if threads is None:
        return fn

    def call() -> T:
        import threadpoolctl

        with threadpoolctl.threadpool_limits(limits=threads, user_api="openmp"):
            return fn()

    return call


def release() -> None:
    """End this thread's fit thread, if it has one (the next fit starts a new one).

    Call it when the fits are done (``tuner.execution.worker.work`` does). An idle fit thread
    keeps its OpenMP thread team, and libgomp, counting more threads than cores, then wakes
    the teams of every other thread by sleeping and signalling instead of spinning: a
    HistGradientBoosting refit with 2 threads after a run took 15 s instead of 1.5 s
    (benchmarks/RESULTS.md, "#23: the refit after tuning")."""
    runner = getattr(_local, "runner", None)
    _local.runner = None
    if runner is not None and runner.usable():
        runner.jobs.put(None)
        runner.thread.join(timeout=5.0)


_abandoned: list[threading.Thread] = []  # fit threads given up on (they end when their fit returns)


def fits_abandoned_alive() -> int:
    """How many fits given up on are still running (inside their model's code)."""
    _abandoned[:] = [t for t in _abandoned if t.is_alive()]
    return len(_abandoned)


def exit_now_if_fits_abandoned(status: int) -> None:
    """Leave the process with ``status`` now (``os._exit``) if a fit given up on still runs:
    finalizing the interpreter under it can crash the process (module docstring)."""
    if fits_abandoned_alive():
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 — a closed stream: nothing left to flush
                pass
        os._exit(status)


_local = threading.local()


def _runner() -> _Runner:
    runner = getattr(_local, "runner", None)
    if runner is None or not runner.usable():
        runner = _local.runner = _Runner()
    return runner


def _lowest_priority(worker: threading.Thread) -> None:
    """Let a fit given up on run on at the lowest CPU priority (Linux: nice 19 for that thread
    alone), so that what the process does next has the cores: a liblinear fit abandoned at the
    deadline went on for the whole refit of the winner and slowed it 4-5x (a core taken, and
    OpenMP's spinning threads starved; benchmarks/RESULTS.md, "#23: the refit after tuning").
    Elsewhere a thread's priority cannot be set alone, and it keeps its own."""
    if not sys.platform.startswith("linux") or worker.native_id is None:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, worker.native_id, 19)  # a thread id: only that thread
    except OSError:  # it has just ended
        pass


def _stop(worker: threading.Thread) -> None:
    """Ask ``worker`` to raise FitTimeLimit when it next runs Python code."""
    if worker.ident is not None and worker.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(FitTimeLimit))


__all__ = ["FitTimeLimit", "call_with_limit", "exit_now_if_fits_abandoned", "fits_abandoned_alive", "release"]
