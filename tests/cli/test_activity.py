"""What long commands show while they work (issue #35, deliver 1): `tuner export`, `tuner report` and
`tuner importance` say each step with an estimate on a terminal (a pseudo-terminal here), and print
only their results through pipes; ``tuner.cli.activity`` itself; the estimators with progress=True."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import tuner
from tuner.cli.activity import Activity, Counting, about

REPO = Path(__file__).resolve().parents[2]
STEP_WORDS = ("refitting", "shuffling", "reading the run's data", "drawing the optimisation", "copying the run's")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|[\r\x07]")


# -- tuner.cli.activity -------------------------------------------------------------------------
def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=200, highlight=False), buffer


def test_about_says_whole_seconds():
    assert about(None) == "" and about(float("nan")) == ""
    assert about(0.2) == "~1s" and about(2.4) == "~2s" and about(63.0) == "~63s"


def test_each_step_leaves_a_line_with_its_estimate_and_time():
    console, buffer = terminal()
    with Activity(console) as step:
        step("refitting xgboost on all 455 training rows", 2.4)
        step("writing model/", None)
    text = ANSI.sub("", buffer.getvalue())
    assert re.search(r"refitting xgboost on all 455 training rows \(~2s\): \d+\.\ds", text), text
    assert re.search(r"writing model/: \d+\.\ds", text), text


def test_a_failed_step_says_where_it_stopped():
    console, buffer = terminal()
    with pytest.raises(RuntimeError), Activity(console) as step:
        step("refitting svm", None)
        raise RuntimeError("boom")
    assert "refitting svm: stopped after" in ANSI.sub("", buffer.getvalue())


def test_nothing_at_all_off_a_terminal_and_no_lines_when_transient():
    buffer = io.StringIO()
    with Activity(Console(file=buffer)) as step:  # a file or a pipe: not a terminal
        step("refitting", 1.0)
        step.detail("half done")
    assert buffer.getvalue() == ""
    console, buffer = terminal()
    with Activity(console, transient=True) as step:
        step("predicting", None)
    assert "predicting:" not in ANSI.sub("", buffer.getvalue())  # the spinner only, no line left


def test_stdout_is_never_taken_into_the_display(capsys):
    console, buffer = terminal()
    with Activity(console) as step:  # `tuner predict data.csv > out.csv` on a terminal: the CSV stays on stdout
        step("predicting", None)
        sys.stdout.write("prediction\n1\n")
    assert capsys.readouterr().out == "prediction\n1\n" and "prediction\n1" not in buffer.getvalue()


def test_counting_passes_everything_through_and_counts_rows():
    class Model:
        is_classifier = True

        def predict_batch(self, chunk, *, row_offset=0, **_):
            return list(chunk)

    console, buffer = terminal()
    with Activity(console) as step:
        step("predicting", None)
        counted = Counting(Model(), step)
        assert counted.is_classifier and counted.predict_batch([1, 2, 3], row_offset=0) == [1, 2, 3]
        counted.predict_batch([4, 5], row_offset=3)
        assert "5 rows done" in step._progress.tasks[0].description


# -- the commands, in a pseudo-terminal and through pipes ----------------------------------------
def signal_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    score = 2 * signal + (colour == "red") * 1.0 + rng.normal(scale=0.3, size=n)
    return pd.DataFrame({"signal": signal, "noise": noise, "colour": colour, "y": np.where(score > 0.3, "yes", "no")})


@pytest.fixture(scope="module")
def tuned(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("activity")
    signal_frame().to_csv(folder / "t.csv", index=False)
    url = f"sqlite:///{folder / 'tuner.db'}"
    tuner.tune(str(folder / "t.csv"), target="y", models="logistic_regression", trials=2, cv=2, storage=url,
               run="r", n_jobs=1)
    return folder, url


def _env() -> dict[str, str]:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50", "TUNER_N_JOBS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    for name in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    return env


def in_terminal(args: list[str], cwd: Path, timeout: float = 60.0) -> tuple[int, str]:
    """(exit code, everything shown) of `python -m tuner ARGS` with stdin, stdout and stderr on a pseudo-terminal."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "tuner", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=cwd, env=_env(), close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))


