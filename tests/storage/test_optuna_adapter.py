"""tuner.storage.optuna_adapter: the one place that relies on Optuna's private parts checks,
when it is imported, the Optuna version and each private part; a mismatch is one line
naming the fix (exit code 2), before any work starts, never a traceback mid-run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import optuna

from tuner.storage import optuna_adapter

ROOT = Path(__file__).resolve().parents[2]


def _tuner_runs(tmp_path, setup: str) -> subprocess.CompletedProcess:
    code = (f"import sys, optuna; {setup}; sys.argv = ['tuner', 'runs', '--storage', 'sqlite:///x.db']; "
            "from tuner.cli import main; main()")
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_an_optuna_outside_the_supported_range_is_refused_in_one_line(tmp_path):
    proc = _tuner_runs(tmp_path, "optuna.__version__ = '4.1.0'")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert 'optuna 4.1.0 is not supported' in proc.stderr
    assert f'pip install "optuna>={optuna_adapter.LOW},<{optuna_adapter.HIGH}"' in " ".join(proc.stderr.split())


def test_a_private_part_that_moved_is_named(tmp_path):
    proc = _tuner_runs(tmp_path, "import optuna.storages._rdb.models as m; del m.TrialHeartbeatModel")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "TrialHeartbeatModel" in proc.stderr


def test_the_installed_optuna_passes_and_the_range_matches_pyproject():
    low, high = re.search(r'"optuna>=([0-9.]+),<([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).groups()
    assert (low, high) == (optuna_adapter.LOW, optuna_adapter.HIGH)
    assert optuna_adapter.SUPPORTED == f"optuna>={low},<{high}"


def test_rdb_finds_the_storage_behind_a_study(storage_url):
    from tuner.storage.runs import open_storage

    storage = open_storage(storage_url, create=True)
    study = optuna.create_study(study_name="s", storage=storage)
    assert optuna_adapter.rdb(optuna_adapter.storage_of(study)) is storage
    assert optuna_adapter.rdb(storage) is storage
    assert optuna_adapter.rdb(optuna.storages.InMemoryStorage()) is None
    trial = study.ask()
    assert optuna_adapter.trial_id(trial) == storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name("s"), trial.number)
    storage.engine.dispose()
