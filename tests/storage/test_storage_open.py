"""Opening a storage: a new storage is stamped with the schema's head revision (so later
opens, Optuna's own included, accept it)."""

from __future__ import annotations

import alembic.script
import optuna
import pytest
from sqlalchemy import text

from tuner.storage import runs as st


def _head_revision() -> str:
    from optuna.storages._rdb.storage import _VersionManager

    vm = _VersionManager.__new__(_VersionManager)
    vm.url = "sqlite://"
    return alembic.script.ScriptDirectory.from_config(vm._create_alembic_config()).get_current_head()


def test_a_new_storage_is_stamped_with_the_head_revision_and_reopens(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = st.open_storage(url, create=True)
    optuna.create_study(study_name="s", storage=store)
    with store.engine.connect() as conn:
        stamped = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    store.engine.dispose()
    assert stamped == [_head_revision()]
    # Optuna's own storage, which re-reads the scripts, accepts it (its compatibility check)
    plain = optuna.storages.RDBStorage(url)
    assert [s.study_name for s in optuna.get_all_study_summaries(plain)] == ["s"]
    plain.engine.dispose()




class _LockedWalCursor:
    """A pysqlite cursor whose ``PRAGMA journal_mode = WAL`` is refused ``locked`` times first."""

    def __init__(self, locked: int):
        self.locked, self.seen = locked, []

    def execute(self, sql):
        import sqlite3

        self.seen.append(sql)
        if "journal_mode" in sql and self.locked:
            self.locked -= 1
            raise sqlite3.OperationalError("database is locked")

    def close(self):
        pass


class _Conn:
    def __init__(self, cursor):
        self.isolation_level, self._cursor = "", cursor

    def cursor(self):
        return self._cursor


def test_a_wal_switch_refused_as_locked_is_retried_until_it_goes_through():
    """The last connection of another process checkpoints the WAL as it closes; a connection
    opened at that moment got "database is locked" from ``PRAGMA journal_mode = WAL`` at once,
    busy timeout or not (seen in CI: a Ctrl-C test's reader failed while two workers wrote)."""
    cursor = _LockedWalCursor(locked=3)
    conn = _Conn(cursor)
    st.prepare_sqlite_connection(conn)
    assert conn.isolation_level is None
    assert cursor.seen.count("PRAGMA journal_mode = WAL") == 4
    assert cursor.seen[-1] == "PRAGMA synchronous = NORMAL"


def test_a_wal_switch_locked_past_the_wait_raises():
    import sqlite3

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        st.prepare_sqlite_connection(_Conn(_LockedWalCursor(locked=10**6)), wait_s=0.05)


def test_several_processes_opening_and_closing_one_sqlite_file_lose_no_write(tmp_path):
    import multiprocessing
    import sqlite3

    path = str(tmp_path / "w.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()  # no connection stays open: each process's last close checkpoints the WAL
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        failures = pool.starmap(_open_write_close, [(path, 300)] * 4)
    assert failures == [0, 0, 0, 0]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone() == (1200,)
    conn.close()


def _open_write_close(path: str, n: int) -> int:
    """Open, write and close ``n`` connections the way the storage does; the failures seen."""
    import sqlite3

    failures = 0
    for k in range(n):
        try:
            conn = sqlite3.connect(path, timeout=60)
            st.prepare_sqlite_connection(conn)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?)", (k,))
            conn.execute("COMMIT")
            conn.close()
        except sqlite3.OperationalError:
            failures += 1
    return failures
