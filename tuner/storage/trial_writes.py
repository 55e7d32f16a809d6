"""A trial's writes in as few storage transactions as possible.

Optuna's RDB storage commits every call on its own: each suggested parameter (after a query
for the study's earlier distribution of that name), each fold's report, each attribute.
Some 30 commits a trial, which dominate where a trial's models fit in a fraction of a
second (benchmarks/RESULTS.md). Here:

* ``params_held``: the parameters a search space suggests are written together once it is
  done (also when it fails half-way, so a failed trial still shows what it tried);
* ``finish``: a trial's fold scores (kept in memory while it runs; the pruner reads them
  there), its result attributes and its outcome go in one transaction, where ``report``,
  ``set_user_attr`` and ``tell`` would take one each (and ``tell`` reads the trial back first).

Both write Optuna's tables (through ``tuner.storage.optuna_adapter``, checked when tuner
is imported) inside one session on the storage's public ``engine``; on another storage every
write goes through the public API one by one. In an in-memory study (a
worker's, ``tuner.execution.write_behind``) ``finish`` puts the fold scores and attributes on the
stored trial at once and then tells: each ``report`` / ``set_user_attr`` there copies the
trial and its dicts, two dozen times a trial.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import weakref
from datetime import datetime

import optuna
from optuna.trial import TrialState
from sqlalchemy import exc as sqlalchemy_exc

from tuner.storage.optuna_adapter import (
    UpdateFinishedTrialError,
    forget_cached_trials,
    frozen_of,
    models,
    orm_session,
    put_in_memory,
    rdb,
    set_param_without_commit,
    storage_of,
    trial_id,
)

log = logging.getLogger(__name__)

_STUDY_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # study → its id in the storage


def study_id(storage, study: optuna.Study) -> int:
    """The storage's id of ``study`` (public ``get_study_id_from_name``, asked once per study)."""
    known = _STUDY_IDS.get(study)
    if known is None:
        known = _STUDY_IDS[study] = (rdb(storage) or storage).get_study_id_from_name(study.study_name)
    return known


@contextlib.contextmanager
def session(backend: optuna.storages.RDBStorage, *, strict: bool = False):
    """A transaction on the storage's own session (``RDBStorage`` calls made inside it, such as
    its updatable check, use the same one): commit at the end, roll back on an error, as
    Optuna's own scope; ``strict``: an integrity error is raised (not ignored as a race with
    another writer). Database errors become Optuna's ``StorageInternalError``."""
    db = orm_session(backend)
    try:
        yield db
        db.commit()
    except sqlalchemy_exc.IntegrityError:
        db.rollback()
        if strict:
            raise
        log.debug("ignoring an integrity error: another process wrote the same row", exc_info=True)
    except sqlalchemy_exc.SQLAlchemyError as exc:
        db.rollback()
        raise optuna.exceptions.StorageInternalError(f"a storage transaction failed: {exc}") from exc
    except BaseException:
        db.rollback()
        raise


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
    backend = rdb(trial.storage)
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
            with session(backend) as db:
                for tid, name, internal, distribution in pending:
                    set_param_without_commit(backend, db, tid, name, internal, distribution)


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
    storage = storage_of(study)
    backend = rdb(storage)
    if backend is not None:
        _finish_rdb(backend, study, trial, state, values, attrs, intermediate)
        return
    if isinstance(storage, optuna.storages.InMemoryStorage) and all(
            isinstance(step, int) and step >= 0 for step in intermediate):
        put_in_memory(study, trial, attrs, {step: float(v) for step, v in intermediate.items()})
        intermediate, attrs = {}, {}
    for step, score in intermediate.items():
        trial.report(score, step)
    for key, attr in attrs.items():
        trial.set_user_attr(key, attr)
    study.tell(trial, values[0] if state == TrialState.COMPLETE else None, state=state)


