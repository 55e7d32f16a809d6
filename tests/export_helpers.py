"""Small runs shared by the export / predict / serve / ONNX tests (tiny data, 1 trial, 2 folds)."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

import tuner

CLASSIFIERS = ["logistic_regression", "random_forest", "svm", "xgboost"]
REGRESSORS = ["lasso", "elastic_net", "random_forest", "svm", "xgboost"]


def keras_available() -> bool:
    return (importlib.util.find_spec("search_spaces.keras_mlp") is not None
            and importlib.util.find_spec("tensorflow") is not None)


def binary_frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Binary target with text categories, missing values, an id column and a constant column."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    city = rng.choice(["Paris", "Lyon", "Nice", None], size=n, p=[0.4, 0.3, 0.2, 0.1])
    signal = x1 + (city == "Paris") * 1.5 + rng.normal(scale=0.5, size=n)
    return pd.DataFrame({
        "customer_id": [f"C{i:05d}" for i in range(n)],
        "x1": np.where(rng.random(n) < 0.1, np.nan, x1),
        "x2": rng.normal(size=n),
        "city": city,
        "count": rng.integers(0, 5, size=n),
        "constant": 7,
        "churned": np.where(signal > 0.5, "yes", "no"),
    })


def multiclass_frame(n: int = 150, seed: int = 2) -> pd.DataFrame:
    """Three integer classes, and a categorical column with many rare levels (one-hot 'infrequent')."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    shop = rng.choice([f"s{i}" for i in range(45)], size=n)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["shop"] = shop
    df["label"] = y
    return df


def regression_frame(n: int = 120, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.exp(1 + X[:, 0] * 0.8 + 0.3 * X[:, 1] + rng.normal(scale=0.2, size=n))  # skewed, positive
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["kind"] = rng.choice(["u", "v"], size=n)
    df["price"] = y
    return df


def make_run(folder: Path, frame: pd.DataFrame, target: str, models: list[str], run: str,
             trials: int = 1, cv: int = 2) -> tuple[str, Path]:
    """Tune ``models`` on ``frame`` saved as a CSV (so the run can reload its data); (storage URL, CSV)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{run}.csv"
    frame.to_csv(csv, index=False)
    storage = f"sqlite:///{folder / 'tuner.db'}"
    tuner.tune(str(csv), target=target, models=models, trials=trials, cv=cv, storage=storage, run=run)
    return storage, csv


def native_outputs(fitted, model, raw: pd.DataFrame):
    """What the in-memory refit pipeline predicts for raw rows (labels / values, probabilities)."""
    from tuner.evaluation.cross_validation import predict_outputs

    X, _ = model.prepare(raw)
    codes, proba = predict_outputs(fitted, X, model.task, len(model.classes))
    if model.task == "binary" and model.threshold is not None:  # labels at its decision threshold
        from tuner.evaluation.threshold import labels

        codes = labels(proba[:, 1], model.threshold)
    if model.is_classifier:
        return np.asarray(model.classes, dtype=object)[codes], proba
    return codes, None


def stop_process(proc) -> None:
    """Terminate a server started by a test; kill it if it does not stop within 10 s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(model_dir: Path, log_path: Path, *extra_args: str, env: dict | None = None):
    """``tuner serve MODEL_DIR`` as a real process on a free loopback port, its output in
    ``log_path`` (a file, not a pipe: a full pipe would block the server); yields
    ``(base_url, proc)`` once ``/health`` answers, stops it after."""
    import subprocess
    import sys
    import time
    import urllib.request

    import pytest

    port = free_port()
    with open(log_path, "w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tuner.cli", "serve", str(model_dir), "--port", str(port),
                                 *extra_args], stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"server exited early: {Path(log_path).read_text()}")
                try:
                    with urllib.request.urlopen(base + "/health", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail("server did not start within 90 s")
                    time.sleep(0.2)
            yield base, proc
        finally:
            stop_process(proc)


def fit_pipeline(frame, target, family, params):
    """A trial's pipeline for ``family`` fitted on all of ``frame`` (no storage): (estimator, dataset, card)."""
    from tuner.data.dataset import prepare
    from tuner.evaluation.cross_validation import fit_quietly
    from tuner.evaluation.estimator import build_estimator, space_context
    from tuner.search.run_setup import make_config

    ds = prepare(frame, target)
    config = make_config(ds, run="x", metric=None, models=[family], cv=2, seed=0)
    est = build_estimator(config, family, params, space_context(config, 1, n_rows=len(ds.X)))
    fit_quietly(est, ds.X, ds.y)
    card = {"schema": config.schema, "task": config.task, "classes": config.classes, "family": family}
    return est, ds, card

