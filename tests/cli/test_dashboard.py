"""`tuner dashboard`: optuna-dashboard on the run's storage, started as a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from typer.testing import CliRunner

import tuner
from export_helpers import stop_process
from tuner.cli import app

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
        return resp.status, resp.read().decode("utf-8", "replace")


def test_dashboard_serves_the_runs_studies(mixed_frame, storage_url, tmp_path):
    pytest.importorskip("optuna_dashboard", reason="pip install 'tuner[dashboard]'")
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=1, cv=3, storage=storage_url, run="r")
    port = _free_port()
    log = open(tmp_path / "dashboard.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "dashboard", "--storage", storage_url, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/dashboard/" in first, first
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/api/studies")
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, f"dashboard exited: {log.seek(0) or log.read()}"
                assert time.monotonic() < deadline, "dashboard did not answer within 30 s"
                time.sleep(0.3)
        assert status == 200
        names = {s["study_name"] for s in json.loads(body)["study_summaries"]}
        assert {"r", "r::logistic_regression"} <= names
        status, page = _get(f"http://127.0.0.1:{port}/dashboard/")
        assert status == 200 and "<html" in page.lower()
    finally:
        stop_process(proc)
        proc.stdout.close()
        log.close()


def test_missing_extra_is_one_line_naming_the_install(monkeypatch, storage_url):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails as if not installed
    res = CliRunner().invoke(app, ["dashboard", "--storage", storage_url])
    assert res.exit_code == 2
    assert "pip install 'tuner[dashboard]'" in res.output and "Traceback" not in res.output


def test_busy_port_and_missing_storage_are_user_errors(mixed_frame, storage_url, tmp_path):
    pytest.importorskip("optuna_dashboard")
    runner = CliRunner()
    res = runner.invoke(app, ["dashboard", "--storage", f"sqlite:///{tmp_path / 'nothing.db'}"])
    assert res.exit_code == 2 and "no storage" in res.output
    tuner.tune(mixed_frame, target="churned", models=["logistic_regression"], trials=1, cv=3, storage=storage_url, run="r")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        res = runner.invoke(app, ["dashboard", "--storage", storage_url, "--port", str(busy.getsockname()[1])])
    assert res.exit_code == 2 and "cannot listen" in res.output