def fail_running(storage, trial_id_: int, reason: str) -> bool:
    """Fail a RUNNING trial with ``fail_reason`` = ``reason``, both in one transaction on an RDB
    storage (a trial its worker ends meanwhile keeps its own outcome and no reason). False if
    the trial had already ended."""
    backend = rdb(storage)
    if backend is None:  # one write after the other
        try:
            storage.set_trial_user_attr(trial_id_, "fail_reason", reason)
            return bool(storage.set_trial_state_values(trial_id_, state=TrialState.FAIL))
        except UpdateFinishedTrialError:
            return False
    with session(backend, strict=True) as db:
        row = models.TrialModel.find_or_raise_by_id(trial_id_, db, for_update=True)
        if row.state.is_finished():
            return False
        _upsert(db, models.TrialUserAttributeModel, trial_id_, "key", {"fail_reason": {"value_json": json.dumps(reason)}})
        row.state = TrialState.FAIL
        row.datetime_complete = datetime.now()
    return True


def _finish_rdb(backend, study, trial, state, values, attrs, intermediate) -> None:
    stored_value = models.TrialValueModel.value_to_stored_repr
    stored_step = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
    tid = trial_id(trial)
    frozen = copy.copy(frozen_of(trial))
    frozen.user_attrs = {**frozen.user_attrs, **attrs}
    frozen.intermediate_values = {**frozen.intermediate_values, **intermediate}
    forget_cached_trials(study)
    try:
        study.sampler.after_trial(study, frozen, state, values)
    finally:
        with session(backend, strict=True) as db:
            row = models.TrialModel.find_or_raise_by_id(tid, db, for_update=True)
            backend.check_trial_is_updatable(tid, row.state)
            _upsert(db, models.TrialUserAttributeModel, tid, "key",
                    {key: {"value_json": json.dumps(v)} for key, v in attrs.items()})
            _upsert(db, models.TrialIntermediateValueModel, tid, "step",
                    {step: dict(zip(("intermediate_value", "intermediate_value_type"), stored_step(v)))
                     for step, v in intermediate.items()})
            _upsert(db, models.TrialValueModel, tid, "objective",
                    {objective: dict(zip(("value", "value_type"), stored_value(v)))
                     for objective, v in enumerate(values or [])})
            row.state = state
            row.datetime_complete = datetime.now()
    frozen_of(trial).user_attrs.update(attrs)
    frozen_of(trial).intermediate_values.update(intermediate)


def record_claim(storage, trial_id_: int, attr: str, value) -> None:
    """Set the system attribute ``attr`` of a claimed trial and record its first heartbeat: in
    one transaction on an RDB storage (a claim happens under the run's lock, so its writes
    are kept few), else one after the other."""
    backend = rdb(storage)
    if backend is None:
        storage.set_trial_system_attr(trial_id_, attr, value)
        storage.record_heartbeat(trial_id_)
        return
    from sqlalchemy import func

    with session(backend, strict=True) as db:
        row = models.TrialModel.find_or_raise_by_id(trial_id_, db)
        backend.check_trial_is_updatable(trial_id_, row.state)
        _upsert(db, models.TrialSystemAttributeModel, trial_id_, "key", {attr: {"value_json": json.dumps(value)}})
        beat = db.query(models.TrialHeartbeatModel).filter(models.TrialHeartbeatModel.trial_id == trial_id_) \
            .with_for_update().one_or_none()
        if beat is None:
            db.add(models.TrialHeartbeatModel(trial_id=trial_id_))
        else:
            beat.heartbeat = db.execute(func.now()).scalar()


def trials_without_heartbeat(storage, trial_ids: list[int]) -> list[int]:
    """The ids among ``trial_ids`` that never recorded a heartbeat (Optuna has no public reader;
    [] on a storage that is not an RDB one)."""
    backend = rdb(storage)
    if not trial_ids or backend is None:
        return []
    from sqlalchemy import select

    with session(backend) as db:
        beating = set(db.execute(select(models.TrialHeartbeatModel.trial_id)
                                 .where(models.TrialHeartbeatModel.trial_id.in_(trial_ids))).scalars().all())
    return [t for t in trial_ids if t not in beating]


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


__all__ = ["fail_running", "finish", "params_held", "record_claim", "session", "study_id", "trials_without_heartbeat"]
