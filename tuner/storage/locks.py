"""The run's lock: one process at a time makes a run's budget decisions.

A PostgreSQL transaction-level advisory lock (released when the transaction ends or the
server drops a dead client; idle sessions are cut after 60 s), MySQL ``GET_LOCK``, or an
``flock`` on ``<file>.lock`` beside a SQLite file (released by the kernel when the holder
dies). Other backends get no lock and a best-effort budget (``tuner.execution.budget``).
The SQL runs on the storage's engine (``RDBStorage.engine``, public).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from tuner.storage.optuna_adapter import rdb

LOCK_TIMEOUT_S = 300


def _lock_key(run: str) -> int:
    return int.from_bytes(hashlib.sha256(f"tuner-run:{run}".encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def run_lock(storage, run: str):
    """Serialise budget decisions of every process working on ``run``."""
    backend = rdb(storage)
    url = str(getattr(backend, "url", ""))
    engine = getattr(backend, "engine", None)
    if url.startswith("sqlite:///"):
        with file_lock(Path(url.removeprefix("sqlite:///"))):
            yield
    elif engine is not None and engine.dialect.name == "postgresql":
        with engine.connect() as conn, conn.begin():
            conn.exec_driver_sql("SET LOCAL idle_in_transaction_session_timeout = '60s'")
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'")
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(key)s)", {"key": _lock_key(run)})
            yield
    elif engine is not None and engine.dialect.name in ("mysql", "mariadb"):
        name = f"tuner:{_lock_key(run)}"
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT GET_LOCK(%s, %s)", (name, LOCK_TIMEOUT_S))
            try:
                yield
            finally:
                conn.exec_driver_sql("SELECT RELEASE_LOCK(%s)", (name,))
    else:
        yield


@contextlib.contextmanager
def file_lock(db_path: Path):
    """An exclusive ``flock`` on ``<db_path>.lock`` (none on Windows: one local process at a time there)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock_path = db_path.with_name(db_path.name + ".lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


__all__ = ["LOCK_TIMEOUT_S", "file_lock", "run_lock"]
