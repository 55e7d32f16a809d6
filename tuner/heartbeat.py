"""Heartbeats on running trials, so a worker that dies mid-trial is noticed and its trial retried.

Every storage ``tuner`` opens is an Optuna ``RDBStorage`` with a heartbeat interval and
a retry callback. A running trial's worker records a heartbeat every ``interval``
seconds (a daemon thread, :class:`Heartbeat`); a trial whose last heartbeat is older than
the grace period is *stale*: whoever claims the next trial of that family marks it
``FAIL`` and Optuna's ``RetryHeartbeatStaleTrialCallback`` enqueues a ``WAITING`` copy
with the same parameters, which the next ``study.ask()`` picks up (at most
``MAX_RETRY`` times per original trial).

``TUNER_HEARTBEAT_S`` (default 10) sets the interval; the grace period is three
intervals. Give every worker of a run the same value.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings

import optuna

DEFAULT_INTERVAL_S = 10
GRACE_INTERVALS = 3
MAX_RETRY = 3
ENV = "TUNER_HEARTBEAT_S"

_log = logging.getLogger(__name__)


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
    # Optuna ≥ 4.9 renamed the callback; the old name still works (deprecated) before that.
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    if cls is not None:
        return "heartbeat_stale_trial_callback", cls(max_retry=MAX_RETRY)
    return "failed_trial_callback", optuna.storages.RetryFailedTrialCallback(max_retry=MAX_RETRY)


def storage_options() -> dict:
    """Keyword arguments for ``RDBStorage``: heartbeat interval, grace period, retry callback."""
    with quiet():
        key, callback = _retry_callback()
    return {"heartbeat_interval": interval_s(), "grace_period": grace_s(), key: callback}


@contextlib.contextmanager
def quiet():
    """Keep Optuna's heartbeat warnings (experimental API, ask() outside optimize()) off the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
        warnings.filterwarnings("ignore", message=".*failed_trial_callback.*")
        yield


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark trials whose worker stopped beating as FAIL (and enqueue their retries)."""
    with quiet():
        optuna.storages.fail_stale_trials(study)


class Heartbeat:
    """Record a trial's heartbeat now and then every interval until the block ends.

    A storage error in the background thread is logged, not raised: a short database
    outage must not kill a trial that is otherwise fine (if the outage outlasts the grace
    period the trial is retried elsewhere and this worker's result is dropped).
    """

    def __init__(self, storage, trial_id: int, *, first_beat: bool = True):
        """``first_beat=False`` when the trial's first heartbeat is already recorded (``budget.claim``)."""
        self.storage, self.trial_id, self.first_beat = storage, trial_id, first_beat
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Heartbeat":
        if self.first_beat:
            self.storage.record_heartbeat(self.trial_id)
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.trial_id}", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        interval = interval_s()
        while not self._stop.wait(interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as exc:  # noqa: BLE001 — recorded, and the grace period decides
                _log.warning("heartbeat of trial %s not recorded: %s", self.trial_id, exc)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def trials_without_heartbeat(storage, trial_ids: list[int]) -> list[int]:
    """The ids among ``trial_ids`` that never recorded a heartbeat ([] if that cannot be told)."""
    if not trial_ids:
        return []
    try:
        from sqlalchemy import select

        from optuna.storages._rdb import models

        backend = getattr(storage, "_backend", storage)
        session = backend.scoped_session()
        try:
            rows = session.execute(
                select(models.TrialHeartbeatModel.trial_id).where(models.TrialHeartbeatModel.trial_id.in_(trial_ids))
            ).scalars().all()
            session.commit()
        finally:
            session.close()
    except Exception as exc:  # noqa: BLE001 — an optuna schema change must not stop the run
        _log.debug("cannot read heartbeats: %s", exc)
        return []
    beating = set(rows)
    return [t for t in trial_ids if t not in beating]
