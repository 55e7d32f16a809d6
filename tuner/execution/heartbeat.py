"""Heartbeats on running trials, so a worker that dies mid-trial is noticed and its trial retried.

Every storage ``tuner`` opens is an Optuna ``RDBStorage`` with a heartbeat interval and
a retry callback (``tuner.storage.heartbeat_options``). A running trial's worker records a heartbeat every ``interval``
seconds (a daemon thread, :class:`Heartbeat`); a trial whose last heartbeat is older than
the grace period is *stale*: whoever claims the next trial of that family marks it
``FAIL`` (``fail_reason`` "no heartbeat for over N s: ...", written with the state in one
transaction) and Optuna's ``RetryHeartbeatStaleTrialCallback`` enqueues a ``WAITING`` copy
with the same parameters, which the next ``study.ask()`` picks up (at most
``MAX_RETRY`` times per original trial).

``TUNER_HEARTBEAT_S`` (default 10) sets the interval; the grace period is three
intervals. Give every worker of a run the same value.

A claimed trial also records the process that runs it (system attribute
``tuner_worker``: ``{"id": "host:pid", ...}``, :func:`record_worker`). A process on the
same machine that is gone (SIGKILL, a crash, a SIGTERM with no handler) is then noticed at
once, without waiting for the grace period: the next claim on the run fails its trial with
``fail_reason`` "the process running it (host:pid) is gone" and enqueues the same retry
(:func:`fail_trials_of_gone_processes`). "Same machine" means the same host name, boot and
PID namespace; the process start time guards against a reused pid. Trials of other
machines (or containers) are left to the heartbeat, and so is the trial of a local helper
process (``--n-jobs``, ``--trial-timeout``) while its parent lives: the parent records it.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import sys
import threading

import optuna

from tuner.storage import trial_writes
from tuner.storage.heartbeat_options import (  # noqa: F401
    DEFAULT_INTERVAL_S,
    ENV,
    GRACE_INTERVALS,
    MAX_RETRY,
    grace_s,
    interval_s,
    quiet,
    retry_callback_of,
)
from tuner.storage.optuna_adapter import rdb, stale_trial_ids, storage_of, trial_id

WORKER_ATTR = "tuner_worker"  # trial system attribute: the process that claimed the trial

_log = logging.getLogger(__name__)


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark trials whose worker stopped beating as FAIL, with their ``fail_reason``, and enqueue
    their retries (as Optuna's public ``fail_stale_trials``, which cannot record the reason)."""
    storage = storage_of(study)
    backend = rdb(storage)
    if backend is None:
        with quiet():
            optuna.storages.fail_stale_trials(study)
        return
    with quiet():
        if backend.get_heartbeat_interval() is None:
            return
        ids = stale_trial_ids(backend, study)
    reason = f"no heartbeat for over {grace_s()} s: its worker stopped (killed, crashed, or out of reach)"
    for tid in ids:
        _fail_and_retry(study, storage.get_trial(tid), reason)


# -- which process runs a trial ---------------------------------------------------------
def worker_id() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of ``pid`` from /proc (None: no /proc, or no such pid)."""
    text = _read(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text[text.rindex(")") + 2:].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def this_process() -> dict:
    """What :func:`record_worker` stores: enough to tell later, on this machine, whether we are gone."""
    pid = os.getpid()
    stat = _proc_stat(pid)
    info = {"id": f"{socket.gethostname()}:{pid}", "host": socket.gethostname(), "pid": pid,
            "boot_id": _read("/proc/sys/kernel/random/boot_id"), "pid_ns": _pid_namespace(),
            "started": stat[1] if stat else None}
    supervisor = _supervisor()
    if supervisor is not None:
        info["supervisor"] = supervisor
    return info


def _supervisor() -> dict | None:
    """The parent of a local helper process (``python -m tuner._helper_process``): while it
    lives, it records the trial of a helper that dies (``tuner.execution.local_workers``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if getattr(spec, "name", None) != "tuner._helper_process":
        return None
    ppid = os.getppid()
    stat = _proc_stat(ppid)
    return {"pid": ppid, "started": stat[1] if stat else None}


def record_worker(storage, trial_id_: int) -> None:
    """Record on a claimed trial that this process runs it (system attribute ``tuner_worker``)
    and its first heartbeat, in one transaction on an RDB storage."""
    trial_writes.record_claim(storage, trial_id_, WORKER_ATTR, this_process())


def process_gone(info) -> bool:
    """Whether the process described by ``info`` (a ``tuner_worker`` attribute) has surely
    ended and nobody else will record its trial.

    Only a process of this machine can be judged (same host name, boot and PID
    namespace); anything else, or anything unclear, is "not gone": the heartbeat decides.
    A local helper whose supervising parent still lives is left to that parent.
    """
    if not isinstance(info, dict) or info.get("host") != socket.gethostname():
        return False
    me = this_process()
    if info.get("boot_id") != me["boot_id"] or info.get("pid_ns") != me["pid_ns"]:
        return False  # another machine or container with the same name, or a reboot: cannot tell here
    if not _ended(info.get("pid"), info.get("started"), me):
        return False
    supervisor = info.get("supervisor")
    return not (isinstance(supervisor, dict) and not _ended(supervisor.get("pid"), supervisor.get("started"), me))


def _ended(pid, started, me: dict) -> bool:
    """Whether process ``pid`` (started at ``started`` clock ticks, if known) of this machine has ended."""
    if not isinstance(pid, int) or pid <= 0 or os.name != "posix":  # Windows' os.kill(pid, 0) terminates pid
        return False
    if pid == me["pid"]:  # this very process, or an earlier one that had our pid
        return started is not None and me["started"] is not None and started != me["started"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        pass
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, now_started = stat
    if state in ("Z", "X"):  # ended, not yet reaped by its parent
        return True
    return started is not None and now_started != started  # the pid now belongs to another process


def fail_trials_of_gone_processes(study: optuna.Study, running: list) -> set[int]:
    """Fail the RUNNING trials (frozen, from ``study.get_trials``) whose process is gone from
    this machine, and enqueue their retries as a stale heartbeat would. Call it under the
    run's lock (``tuner.storage.locks.run_lock``). Returns the ids of the trials failed."""
    failed = set()
    for trial in running:
        info = trial.system_attrs.get(WORKER_ATTR)
        if trial.state != optuna.trial.TrialState.RUNNING or not process_gone(info):
            continue
        if _fail_and_retry(study, trial, f"the process running it ({info.get('id') or info.get('pid')}) is gone"):
            failed.add(trial_id(trial))
    return failed


def _fail_and_retry(study: optuna.Study, trial, reason: str) -> bool:
    """Fail the running ``trial`` (frozen) with ``reason`` and enqueue its retry; False if it had ended."""
    # the retry must not inherit the reason, nor the dead process as its worker
    template = copy.deepcopy(trial)
    template.system_attrs.pop(WORKER_ATTR, None)
    template.user_attrs.pop("fail_reason", None)
    storage = storage_of(study)
    if not trial_writes.fail_running(storage, trial_id(trial), reason):
        return False
    callback = retry_callback_of(storage)
    if callback is not None:
        with quiet():
            callback(study, template)
    return True


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
    return trial_writes.trials_without_heartbeat(storage, trial_ids)
