"""THE one place where tuner relies on what Optuna keeps private.

Everything else in tuner uses Optuna's public API. What is here has no public equivalent:

* ``rdb``: the ``RDBStorage`` behind a study's storage (Optuna wraps it in a private cache,
  ``_CachedStorage._backend``); ``storage_of``: a study's storage (``Study._storage``).
* ``trial_id`` / ``set_trial_id``: a trial's storage id (``Trial._trial_id``,
  ``FrozenTrial._trial_id``); the storage's methods take it, the public objects do not show it.
* ``models``: Optuna's SQLAlchemy table models (``optuna.storages._rdb.models``), so that a
  trial's writes go in one transaction (``tuner.storage.trial_writes``,
  ``tuner.execution.write_behind``), a claim counts trials in one query, and heartbeats can
  be read (there is no public reader).
* ``stale_trial_ids``: ``RDBStorage._get_stale_trial_ids``; the public
  ``optuna.storages.fail_stale_trials`` fails the same trials but cannot record why, in the
  same transaction as the FAIL.
* ``orm_session``: the storage's own SQLAlchemy session (``RDBStorage.scoped_session``,
  undocumented), so that a transaction of ours and the storage's calls inside it share one
  connection.
* ``set_param_without_commit``: ``RDBStorage._set_trial_param_without_commit`` (checks a
  parameter's distribution against the study's earlier ones, inside our transaction).
* ``put_in_memory`` / ``forget_cached_trials`` / ``frozen_of``: an in-memory study's trial and
  a ``Study``'s per-thread trial cache, updated in one step where ``report`` and
  ``set_user_attr`` would copy the trial once per call.

On import the installed Optuna is checked against the supported range and each private
thing is checked to be there with the shape used; a mismatch raises one
:class:`OptunaVersionError` (a ``TunerError``: one line, exit code 2) naming the fix. No
fallback hides a mismatch, and none surfaces mid-run.
"""

from __future__ import annotations

import copy
import inspect

import optuna
from optuna.trial import FrozenTrial, Trial

from tuner.errors import TunerError

LOW, HIGH = "4.2", "5.2"  # the same range as pyproject.toml: optuna>=LOW,<HIGH
SUPPORTED = f"optuna>={LOW},<{HIGH}"


class OptunaVersionError(TunerError):
    """The installed Optuna is outside the supported range or lacks what tuner relies on."""


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _fail(what: str):
    raise OptunaVersionError(f"optuna {optuna.__version__} is not supported by tuner ({what}); "
                             f"pip install \"{SUPPORTED}\"")


def _stores(func, *names: str) -> bool:
    """Whether ``func`` (an ``__init__``) sets or reads the attributes ``names``."""
    code = getattr(inspect.unwrap(func), "__code__", None)
    return code is not None and set(names) <= set(code.co_names)


def _params(func) -> list[str]:
    try:
        return list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return []


if not _version(LOW) <= _version(optuna.__version__) < _version(HIGH):
    _fail(f"tuner needs {SUPPORTED}")

try:
    from optuna.storages import _CachedStorage
    from optuna.storages._rdb import models
except ImportError as exc:
    _fail(f"missing {exc.name}")

_MODEL_ATTRS = {
    "BaseModel": ("metadata",),
    "StudyModel": ("find_or_raise_by_id",),
    "StudyUserAttributeModel": ("study_id", "key", "value_json"),
    "TrialModel": ("find_or_raise_by_id", "trial_id", "study_id", "number", "state", "datetime_start",
                   "datetime_complete"),
    "TrialParamModel": ("trial_id", "param_name", "param_value", "distribution_json"),
    "TrialValueModel": ("value_to_stored_repr", "trial_id", "objective", "value", "value_type"),
    "TrialIntermediateValueModel": ("intermediate_value_to_stored_repr", "trial_id", "step",
                                    "intermediate_value", "intermediate_value_type"),
    "TrialUserAttributeModel": ("trial_id", "key", "value_json"),
    "TrialSystemAttributeModel": ("trial_id", "key", "value_json"),
    "TrialHeartbeatModel": ("trial_id", "heartbeat"),
}
for _model, _attrs in _MODEL_ATTRS.items():
    for _attr in _attrs:
        if not hasattr(getattr(models, _model, None), _attr):
            _fail(f"no optuna.storages._rdb.models.{_model}.{_attr}")
if _params(models.TrialModel.find_or_raise_by_id)[:3] != ["trial_id", "session", "for_update"]:
    _fail("TrialModel.find_or_raise_by_id has another signature")
