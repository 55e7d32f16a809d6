"""Stop a model fit in this process when a wall-clock limit passes.

Between folds a trial can look at the clock itself (``tuner.study``); inside a fit it
cannot: one fold of a random forest with 500 deep trees, or of XGBoost with 1000 rounds,
can take longer than the whole budget. An interval timer (``SIGALRM``) raises
:class:`FitTimeLimit` in the main thread, where the fit runs. Python delivers it the next
time that thread runs Python code: between the trees of a forest, the boosting rounds of
XGBoost, the batches of Keras — so those stop within a tree or a round. Code that stays
in C for its whole fit (libsvm, liblinear) stops only when it returns; ``--trial-timeout``
(``tuner.local_workers``) is what stops those.

The limit is armed only around the model's own fit / predict, never around storage
writes. Outside the main thread (``tuner.tune`` called from a worker thread), or where
``SIGALRM`` is missing (Windows) or already in use by the caller, there is no in-fit limit:
the checks between folds remain. (A timer thread with ``PyThreadState_SetAsyncExc`` would
work from any thread, but hangs under ``cProfile`` / coverage tracers.)
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time


class FitTimeLimit(Exception):
    """The fit ran past its wall-clock limit."""


def _usable() -> bool:
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGALRM)
    return current in (signal.SIG_DFL, signal.SIG_IGN, None)  # not the caller's own alarm


@contextlib.contextmanager
def fit_time_limit(until: float | None):
    """Raise :class:`FitTimeLimit` if the block is still running at ``until``
    (``time.monotonic()``); None: no limit."""
    if until is None:
        yield
        return
    delay = until - time.monotonic()
    if delay <= 0:
        raise FitTimeLimit()
    if not _usable():
        yield
        return
    armed = [True]

    def on_alarm(signum, frame):
        if armed[0]:
            armed[0] = False
            raise FitTimeLimit()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


__all__ = ["FitTimeLimit", "fit_time_limit"]