def piped(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuner", *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=60, stdin=subprocess.DEVNULL)


def assert_no_steps(res: subprocess.CompletedProcess) -> None:
    for word in STEP_WORDS:
        assert word not in res.stdout and word not in res.stderr, (word, res.stdout, res.stderr)


def test_export_shows_its_steps_on_a_terminal_and_only_its_result_through_a_pipe(tuned):
    folder, url = tuned
    code, shown = in_terminal(["export", "--storage", url, "--run", "r", "--out", "m1", "--importance"], folder)
    assert code == 0, shown
    assert re.search(r"importance, fold 1 of 2: refitting logistic_regression on \d+ rows \(~\d+s\): \d+\.\ds", shown), shown
    assert re.search(r"importance, fold 2 of 2: shuffling 3 column\(s\) × 5 on \d+ held-out rows", shown), shown
    assert "copying the run's final model" in shown or "refitting logistic_regression on all" in shown, shown
    assert "Exported logistic_regression" in shown
    res = piped(["export", "--storage", url, "--run", "r", "--out", "m2", "--importance"], folder)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Exported logistic_regression") and "importance (roc_auc" in res.stdout
    assert_no_steps(res)


def test_importance_shows_its_steps_on_a_terminal_and_only_its_result_through_a_pipe(tuned):
    folder, url = tuned
    code, shown = in_terminal(["importance", "--storage", url, "--run", "r"], folder)
    assert code == 0, shown
    assert "reading the run's data" in shown and "importance, fold 1 of 2: refitting logistic_regression" in shown
    assert re.search(r"shuffling 3 column\(s\) × 5 on \d+ held-out rows( \(~\d+s\))?: \d+\.\ds", shown), shown
    assert "logistic_regression: how much worse roc_auc gets" in shown
    res = piped(["importance", "--storage", url, "--run", "r", "--json"], folder)
    assert res.returncode == 0, res.stderr
    assert res.stdout.lstrip().startswith("{") and '"columns"' in res.stdout
    assert_no_steps(res)


def test_report_shows_its_steps_on_a_terminal_and_only_its_result_through_a_pipe(tuned):
    pytest.importorskip("plotly", reason="tuner report needs the report extra: pip install 'tuner[report]'")
    folder, url = tuned
    code, shown = in_terminal(["report", "--storage", url, "--run", "r", "--out", "r1.html"], folder)
    assert code == 0, shown
    assert "drawing the optimisation history" in shown, shown
    assert re.search(r"refitting logistic_regression on each of 2 CV folds for the winner's charts \(~\d+s\)", shown), shown
    assert "importance, fold 2 of 2: shuffling" in shown and "wrote r1.html" in shown
    res = piped(["report", "--storage", url, "--run", "r", "--out", "r2.html"], folder)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr.startswith("wrote r2.html") and (folder / "r2.html").is_file()
    assert_no_steps(res)


def test_predict_shows_the_rows_done_on_a_terminal_and_only_the_csv_through_a_pipe(tuned):
    folder, url = tuned
    tuner.export(str(folder / "m3"), run="r", storage=url)
    code, shown = in_terminal(["predict", "m3", "t.csv", "--out", "p.csv", "--chunk-rows", "50"], folder)
    assert code == 0, shown
    assert re.search(r"predicting the rows of t\.csv \(50 at a time\)", shown), shown
    assert "wrote 200 prediction(s) to p.csv" in shown
    res = piped(["predict", "m3", "t.csv", "--chunk-rows", "50"], folder)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "prediction" and len(res.stdout.splitlines()) == 201
    assert "predicting" not in res.stdout + res.stderr


def test_the_importances_say_each_step_with_an_estimate(tuned):
    from tuner.data.dataset import load_split_for_run
    from tuner.results import leaderboard as lb
    from tuner.results.importance import permutation_importances
    from tuner.storage.runs import open_storage, require_config

    folder, url = tuned
    store = open_storage(url, create=False)
    config = require_config(store, "r")
    row = lb.build(store, config)[0]
    train, test = load_split_for_run(config)
    steps = []
    permutation_importances(config, row["model"], row["params"], train, test, repeats=2,
                            on_step=lambda text, est: steps.append((text, est)), row=row)
    assert [t.split(": ")[1].split(" ")[0] for t, _ in steps] == ["refitting", "shuffling"] * 2
    assert all(est is not None and est >= 0 for _, est in steps)
    steps.clear()
    permutation_importances(config, row["model"], row["params"], train, test, repeats=2,
                            on_step=lambda text, est: steps.append((text, est)))  # no row: no estimate
    assert len(steps) == 4 and all(est is None for _, est in steps)


def test_an_estimator_with_progress_names_its_fit_and_the_winner(capsys):
    frame = signal_frame(120)
    clf = tuner.TunerClassifier(models="logistic_regression", trials=2, cv=2, n_jobs=1, progress=True)
    clf.fit(frame.drop(columns="y"), frame["y"])
    err = ANSI.sub("", capsys.readouterr().err)
    assert "TunerClassifier.fit: tuning on 120 rows × 3 columns" in err, err
    assert re.search(r"TunerClassifier\.fit: done in \d+\.\ds; the winner: logistic_regression", err), err
    assert "logistic_regression" in err
