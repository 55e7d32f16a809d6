"""A trial's writes in as few storage transactions as possible.

Optuna's RDB storage commits every call on its own: each suggested parameter (after a query
for the study's earlier distribution of that name), each fold's report, each attribute.
That is about 30 commits and 80 ms a trial on SQLite, more on PostgreSQL, and it was most of
the driver's overhead where a trial's models fit in a fraction of a second. Here:

* ``params_held``: the parameters a search space suggests are written together once it is
  done (also when it fails half-way, so a failed trial still shows what it tried);
* ``finish``: a trial's fold scores (kept in memory while it runs; the pruner reads them
  there), its result attributes and its outcome go in one transaction, where ``report``,
  ``set_user_attr`` and ``tell`` would take one each (and ``tell`` reads the trial back first).

Both use Optuna's private per-row writers inside one session; on another storage, or if that
API moves, every write goes through the public API one by one. In an in-memory study (a
worker's, ``tuner.execution.write_behind``) ``finish`` puts the fold scores and attributes on the
stored trial at once and then tells: each ``report`` / ``set_user_attr`` there copies the
trial and its dicts (~20 µs, two dozen times a trial).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
from datetime import datetime

import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)


def rdb_backend(storage):
    """The ``RDBStorage`` behind ``storage`` (Optuna wraps it in a cache), or None."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def _rdb(study: optuna.Study):
    """The study's ``RDBStorage`` with the private writers this module needs, or None."""
    backend = rdb_backend(study._storage)
    needed = ("_set_trial_param_without_commit", "_set_trial_value_without_commit",
              "check_trial_is_updatable", "scoped_session")
    return backend if backend is not None and all(hasattr(backend, name) for name in needed) else None


def session(backend, *, strict: bool = False):
    """Optuna's session scope: commit at the end, roll back on an error; ``strict``: an
    integrity error is raised (not ignored as a race with another writer)."""
    from optuna.storages._rdb.storage import _create_scoped_session

    return _create_scoped_session(backend.scoped_session, not strict)


class _ParamRecorder:
    """Stands in for a trial's storage while its parameters are suggested: keeps
    ``set_trial_param`` calls, passes everything else through."""

    def __init__(self, storage, pending: list):
        self._storage, self._pending = storage, pending

    def set_trial_param(self, trial_id, name, internal, distribution) -> None:
        self._pending.append((trial_id, name, internal, distribution))

    def __getattr__(self, name):
        return getattr(self._storage, name)


@contextlib.contextmanager
def params_held(trial: optuna.Trial):
    """Suggest inside this block; the parameters are stored in one transaction at its end."""
    backend = _rdb(trial.study)
    if backend is None:
        yield
        return
    pending: list = []
    real = trial.storage
    trial.storage = _ParamRecorder(real, pending)
    try:
        yield
    finally:
        trial.storage = real
        if pending:
            try:
                with session(backend) as db:
                    for trial_id, name, internal, distribution in pending:
                        backend._set_trial_param_without_commit(db, trial_id, name, internal, distribution)
            except (AttributeError, TypeError, ImportError):  # the private API moved: one by one
                log.debug("batched parameter writes unavailable; writing one by one", exc_info=True)
                for trial_id, name, internal, distribution in pending:
                    real.set_trial_param(trial_id, name, internal, distribution)


def finish(study: optuna.Study, trial: optuna.Trial, state: TrialState, value: float | None = None,
           attrs: dict | None = None, intermediate: dict[int, float] | None = None) -> None:
    """End the running ``trial`` as ``study.tell`` does, storing its fold scores
    (``intermediate``: step → value), user attributes and outcome in one transaction.

    As in ``tell``: a complete trial needs a finite ``value``; a pruned one takes its last
    fold score as its value. Raises ``UpdateFinishedTrialError`` if another worker already
    ended the trial (then nothing is written).
    """
    attrs, intermediate = dict(attrs or {}), dict(intermediate or {})
    if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
        raise ValueError(f"a complete trial needs a finite value (got {value!r})")
    if state == TrialState.PRUNED and value is None and intermediate:
        last = intermediate[max(intermediate)]
        value = last if math.isfinite(last) else None
    values = None if value is None or state == TrialState.FAIL else [float(value)]
    backend = _rdb(study)
    if backend is not None:
        try:
            _finish_rdb(backend, study, trial, state, values, attrs, intermediate)
            return
        except _PrivateApiMoved:
            log.debug("one-transaction trial writes unavailable; writing one by one", exc_info=True)
    elif _in_memory(study) and all(isinstance(step, int) and step >= 0 for step in intermediate):
        _put_in_memory(study, trial, attrs, {step: float(v) for step, v in intermediate.items()})
        intermediate, attrs = {}, {}
    for step, score in intermediate.items():
        trial.report(score, step)
    for key, attr in attrs.items():
        trial.set_user_attr(key, attr)
    study.tell(trial, values[0] if state == TrialState.COMPLETE else None, state=state)


