"""How a storage is opened for heartbeats: interval, grace period, retry of stale trials.

Every storage ``tuner`` opens is an Optuna ``RDBStorage`` with a heartbeat interval, a grace
period and a callback that enqueues a retry of a trial failed for a stale heartbeat (all
public ``RDBStorage`` options). The workers' side (beating, noticing gone processes) is
``tuner.execution.heartbeat``.

``TUNER_HEARTBEAT_S`` (default 10) sets the interval; the grace period is three
intervals. Give every worker of a run the same value.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import optuna

from tuner.storage.optuna_adapter import rdb

DEFAULT_INTERVAL_S = 10
GRACE_INTERVALS = 3
MAX_RETRY = 3
ENV = "TUNER_HEARTBEAT_S"


def interval_s() -> int:
    text = os.environ.get(ENV, "")
    try:
        value = int(float(text)) if text else DEFAULT_INTERVAL_S
    except ValueError:
        value = DEFAULT_INTERVAL_S
    return max(1, value)


def grace_s() -> int:
    return GRACE_INTERVALS * interval_s()


def _retry_callback():
    # Optuna >= 4.9 renamed the callback; the old name still works (deprecated) before that.
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is not None:
        return "heartbeat_stale_trial_callback", cls(max_retry=MAX_RETRY)
    return "failed_trial_callback", optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)


def storage_options() -> dict:
    """Keyword arguments for ``RDBStorage``: heartbeat interval, grace period, retry callback."""
    with quiet():
        key, callback = _retry_callback()
    return {"heartbeat_interval": interval_s(), "grace_period": grace_s(), key: callback}


def retry_callback_of(storage):
    """The retry callback the storage was opened with (None: not an RDB storage, or none)."""
    backend = rdb(storage)
    for name in ("get_heartbeat_stale_trial_callback", "get_failed_trial_callback"):
        getter = getattr(backend, name, None)
        if getter is not None:
            with quiet():
                return getter()
    return None


@contextlib.contextmanager
def quiet():
    """Keep Optuna's heartbeat warnings (experimental API, ask() outside optimize()) off the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        warnings.filterwarnings("ignore", message=".*failed_trial_callback.*")
        yield


__all__ = ["DEFAULT_INTERVAL_S", "ENV", "GRACE_INTERVALS", "MAX_RETRY", "grace_s", "interval_s", "quiet",
           "retry_callback_of", "storage_options"]
