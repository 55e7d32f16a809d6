"""A trial's reads of its family's trials in one round trip to the storage.

Optuna caches finished trials (``_CachedStorage``) but brings the cache up to date on every
read of the trial list: a query for the unfinished and the new trials, ~3 ms on SQLite.
Claiming and sampling one trial reads the list four times (``ask`` for waiting retries,
TPE's search-space groups, its observations, its constant-liar view of running trials):
~12 ms a trial, a third of what the driver spent around a small-data trial.

:class:`SharedReads` is that cache with one change: inside :func:`one_sync` (the worker
holds one around claiming and running a trial) the first read brings the cache up to date
and the others reuse it. Other workers' trials are then seen as they were at the claim,
a few milliseconds earlier; the reads that decide a budget (``tuner.execution.budget``) call
:func:`refresh` first and always query. Outside a window every read queries, as Optuna does.
If Optuna's cache changes shape, the override is simply never called.
"""

from __future__ import annotations

import contextlib

import optuna

from tuner.storage.trial_writes import rdb_backend


class SharedReads(optuna.storages._CachedStorage):
    def __init__(self, backend: optuna.storages.RDBStorage) -> None:
        super().__init__(backend)
        self._windows = 0
        self._synced: set[int] = set()  # studies whose cache is up to date in this window

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        if self._windows and study_id in self._synced:
            return
        super()._read_trials_from_remote_storage(study_id)
        if self._windows:
            self._synced.add(study_id)

    @contextlib.contextmanager
    def one_sync(self):
        self._windows += 1
        try:
            yield
        finally:
            self._windows -= 1
            if not self._windows:
                self._synced.clear()

    def add_finished(self, study_id: int, trials: list) -> None:
        """Put ``trials``, finished and just stored by this process, in the cache, as if read.

        Only right after a read of the study (no trial unknown to the cache below them): the
        cache then reads the study from their last id on.
        """
        with self._lock:
            study = self._studies.get(study_id)
            if study is None or not trials:
                return
            self._add_trials_to_cache(study_id, trials)
            study.last_finished_trial_id = max(study.last_finished_trial_id, *(t._trial_id for t in trials))

    def refresh(self, study_id: int) -> None:
        """The next read of ``study_id``'s trials queries the storage, window or not."""
        self._synced.discard(study_id)


def shared(storage):
    """``storage`` as a :class:`SharedReads` for a family study (others: unchanged)."""
    backend = rdb_backend(storage)
    return SharedReads(backend) if backend is not None else storage


def one_sync(study: optuna.Study):
    """A window in which ``study``'s trial list is read from the storage once."""
    storage = study._storage
    return storage.one_sync() if isinstance(storage, SharedReads) else contextlib.nullcontext()


def add_finished(study: optuna.Study, trials: list) -> None:
    """``trials`` of ``study`` were just stored by this process (see ``SharedReads.add_finished``)."""
    storage = study._storage
    if isinstance(storage, SharedReads):
        try:
            storage.add_finished(study._study_id, trials)
        except AttributeError:  # Optuna's cache changed shape: the next read fetches them
            pass


def refresh(study: optuna.Study) -> None:
    """Make the next read of ``study``'s trials query the storage (budget decisions)."""
    storage = study._storage
    if isinstance(storage, SharedReads):
        storage.refresh(study._study_id)


__all__ = ["SharedReads", "add_finished", "one_sync", "refresh", "shared"]
