"""Stop a model fit in this process when a wall-clock limit passes.

Between folds a trial can look at the clock itself (``tuner.study``); inside a fit it
cannot: one fold of a random forest with 500 deep trees, or of XGBoost with 1000 rounds,
can take longer than the whole budget. A timer thread raises :class:`FitTimeLimit` in the
thread that runs the fit (``PyThreadState_SetAsyncExc``). The exception lands the next
time that thread runs Python code: between the trees of a forest, the boosting rounds of
XGBoost, the batches of Keras — so those stop within a tree or a round. Code that stays
in C for its whole fit (libsvm, liblinear) stops only when it returns; ``--trial-timeout``
(``tuner.local_workers``) is what stops those.

The limit is armed only around the model's own fit / predict, never around storage
writes, and disarming clears an exception that was raised but not yet delivered.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time


class FitTimeLimit(Exception):
    """The fit ran past its wall-clock limit."""


@contextlib.contextmanager
def fit_time_limit(until: float | None):
    """Raise :class:`FitTimeLimit` in this thread if the block is still running at ``until``
    (``time.monotonic()``); None: no limit."""
    if until is None:
        yield
        return
    delay = until - time.monotonic()
    if delay <= 0:
        raise FitTimeLimit()
    tid = threading.get_ident()
    lock = threading.Lock()
    state = {"armed": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["armed"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), ctypes.py_object(FitTimeLimit))

    timer = threading.Timer(delay, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["armed"] = False
            if state["fired"]:  # raised but perhaps not delivered yet: it must not land elsewhere
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)
        timer.cancel()


__all__ = ["FitTimeLimit", "fit_time_limit"]
