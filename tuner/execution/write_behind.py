"""Write-behind: under a clock, a worker runs its trials in memory and stores them in batches.

Through an SQL storage every trial costs a claim (run lock, counts, Optuna's ``ask`` with
its reads, the worker's first heartbeat), a write of its parameters and a finishing
transaction: a large share of a run where a trial's models fit in a few dozen milliseconds
(small data, pruned after a fold or two; benchmarks/RESULTS.md).

A run with a clock and no trial counts has no budget to share out trial by trial, so there
a worker (:func:`attached`) gives each family an in-memory Optuna study with its own TPE
sampler and the family's pruner, holding every finished trial of the family's stored
study, and runs its trials there: ask, suggest, report and tell cost microseconds. Every
``FLUSH_S`` seconds, and when the worker stops (Ctrl-C included), :meth:`WriteBehind.flush`
takes the run's lock, stores the finished trials in one transaction (parameters, fold
scores, attributes, outcome; numbered after the family's trials as Optuna numbers them)
and brings the other workers' finished trials into memory.

What it changes for others: the leaderboard, ``tuner status`` and other workers see a
worker's trials up to ``FLUSH_S`` later, and not while they run (their samplers cannot
"lie" about them); a worker killed outright loses its unstored trials (at most
``FLUSH_S`` of work), nothing else. Trials that must be claimed through the storage still
are: a family's enqueued default configuration and the retries of dead workers' trials
(``WAITING``), which carry heartbeats as before, and every trial of a family once another
invocation has given it a count of trials (seen at the next flush). Dead workers' trials are looked for at
each flush where the storage shows running trials (every trial in memory is this
worker's, so a running trial in the storage is another worker's). A flush first glances at
every family in two queries (trial counts and states, trial counts given by other
invocations) and reads a family's trials only where something moved.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from datetime import datetime, timezone
from typing import NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.execution import budget
from tuner.storage import trial_writes
from tuner.storage.optuna_adapter import models, rdb, set_trial_id, storage_of, trial_id

FLUSH_S = 5.0
_MIRRORED = (TrialState.COMPLETE, TrialState.PRUNED)  # what a sampler or a pruner learns from


class _Glance(NamedTuple):
    trials: int
    last_id: int | None
    running: int
    waiting: int
    counted: bool  # the family has a target of complete trials


class WriteBehind:
    """The in-memory studies of one worker's families (see the module doc)."""

    def __init__(self, storage, run: str, families, sampler_for) -> None:
        """``sampler_for(family, n_stored)``: a new sampler for the family's in-memory study."""
        self.storage, self.run = storage, run
        self.stored: dict[str, optuna.Study] = {}
        self.memory: dict[str, optuna.Study] = {}
        self.pending: dict[str, list[int]] = {}  # memory trial ids finished and not stored yet
        self.mirrored: dict[str, set[int]] = {}  # storage trial ids that are in memory
        self.waiting: dict[str, bool] = {}  # the storage holds WAITING trials of the family
        self.counted: dict[str, bool] = {}  # the family has a target of complete trials (tuner.execution.budget)
        for fam in families:
            stored = fam.study
            trials, attrs = stored.get_trials(deepcopy=False), stored.user_attrs
            memory = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction=stored.direction,
                                         sampler=sampler_for(fam.name, len(trials)), pruner=stored.pruner)
            for key, value in attrs.items():
                memory.set_user_attr(key, value)
            self.stored[fam.name], self.memory[fam.name] = stored, memory
            self.pending[fam.name], self.mirrored[fam.name] = [], set()
            self._pull(fam.name, trials)
            self.counted[fam.name] = attrs.get(budget.TARGET_ATTR) is not None
        self.seen: dict[str, _Glance | None] = {}  # each family's last glance (``flush``)
        self.flushed_at = time.monotonic()

    # -- the worker's questions -------------------------------------------------------------
    def runs_locally(self, name: str) -> bool:
        """Whether the next trial of ``name`` runs in memory (else: claimed from the storage)."""
        return not (self.waiting[name] or self.counted[name])

    def finished(self, name: str, trial: optuna.Trial) -> None:
        """A trial of the in-memory study ended: store it with the next flush."""
        self.pending[name].append(trial_id(trial))

    def stored_trial_ended(self, name: str) -> None:
        """A trial claimed from the storage ended: bring it (and what else is new) into memory."""
        with budget.run_lock(self.storage, self.run):
            self._pull(name)

    def flush_if_due(self) -> None:
        if time.monotonic() - self.flushed_at >= FLUSH_S:
            self.flush()

    # -- storing and mirroring ----------------------------------------------------------------
    def flush(self) -> None:
        """Store the finished in-memory trials; mirror other workers' new ones (under the run's lock)."""
        with budget.run_lock(self.storage, self.run):
            for name, now in self._glance().items():
                if now is None or now != self.seen.get(name) or now.running or now.waiting:
                    self._pull(name)  # something moved: read the family's new trials
                self.seen[name] = now
                self.counted[name] = now.counted if now is not None else budget.target(self.stored[name]) is not None
            if any(self.pending.values()):
                self._store()
        self.flushed_at = time.monotonic()

    def _glance(self) -> dict[str, _Glance | None]:
        """Each family's trials at a glance, two queries for all of them (None: unknown, pull)."""
        from sqlalchemy import case, func, select

        trial, attr = models.TrialModel, models.StudyUserAttributeModel
        names = {trial_writes.study_id(self.storage, study): name for name, study in self.stored.items()}
        try:
            with trial_writes.session(rdb(self.storage)) as db:
                rows = db.execute(select(
                    trial.study_id, func.count(), func.max(trial.trial_id),
                    func.sum(case((trial.state == TrialState.RUNNING, 1), else_=0)),
                    func.sum(case((trial.state == TrialState.WAITING, 1), else_=0)),
                ).where(trial.study_id.in_(list(names))).group_by(trial.study_id)).all()
                targets = dict(db.execute(select(attr.study_id, attr.value_json).where(
                    attr.study_id.in_(list(names)), attr.key == budget.TARGET_ATTR)).all())
        except optuna.exceptions.StorageInternalError:  # a database hiccup: every family is read in full
            return dict.fromkeys(self.stored)
        counts = {row[0]: row[1:] for row in rows}
        return {name: _Glance(*counts.get(study_id, (0, None, 0, 0)),
                              counted=json.loads(targets.get(study_id) or "null") is not None)
                for study_id, name in names.items()}

    def _store(self) -> None:
        """One transaction for every pending trial (SQL inserts of whole tables, not ORM objects,
        which cost far more per row). Called under the run's lock right after a pull, so no
        trial can be created between that read and these rows."""
        from sqlalchemy import func, insert, select

        backend = rdb(self.storage)
        stored: dict[str, list[FrozenTrial]] = {}
        with trial_writes.session(backend, strict=True) as db:
            for name, ids in self.pending.items():
                if not ids:
                    continue
                study_id = trial_writes.study_id(self.storage, self.stored[name])
                models.StudyModel.find_or_raise_by_id(study_id, db, for_update=True)  # as Optuna numbers trials
                base = db.execute(select(func.count(models.TrialModel.trial_id))
                                  .where(models.TrialModel.study_id == study_id)).scalar_one()
                memory = storage_of(self.memory[name])
                children: dict = {}
                stored[name] = []
                for k, memory_id in enumerate(ids):
                    trial = copy.copy(memory.get_trial(memory_id))
                    trial.number = base + k
                    set_trial_id(trial, db.execute(insert(models.TrialModel.__table__).values(
                        number=trial.number, study_id=study_id, state=trial.state,
                        datetime_start=_utc(trial.datetime_start),
                        datetime_complete=_utc(trial.datetime_complete))).inserted_primary_key[0])
                    for model, rows in _child_rows(trial).items():
                        children.setdefault(model, []).extend(rows)
                    stored[name].append(trial)
                for model, rows in children.items():
                    if rows:
                        db.execute(insert(model.__table__), rows)
        for name, trials in stored.items():  # committed
            self.mirrored[name].update(trial_id(t) for t in trials)
            self.pending[name].clear()
            seen = self.seen.get(name)
            if seen is not None:  # the next glance expects these
                self.seen[name] = seen._replace(trials=seen.trials + len(trials), last_id=trial_id(trials[-1]))

    def _pull(self, name: str, trials: list[FrozenTrial] | None = None) -> None:
        """Mirror the family's stored trials (``trials``: as just read; else read now), after
        looking for dead workers' trials where another worker's trial is running."""
        stored = self.stored[name]
        if trials is None:
            trials = stored.get_trials(deepcopy=False)
        if any(t.state == TrialState.RUNNING for t in trials) and budget.sweep_due(stored):
            budget.sweep(self.storage, stored)  # another worker's trial may be dead: its retry waits
            trials = stored.get_trials(deepcopy=False)
        self._mirror(name, trials)

    def _mirror(self, name: str, trials: list[FrozenTrial]) -> None:
        """Bring the stored finished ``trials`` not yet in memory into it; note WAITING ones."""
        memory, mirrored = self.memory[name], self.mirrored[name]
        for t in trials:
            if t.state in _MIRRORED and trial_id(t) not in mirrored:
                mirrored.add(trial_id(t))
                with contextlib.suppress(ValueError):  # a trial Optuna itself would not accept
                    memory.add_trial(t)
        self.waiting[name] = any(t.state == TrialState.WAITING for t in trials)


