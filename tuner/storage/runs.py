"""Where runs live: an Optuna storage holding one study per family, grouped under a run.

A run named R is one Optuna study ``R`` that carries the run's configuration (user
attribute ``tuner_run``) and one study ``R::family`` per model family. Any Optuna
tool (optuna-dashboard, ``optuna.load_study``) can read them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import optuna

from tuner.config import RunConfig
from tuner.errors import StorageError, TunerError
from tuner.storage import heartbeat_options
from tuner.storage.locks import run_lock
from tuner.storage.optuna_adapter import models

DEFAULT_STORAGE = "sqlite:///tuner.db"
CONFIG_ATTR = "tuner_run"
SEPARATOR = "::"


def family_study_name(run: str, family: str) -> str:
    return f"{run}{SEPARATOR}{family}"


def default_run_name(source: str) -> str:
    name = source.removeprefix("builtin:")
    name = Path(name).name
    for suffix in (".gz", ".bz2", ".zip", ".xz", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "run"


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return None


def load_sql_layer() -> None:
    """Import what opening an RDB storage imports on first use (SQLAlchemy's ORM, Alembic;
    Optuna's table models come with ``tuner.storage.optuna_adapter``) and configure the ORM
    mappers (also done on first use). ``tuner.api`` calls this when it is imported, so the
    first ``tune(timeout=...)`` spends its clock on models, not on setting up the process."""
    import importlib

    for module in ("sqlalchemy.orm", "alembic.migration", "alembic.script", "alembic.config", "alembic.command"):
        try:
            importlib.import_module(module)
        except ImportError:  # moved in a newer Alembic: it is then imported on first use
            pass
    try:
        from sqlalchemy.orm import configure_mappers

        configure_mappers()
    except Exception:  # noqa: BLE001 — a mapping problem shows when the storage is opened
        pass


def open_storage(url: str | None, *, create: bool, checked: bool = False) -> optuna.storages.BaseStorage:
    """Open ``url`` (default ``sqlite:///tuner.db``); with ``create=False`` a missing SQLite file is an error.

    ``checked``: another process of this run opened the storage moments ago (a local helper
    worker's parent), so its tables exist and its schema version was checked: Optuna's
    ``skip_table_creation`` and ``skip_compatibility_check`` spare reading the migration
    scripts again."""
    url = url or DEFAULT_STORAGE
    path = _sqlite_path(url)
    if path is not None and not create and not path.exists():
        raise StorageError(f"no storage at {path}: run `tuner run` first, or pass --storage URL")
    if not re.match(r"^[a-z0-9+]+://", url):
        raise StorageError(f"--storage {url!r} is not a database URL; use e.g. sqlite:///tuner.db or postgresql://host/db")
    engine_kwargs = {"connect_args": {"timeout": 60}} if path is not None else {"pool_pre_ping": True}
    try:
        storage = _open_rdb(_with_driver(url), engine_kwargs, checked=checked)
        if path is not None:
            _serialise_sqlite_writers(storage)
        return storage
    except ImportError as exc:
        raise StorageError(f"cannot open {url}: a database driver is missing ({exc}); pip install psycopg2-binary") from exc
    except Exception as exc:  # sqlalchemy's OperationalError & co: report, don't trace back
        first = str(exc).strip().splitlines()[0][:200]
        raise StorageError(f"cannot open storage {url}: {first}") from exc


# Errors of two processes creating the same new storage at once ("table ... already exists",
# a duplicate alembic version row, PostgreSQL's duplicate pg_type entry): the loser retries.
_CREATION_RACE = ("already exists", "duplicate", "unique constraint")
CREATION_ATTEMPTS = 5


def _open_rdb(url: str, engine_kwargs: dict, *, checked: bool = False):
    """``RDBStorage(url)``; a new storage's tables are created by whoever comes first.

    Optuna creates the tables, its version row and alembic's stamp in several statements
    with no lock, so processes that open a new storage at the same moment (two ``tuner
    run`` on a fresh ``tuner.db``) collide; the schema steps are idempotent, so opening
    again finds what the other process made and completes the rest.
    """
    import random
    import time

    for attempt in range(CREATION_ATTEMPTS):
        try:
            with heartbeat_options.quiet():
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_compatibility_check=checked,
                                                     skip_table_creation=checked, **heartbeat_options.storage_options())
            if not checked:
                _complete_indexes(storage)
            return storage
        except Exception as exc:  # sqlalchemy's errors, or optuna's assert on a half-made schema
            text = str(exc).lower()
            racing = isinstance(exc, AssertionError) or any(marker in text for marker in _CREATION_RACE)
            if not racing or attempt == CREATION_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))
    raise AssertionError("unreachable")


def _complete_indexes(storage) -> None:
    """Create any index of Optuna's schema that is missing.

    Optuna creates each table, then its indexes, in separate statements: a process killed
    in between (SIGKILL right as a new ``tuner.db`` appears) leaves e.g. ``studies`` without
    its unique index on the study name, which nothing recreates (``create_all`` skips
    existing tables), and two studies of one name can then be stored. Checking costs a
    catalogue query per index.
    """
    for table in models.BaseModel.metadata.sorted_tables:
        for index in table.indexes:
            index.create(bind=storage.engine, checkfirst=True)


def _with_driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy ≥ 2.1; use psycopg2 when only that is installed."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    return url


def _serialise_sqlite_writers(storage) -> None:
    """Let several local processes write one SQLite file without "database is locked".

    WAL lets readers run beside the one writer; every transaction starts with
    ``BEGIN IMMEDIATE`` so a process takes the write lock up front and waits for it
    (busy timeout, 60 s) instead of failing when it upgrades a read lock mid-transaction
    (SQLite's deadlock answer is an immediate SQLITE_BUSY, whatever the timeout). This is
    SQLAlchemy's documented recipe for pysqlite. The file must be on a local disk.
    """
    from sqlalchemy import event

    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        prepare_sqlite_connection(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while optuna set the schema up predate the hooks


def prepare_sqlite_connection(dbapi_connection, *, wait_s: float = 60.0) -> None:
    """WAL, a 60 s busy timeout and no implicit BEGIN on a new pysqlite connection.

    ``PRAGMA journal_mode = WAL`` can answer "database is locked" at once, busy timeout or
    not, when it meets the last connection of another process checkpointing the WAL as it
    closes; it is retried with a short back-off for up to ``wait_s`` seconds.
    """
    import sqlite3
    import time

    dbapi_connection.isolation_level = None  # pysqlite must not BEGIN on its own
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 60000")
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def load_config(storage, run: str) -> RunConfig | None:
    try:
        study = optuna.load_study(study_name=run, storage=storage)
    except KeyError:
        return None
    text = study.user_attrs.get(CONFIG_ATTR)
    return RunConfig.from_json(text) if text else None


def require_config(storage, run: str | None, *, data: str | None = None) -> RunConfig:
    """The config of ``run``; with no name, the run :func:`choose_run` picks."""
    return choose_run(storage, run, data=data)[0]


def choose_run(storage, run: str | None, *, data: str | None = None) -> tuple[RunConfig, str]:
    """The run a command works on, and why when it was not named (``""`` when it was).

    The same for every command taking ``--run``: the named run; else the only run in the
    storage; else the run named after the data file given (``tuner run``'s default name);
    else the most recent run (``tuner runs`` lists them all).
    """
    if run is not None:
        config = load_config(storage, run)
        if config is None:
            names = ", ".join(c.run for c in list_runs(storage)) or "none"
            raise StorageError(f"no run named {run!r} in the storage; runs there: {names}")
        return config, ""
    runs = list_runs(storage)
    if not runs:
        raise StorageError("the storage holds no runs yet; start one with `tuner run DATA --target COL`")
    if len(runs) == 1:
        return runs[0], "the only run in the storage"
    if data is not None:
        named = default_run_name(data)
        for config in runs:
            if config.run == named:
                return config, f"named after {data}; {len(runs)} runs in the storage, `tuner runs` lists them"
    return runs[-1], (f"the most recent of {len(runs)} runs; `tuner runs` lists them, --run NAME picks another")


def save_config(storage, config: RunConfig) -> RunConfig:
    """Store the run's config; returns what was stored.

    Under the run's lock the stored config is read again: two ``tuner run`` starting at the
    same moment on one run name must not both believe they create it (different data would
    then be tuned under one name). A config stored meanwhile is checked like any existing
    run (:func:`check_compatible`) and keeps its creation time and families (new ones added).
    """
    with run_lock(storage, config.run):
        existing = load_config(storage, config.run)
        if existing is not None:
            check_compatible(existing, config)
            families = list(dict.fromkeys(list(existing.families) + list(config.families)))
            if families != list(config.families) or existing.created_at != config.created_at:
                config = RunConfig.from_json(config.to_json())
                config.families, config.created_at = families, existing.created_at
        study = optuna.create_study(study_name=config.run, storage=storage, load_if_exists=True)
        study.set_user_attr(CONFIG_ATTR, config.to_json())
    return config


def list_runs(storage) -> list[RunConfig]:
    """Every run in the storage, oldest first."""
    runs = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        text = summary.user_attrs.get(CONFIG_ATTR)
        if text:
            runs.append(RunConfig.from_json(text))
    return sorted(runs, key=lambda c: c.created_at)


def load_family_study(storage, run: str, family: str) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=family_study_name(run, family), storage=storage)
    except KeyError:
        return None


def check_compatible(existing: RunConfig, new: RunConfig) -> None:
    """Refuse to continue a run on different data or with a different objective."""
    if existing.fingerprint != new.fingerprint:
        raise TunerError(
            f"run {existing.run!r} was made on different data (fingerprint {existing.fingerprint[:12]} vs "
            f"{new.fingerprint[:12]}); use a new --run name for this dataset"
        )
    if existing.task == new.task == "binary" and list(existing.classes) != list(new.classes):
        was, now = existing.classes[1], new.classes[1]  # the positive class (code 1): --pos-label
        raise TunerError(
            f"run {existing.run!r} scores {was!r} as the positive class but this call asks for {now!r}; "
            f"pass --pos-label {shlex.quote(str(was))} to continue the run, or use a new --run name"
        )
    for attr, flag in (("target", "--target"), ("task", "--task"), ("metric", "--metric"), ("cv", "--cv"), ("seed", "--seed"), ("cv_repeats", "--cv-repeats"),
                       ("test_size", "--test-size"), ("gap", "--gap")):
        if getattr(existing, attr) != getattr(new, attr):
            raise TunerError(
                f"run {existing.run!r} uses {flag} {getattr(existing, attr)} but this call asks for "
                f"{getattr(new, attr)}; drop {flag} to continue the run, or use a new --run name"
            )
    if existing.space != new.space:
        raise TunerError(f"run {existing.run!r} searches {'other --space overrides' if existing.space else 'without --space'}"
                         f" than this call asks for; drop --space to continue the run as it was, or use a new --run name")
    for attr, flag in (("groups", "--groups"), ("time_column", "--time-column"), ("weights", "--weights")):
        was, now = getattr(existing, attr), getattr(new, attr)
        if was != now:  # the data is read before the run is known: the column must be named again
            fix = f"pass {flag} {shlex.quote(was)} to continue the run" if was else f"drop {flag} to continue the run"
            raise TunerError(f"run {existing.run!r} was made {f'with {flag} {was!r}' if was else f'without {flag}'} "
                             f"but this call {f'gives {flag} {now!r}' if now else f'has no {flag}'}; "
                             f"{fix}, or use a new --run name")