def _in_memory(study: optuna.Study) -> bool:
    storage = study._storage
    return isinstance(storage, optuna.storages.InMemoryStorage) and all(
        hasattr(storage, name) for name in ("_lock", "_get_trial", "_set_trial", "check_trial_is_updatable"))


def _put_in_memory(study, trial, attrs: dict, intermediate: dict) -> None:
    """What ``report`` for every fold and ``set_user_attr`` for every attribute would leave on
    the running trial of an in-memory study, in one copy of it."""
    storage, trial_id = study._storage, trial._trial_id
    with storage._lock:
        stored = storage._get_trial(trial_id)
        storage.check_trial_is_updatable(trial_id, stored.state)
        stored = copy.copy(stored)
        stored.intermediate_values = {**stored.intermediate_values, **intermediate}
        stored.user_attrs = {**stored.user_attrs, **attrs}
        storage._set_trial(trial_id, stored)
    trial._cached_frozen_trial.intermediate_values.update(intermediate)
    trial._cached_frozen_trial.user_attrs.update(attrs)


def fail_running(storage, trial_id: int, reason: str) -> bool:
    """Fail a RUNNING trial with ``fail_reason`` = ``reason``, both in one transaction on an RDB
    storage (a trial its worker ends meanwhile keeps its own outcome and no reason). False if
    the trial had already ended."""
    backend = rdb_backend(storage)
    if backend is not None and hasattr(backend, "scoped_session"):
        try:
            from optuna.storages._rdb import models

            find_trial = models.TrialModel.find_or_raise_by_id
        except (ImportError, AttributeError):
            backend = None
    if backend is None:  # one write after the other
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", reason)
            return bool(storage.set_trial_state_values(trial_id, state=TrialState.FAIL))
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
    with session(backend, strict=True) as db:
        row = find_trial(trial_id, db, for_update=True)
        if row.state.is_finished():
            return False
        _upsert(db, models.TrialUserAttributeModel, trial_id, "key", {"fail_reason": {"value_json": json.dumps(reason)}})
        row.state = TrialState.FAIL
        row.datetime_complete = datetime.now()
    return True


class _PrivateApiMoved(Exception):
    pass


def _finish_rdb(backend, study, trial, state, values, attrs, intermediate) -> None:
    try:
        from optuna.storages._rdb import models

        find_trial = models.TrialModel.find_or_raise_by_id
        stored_repr = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
        set_value = backend._set_trial_value_without_commit
    except (ImportError, AttributeError) as exc:
        raise _PrivateApiMoved from exc
    frozen = copy.copy(trial._cached_frozen_trial)
    frozen.user_attrs = {**frozen.user_attrs, **attrs}
    frozen.intermediate_values = {**frozen.intermediate_values, **intermediate}
    study._thread_local.cached_all_trials = None
    try:
        study.sampler.after_trial(study, frozen, state, values)
    finally:
        with session(backend, strict=True) as db:
            row = find_trial(trial._trial_id, db, for_update=True)
            backend.check_trial_is_updatable(trial._trial_id, row.state)
            _upsert(db, models.TrialUserAttributeModel, trial._trial_id, "key",
                    {key: {"value_json": json.dumps(v)} for key, v in attrs.items()})
            _upsert(db, models.TrialIntermediateValueModel, trial._trial_id, "step",
                    {step: dict(zip(("intermediate_value", "intermediate_value_type"), stored_repr(v)))
                     for step, v in intermediate.items()})
            for objective, v in enumerate(values or []):
                set_value(db, row, objective, v)
            row.state = state
            row.datetime_complete = datetime.now()
    trial._cached_frozen_trial.user_attrs.update(attrs)
    trial._cached_frozen_trial.intermediate_values.update(intermediate)


def _upsert(db, model, trial_id: int, key_column: str, rows: dict) -> None:
    """Insert ``rows`` (key → column values) of ``model`` for the trial; update those present."""
    if not rows:
        return
    column = getattr(model, key_column)
    existing = {getattr(r, key_column): r for r in db.query(model)
                .filter(model.trial_id == trial_id, column.in_(list(rows)))}
    for key, fields in rows.items():
        record = existing.get(key)
        if record is None:
            db.add(model(trial_id=trial_id, **{key_column: key}, **fields))
        else:
            for name, field in fields.items():
                setattr(record, name, field)


__all__ = ["fail_running", "finish", "params_held", "rdb_backend", "session"]