def _child_rows(trial: FrozenTrial) -> dict:
    """The rows of ``trial``'s parameters, values, fold scores and attributes, by table."""
    from optuna.distributions import distribution_to_json

    tid = trial_id(trial)
    value_repr = models.TrialValueModel.value_to_stored_repr
    step_repr = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
    return {
        models.TrialParamModel: [
            {"trial_id": tid, "param_name": key, "param_value": trial.distributions[key].to_internal_repr(value),
             "distribution_json": distribution_to_json(trial.distributions[key])}
            for key, value in trial.params.items()],
        models.TrialValueModel: [
            {"trial_id": tid, "objective": i, **dict(zip(("value", "value_type"), value_repr(v)))}
            for i, v in enumerate(trial.values or [])],
        models.TrialIntermediateValueModel: [
            {"trial_id": tid, "step": step,
             **dict(zip(("intermediate_value", "intermediate_value_type"), step_repr(v)))}
            for step, v in trial.intermediate_values.items()],
        models.TrialUserAttributeModel: [
            {"trial_id": tid, "key": key, "value_json": json.dumps(v)} for key, v in trial.user_attrs.items()],
        models.TrialSystemAttributeModel: [
            {"trial_id": tid, "key": key, "value_json": json.dumps(v)} for key, v in trial.system_attrs.items()],
    }


def _utc(moment: datetime | None) -> datetime | None:
    """Optuna stores naive UTC times (``TrialModel.datetime_start``'s setter)."""
    return None if moment is None else moment.astimezone(timezone.utc).replace(tzinfo=None)


def usable(storage) -> bool:
    """Whether ``storage`` is one this module can write to (an Optuna RDB storage)."""
    return rdb(storage) is not None


@contextlib.contextmanager
def attached(storage, run: str, families, sampler_for, *, guard=contextlib.nullcontext):
    """Run ``families``' trials in memory inside the block (each ``fam.study`` is its in-memory
    study there, the stored one again after); everything is stored when the block ends, inside
    ``guard()`` (the worker holds Ctrl-C back there)."""
    wb = WriteBehind(storage, run, families, sampler_for)
    for fam in families:
        fam.study = wb.memory[fam.name]
    try:
        yield wb
    finally:
        try:
            with guard():
                wb.flush()
        finally:
            for fam in families:
                fam.study = wb.stored[fam.name]


__all__ = ["FLUSH_S", "WriteBehind", "attached", "usable"]
