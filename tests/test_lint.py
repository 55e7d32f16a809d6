"""`ruff check` is clean on the code, the tests and the benchmarks (rules in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "tuner", "search_spaces", "tests",
                          "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, "ruff check (pyproject.toml [tool.ruff]) finds:\n" + res.stdout + res.stderr
