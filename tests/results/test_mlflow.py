"""MLflow: a run's leaderboard logged to a real local file store (one run, nested runs per row),
the exported folder as an MLflow model (loaded by mlflow.pyfunc through tuner's own loader) and
`tuner serve`'s /invocations, MLflow's scoring protocol."""

from __future__ import annotations

import json
import os
import urllib.request

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from export_helpers import binary_frame, serving
from tuner.cli.app import app

mlflow = pytest.importorskip("mlflow")
runner = CliRunner()


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    csv = folder / "churn.csv"
    binary_frame(n=160).to_csv(csv, index=False)
    # a real local tracking store (MLflow 3 keeps file: stores in maintenance mode); its artifacts
    # go to ./mlruns of the working directory
    storage, uri = f"sqlite:///{folder / 'tuner.db'}", f"sqlite:///{folder / 'mlflow.db'}"
    here = os.getcwd()
    os.chdir(folder)
    yield from _logged(folder, csv, storage, uri)
    os.chdir(here)


def _logged(folder, csv, storage, uri):
    res = runner.invoke(app, ["run", str(csv), "--target", "churned", "--models", "logistic_regression,random_forest",
                              "--trials", "2", "--cv", "2", "--storage", storage, "--run", "churn", "--mlflow", uri])
    assert res.exit_code == 0, res.output
    assert f"MLflow: logged to {uri}" in res.output
    yield folder, csv, storage, uri


def _runs(uri):
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tuner")
    return client, client.search_runs([experiment.experiment_id])


def test_one_mlflow_run_per_tuner_run_with_a_nested_run_per_family(logged):
    _, _, _, uri = logged
    client, runs = _runs(uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["tuner.run"] == "churn"
    parent = parents[0]
    assert parent.data.params["metric"] == "roc_auc" and parent.data.params["task"] == "binary"
    children = {r.data.tags["tuner.family"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert {"logistic_regression", "random_forest"} <= set(children)
    lr = children["logistic_regression"]
    assert lr.data.metrics["trials_complete"] == 2
    assert 0.5 < lr.data.metrics["roc_auc_mean"] <= 1.0 and "accuracy_std" in lr.data.metrics
    assert "C" in lr.data.params and "trial_number" in lr.data.params
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.csv", "leaderboard.html"} <= artifacts


def test_a_resumed_run_logs_into_the_same_mlflow_run(logged):
    folder, csv, storage, uri = logged
    res = runner.invoke(app, ["run", str(csv), "--target", "churned", "--trials", "2", "--storage", storage,
                              "--run", "churn", "--mlflow", uri])
    assert res.exit_code == 0, res.output
    client, runs = _runs(uri)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    live = [r for r in runs if r.data.tags.get("tuner.family") == "logistic_regression"
            and r.data.tags.get("tuner.superseded") == "no"]
    assert len(live) == 1 and live[0].data.metrics["trials_complete"] == 4


def test_the_exported_folder_is_an_mlflow_model_predicting_as_tuner_does(logged, tmp_path):
    folder, csv, storage, uri = logged
    out = tmp_path / "model"
    res = runner.invoke(app, ["export", "--storage", storage, "--run", "churn", "--out", str(out), "--no-importance",
                              "--mlflow", uri])
    assert res.exit_code == 0, res.output
    assert (out / "MLmodel").exists() and json.loads((out / "model_card.json").read_text())["mlflow"]["flavor"]
    raw = pd.read_csv(csv).drop(columns=["churned"])
    loaded = mlflow.pyfunc.load_model(str(out))
    got = loaded.predict(raw)
    done = runner.invoke(app, ["predict", str(out), str(csv), "--proba", "--out", str(tmp_path / "p.csv")])
    assert done.exit_code == 0, done.output
    expected = pd.read_csv(tmp_path / "p.csv")
    assert list(got["prediction"]) == list(expected["prediction"])
    np.testing.assert_allclose(got.filter(like="proba_").to_numpy(), expected.filter(like="proba_").to_numpy(), atol=1e-9)
    # --mlflow logged the folder under the run's MLflow run
    client, runs = _runs(uri)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(parent.info.run_id, "model")}


def test_serve_answers_mlflows_invocations_protocol(logged, tmp_path):
    folder, csv, storage, _ = logged
    out = tmp_path / "model"
    assert runner.invoke(app, ["export", "--storage", storage, "--run", "churn", "--out", str(out),
                               "--no-importance"]).exit_code == 0
    raw = pd.read_csv(csv).drop(columns=["churned"]).head(4)
    records = json.loads(raw.to_json(orient="records"))
    split = json.loads(raw.to_json(orient="split", index=False))

    def post(base, body):
        req = urllib.request.Request(base + "/invocations", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    with serving(out, tmp_path / "serve.log", env={**os.environ, "TUNER_SERVE_TOKEN": ""}) as (base, _):
        status, by_records = post(base, {"dataframe_records": records})
        assert status == 200, by_records
        status, by_split = post(base, {"dataframe_split": split})
        assert status == 200 and by_split == by_records
        status, bad = post(base, {"instances": records})
        assert status == 422 and "dataframe_records" in bad["message"]
    expected = mlflow.pyfunc.load_model(str(out)).predict(raw)
    assert [r["prediction"] for r in by_records["predictions"]] == list(expected["prediction"])


def test_without_mlflow_the_flag_exits_2_naming_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("No module named 'mlflow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    res = runner.invoke(app, ["run", "builtin:iris", "--target", "target", "--trials", "1",
                              "--storage", f"sqlite:///{tmp_path / 't.db'}", "--mlflow", "sqlite:///nowhere.db"])
    assert res.exit_code == 2 and "pip install 'tuner[mlflow]'" in res.output
    assert not (tmp_path / "t.db").exists()  # nothing written


def test_a_tracking_uri_mlflow_refuses_exits_2_before_tuning(tmp_path):
    res = runner.invoke(app, ["run", "builtin:iris", "--target", "target", "--trials", "1",
                              "--storage", f"sqlite:///{tmp_path / 't.db'}", "--mlflow", "nosuchscheme://x"])
    assert res.exit_code == 2 and "MLflow cannot use the tracking URI 'nosuchscheme://x'" in res.output
    assert not (tmp_path / "t.db").exists()


def test_mlflow_models_serve_serves_the_exported_folder(logged, tmp_path):
    """`mlflow models serve -m DIR --env-manager local` (MLflow's own scoring server) on a tuner folder."""
    import shutil
    import subprocess
    import sys
    import time

    from export_helpers import free_port, stop_process

    folder, csv, storage, _ = logged
    out = tmp_path / "model"
    assert runner.invoke(app, ["export", "--storage", storage, "--run", "churn", "--out", str(out),
                               "--no-importance"]).exit_code == 0
    cli = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    port = free_port()
    with open(tmp_path / "mlflow.log", "w+") as log:
        proc = subprocess.Popen([cli, "models", "serve", "-m", str(out), "--env-manager", "local", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            raw = pd.read_csv(csv).drop(columns=["churned"]).head(3)
            body = json.dumps({"dataframe_records": json.loads(raw.to_json(orient="records"))}).encode()
            deadline = time.monotonic() + 90
            while True:
                try:
                    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                                 headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=10) as reply:
                        got = json.loads(reply.read())
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"mlflow models serve did not answer: {(tmp_path / 'mlflow.log').read_text()}")
                    time.sleep(0.5)
        finally:
            stop_process(proc)
    expected = mlflow.pyfunc.load_model(str(out)).predict(raw)
    assert [r["prediction"] for r in got["predictions"]] == list(expected["prediction"])