if _params(optuna.storages.RDBStorage._set_trial_param_without_commit)[:6] != [
        "self", "session", "trial_id", "param_name", "param_value_internal", "distribution"]:
    _fail("RDBStorage._set_trial_param_without_commit has another signature")
if _params(optuna.storages.RDBStorage._get_stale_trial_ids) != ["self", "study_id"]:
    _fail("RDBStorage._get_stale_trial_ids has another signature")
if not _stores(optuna.storages.RDBStorage.__init__, "scoped_session", "engine"):
    _fail("RDBStorage keeps its sessions under another name")
if not (_stores(_CachedStorage.__init__, "_backend") and _stores(optuna.Study.__init__, "_storage", "_study_id",
                                                                  "_thread_local")
        and _stores(Trial.__init__, "_trial_id", "_cached_frozen_trial")
        and _stores(FrozenTrial.__init__, "_trial_id")):
    _fail("Study / Trial / FrozenTrial / _CachedStorage keep their state under other names")
if not all(hasattr(optuna.storages.InMemoryStorage, name) for name in ("_get_trial", "_set_trial")) or not _stores(
        optuna.storages.InMemoryStorage.__init__, "_lock"):
    _fail("InMemoryStorage has no _lock / _get_trial / _set_trial")


# Raised when a finished trial is written to: Optuna >= 4.3 names it (a RuntimeError); 4.2
# raises a plain RuntimeError.
UpdateFinishedTrialError = getattr(optuna.exceptions, "UpdateFinishedTrialError", RuntimeError)


# -- storages, studies, trials --------------------------------------------------------------
def storage_of(study: optuna.Study):
    """The storage a study reads and writes through (Optuna's cache around an ``RDBStorage``)."""
    return study._storage


def rdb(storage) -> optuna.storages.RDBStorage | None:
    """The ``RDBStorage`` behind ``storage`` (a study's cached storage, or itself), or None."""
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def orm_session(backend: optuna.storages.RDBStorage):
    """The storage's thread-local SQLAlchemy session (``RDBStorage.scoped_session``, not
    documented): calls of the storage made while it is open reuse it instead of waiting for
    it (SQLite's one writer)."""
    return backend.scoped_session()


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: Trial | FrozenTrial) -> int:
    """A trial's storage id (the storage's methods take it; ``number`` is per study)."""
    return trial._trial_id


def set_trial_id(trial: FrozenTrial, value: int) -> None:
    trial._trial_id = value


def frozen_of(trial: Trial) -> FrozenTrial:
    """The running trial's own frozen copy, which ``report`` / ``set_user_attr`` keep current."""
    return trial._cached_frozen_trial


def forget_cached_trials(study: optuna.Study) -> None:
    """Make the study read its trials again (what ``tell`` does before the sampler's ``after_trial``)."""
    study._thread_local.cached_all_trials = None


def stale_trial_ids(storage, study) -> list[int]:
    """Ids of ``study``'s RUNNING trials whose heartbeat is older than the grace period."""
    return rdb(storage)._get_stale_trial_ids(study_id(study))


def set_param_without_commit(backend, session, trial_id_: int, name: str, internal: float, distribution) -> None:
    """``set_trial_param`` inside ``session`` (checked against the study's earlier distributions)."""
    backend._set_trial_param_without_commit(session, trial_id_, name, internal, distribution)


def put_in_memory(study: optuna.Study, trial: Trial, attrs: dict, intermediate: dict) -> None:
    """What ``report`` for every step and ``set_user_attr`` for every attribute would leave on
    the running ``trial`` of an in-memory study, in one copy of it."""
    storage, tid = study._storage, trial._trial_id
    if not isinstance(storage, optuna.storages.InMemoryStorage):
        raise TypeError("put_in_memory needs an in-memory study")
    with storage._lock:
        stored = storage._get_trial(tid)
        storage.check_trial_is_updatable(tid, stored.state)
        stored = copy.copy(stored)
        stored.intermediate_values = {**stored.intermediate_values, **intermediate}
        stored.user_attrs = {**stored.user_attrs, **attrs}
        storage._set_trial(tid, stored)
    trial._cached_frozen_trial.intermediate_values.update(intermediate)
    trial._cached_frozen_trial.user_attrs.update(attrs)


__all__ = ["HIGH", "LOW", "SUPPORTED", "OptunaVersionError", "UpdateFinishedTrialError", "forget_cached_trials", "frozen_of", "models",
           "orm_session", "put_in_memory", "rdb", "set_param_without_commit", "set_trial_id", "stale_trial_ids", "storage_of",
           "study_id", "trial_id"]
