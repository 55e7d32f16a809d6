"""Opening a storage: a new storage is stamped with the schema's head revision (so later
opens, Optuna's own included, accept it)."""

from __future__ import annotations

import alembic.script
import optuna
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

