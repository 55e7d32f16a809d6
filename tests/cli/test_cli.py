"""The command line, as a user runs it: outputs, formats, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tuner.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def csv_path(tmp_path, mixed_frame) -> Path:
    path = tmp_path / "churn.csv"
    mixed_frame.to_csv(path, index=False)
    return path


@pytest.fixture
def finished_run(csv_path, storage_url):
    result = invoke("run", csv_path, "--target", "churned", "--metric", "f1", "--models",
                    "logistic_regression,random_forest", "--trials", 2, "--cv", 3, "--storage", storage_url)
    assert result.exit_code == 0, result.output
    return result


def test_run_prints_task_schema_notes_and_leaderboard(finished_run):
    out = finished_run.output
    assert "Task: binary (target is text with 2 distinct values)" in out
    assert "dropped column 'customer_id': identifier-like" in out
    assert "dropped column 'constant': constant" in out
    assert "categorical columns: city (text)" in out
    assert "Run 'churn'" in out and "optimising f1" in out
    assert "ranked by cross-validated f1" in out
    assert "logistic_regression" in out and "random_forest" in out


@pytest.mark.parametrize("fmt", ["json", "csv", "markdown", "html"])
def test_leaderboard_formats_to_file(finished_run, storage_url, tmp_path, fmt):
    out = tmp_path / f"board.{fmt}"
    result = invoke("leaderboard", "--storage", storage_url, "--format", fmt, "--out", out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if fmt == "json":
        rows = json.loads(text)
        assert rows[0]["rank"] == 1 and "f1" in rows[0]["metrics"]
    elif fmt == "csv":
        frame = pd.read_csv(out)
        assert list(frame["rank"]) == list(range(1, len(frame) + 1)) and "f1_mean" in frame.columns
        assert set(frame["model"]) - {"ensemble"} == {"logistic_regression", "random_forest"}
    elif fmt == "markdown":
        assert text.startswith("| rank | model | f1")
    else:
        assert "<table" in text and "logistic_regression" in text


def test_leaderboard_table_and_runs(finished_run, storage_url):
    board = invoke("leaderboard", "--storage", storage_url, "--run", "churn")
    assert board.exit_code == 0 and "random_forest" in board.output
    runs = invoke("runs", "--storage", storage_url)
    assert runs.exit_code == 0
    assert "churn" in runs.output and "binary" in runs.output and "f1" in runs.output and "4/" in runs.output


def test_spaces_lists_families_and_hyperparameters():
    result = invoke("spaces", "--task", "regression")
    assert result.exit_code == 0
    for name in ("lasso", "random_forest", "svm", "xgboost", "alpha", "learning_rate", "prep_target"):
        assert name in result.output
    assert "logistic_regression" not in result.output


def _assert_user_error(result, needle, storage_file: Path | None = None):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert needle in lines[0]
    if storage_file is not None:
        assert not storage_file.exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "{missing}", "--target", "y"], "not found"),
        (["run", "{xlsx}", "--target", "y"], "unknown data format"),
        (["run", "{csv}", "--target", "nope"], "target column 'nope' is not in the data"),
        (["run", "{single}", "--target", "y"], "single class"),
        (["run", "{csv}", "--target", "churned", "--metric", "auc"], "unknown metric 'auc'"),
        (["run", "{csv}", "--target", "churned", "--metric", "rmse"], "does not apply to a binary task"),
        (["run", "{csv}", "--target", "churned", "--models", "lasso"], "'lasso' does not support binary"),
        (["run", "{csv}", "--target", "churned", "--models", "deep_forest"], "unknown model family 'deep_forest'"),
        (["run", "{csv}", "--target", "churned", "--trials", "0"], "--trials must be at least 1"),
        (["run", "{csv}", "--target", "churned", "--cv", "1"], "--cv must be at least 2"),
    ],
)
def test_input_errors_are_one_line_exit_2_and_write_nothing(tmp_path, csv_path, args, needle):
    (tmp_path / "data.xlsx").write_text("x")
    pd.DataFrame({"a": range(30), "b": [1.5] * 29 + [2.5], "y": ["k"] * 30}).to_csv(tmp_path / "single.csv", index=False)
    paths = {"missing": tmp_path / "absent.csv", "xlsx": tmp_path / "data.xlsx", "csv": csv_path, "single": tmp_path / "single.csv"}
    args = [a.format(**paths) for a in args]
    db = tmp_path / "store.db"
    result = invoke(*args, "--storage", f"sqlite:///{db}")
    _assert_user_error(result, needle, storage_file=db)


def test_leaderboard_errors(tmp_path, finished_run, storage_url):
    _assert_user_error(invoke("leaderboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"), "no storage at")
    _assert_user_error(invoke("leaderboard", "--storage", storage_url, "--run", "other"), "no run named 'other'")


def test_help_is_fast_and_imports_no_heavy_library():
    code = "import sys; from tuner.cli import app; assert 'tensorflow' not in sys.modules and 'xgboost' not in sys.modules and 'sklearn' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "tuner.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "leaderboard" in result.stdout


def test_console_script_runs_a_builtin_dataset(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tuner"), "run", "builtin:iris", "--target", "target", "--models", "logistic_regression", "--trials", "1",
         "--storage", f"sqlite:///{tmp_path / 't.db'}"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "multiclass" in result.stdout and "accuracy" in result.stdout
    assert result.stderr == ""  # progress stays quiet when not a terminal


def test_a_family_whose_optional_dependency_is_missing_names_the_extra(tmp_path, csv_path, monkeypatch):
    import importlib.util as iu

    real = iu.find_spec
    monkeypatch.setattr(iu, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    db = tmp_path / "store.db"
    result = invoke("run", csv_path, "--target", "churned", "--models", "keras_mlp", "--storage", f"sqlite:///{db}")
    _assert_user_error(result, "pip install 'tuner[keras]'", storage_file=db)


def test_python_dash_m_tuner_and_shell_completion():
    res = subprocess.run([sys.executable, "-m", "tuner", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Usage: python -m tuner" in res.stdout and "--install-completion" in res.stdout
    assert "run " in res.stdout and "export " in res.stdout
