"""`tuner serve` tested through a real server process on a loopback port."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import tuner
from export_helpers import binary_frame, make_run, serving
from tuner.cli import app
from tuner.deploy.export import export_model

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

TOKEN = "test-token-123"
MAX_BODY = 20_000


def _call(url, method="GET", body=None, token=TOKEN, raw: bytes | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    storage, csv = make_run(folder, binary_frame(), "churned", ["logistic_regression"], "s")
    export_model(folder / "model", run="s", storage=storage)
    env = dict(os.environ, TUNER_SERVE_TOKEN=TOKEN)
    with serving(folder / "model", folder / "serve.log", "--max-body-bytes", str(MAX_BODY), env=env) as (base, _):
        yield base, folder / "model", csv


def _records(csv, n=5):
    raw = pd.read_csv(csv).drop(columns=["churned"]).head(n)
    records = [{k: (None if pd.isna(v) else v) for k, v in row.items()} for row in raw.to_dict(orient="records")]
    return raw, records


def test_health_needs_no_token(server):
    base, _, _ = server
    status, body = _call(base + "/health", token=None)
    assert status == 200 and body["status"] == "ok" and body["model"] == "logistic_regression"


def test_predict_batch_matches_the_loaded_model(server):
    base, model_dir, csv = server
    raw, records = _records(csv, 40)
    status, body = _call(base + "/predict", "POST", {"records": records})
    assert status == 200, body
    model = tuner.load(model_dir)
    assert body["predictions"] == list(model.predict(raw))
    np.testing.assert_allclose(body["probabilities"], model.predict_proba(raw).to_numpy(), rtol=1e-12)
    assert body["classes"] == ["no", "yes"]
    assert any("customer_id" in n for n in body["notes"])  # extra columns ignored with a note


def test_model_card_endpoint_and_openapi(server):
    base, _, _ = server
    status, card = _call(base + "/model")
    assert status == 200 and card["family"] == "logistic_regression" and card["classes"] == ["no", "yes"]
    status, spec = _call(base + "/openapi.json", token=None)
    assert status == 200
    assert {"x1", "x2", "city", "count"} <= set(spec["components"]["schemas"]["Record"]["properties"])


def test_malformed_body_is_422(server):
    base, _, _ = server
    status, body = _call(base + "/predict", "POST", raw=b'{"records": [{"x1": 1,')
    assert status == 422 and "malformed JSON" in body["message"]
    status, body = _call(base + "/predict", "POST", [1, 2])
    assert status == 422


def test_missing_column_is_422_naming_it(server):
    base, _, csv = server
    _, records = _records(csv, 2)
    del records[1]["x2"]
    status, body = _call(base + "/predict", "POST", {"records": records})
    assert status == 422
    assert body["detail"][0]["loc"] == ["body", "records", 1, "x2"] and "records[1].x2" in body["message"]


def test_wrong_type_is_422_naming_it(server):
    base, _, csv = server
    _, records = _records(csv, 2)
    records[0]["x1"] = "not a number"
    records[1]["city"] = {"nested": True}
    status, body = _call(base + "/predict", "POST", {"records": records})
    assert status == 422
    locs = [tuple(d["loc"]) for d in body["detail"]]
    assert ("body", "records", 0, "x1") in locs and ("body", "records", 1, "city") in locs


def test_oversized_body_is_413(server):
    base, _, csv = server
    _, records = _records(csv, 1)
    status, body = _call(base + "/predict", "POST", {"records": records * 400})  # ~40 KB > 20 KB limit
    assert status == 413 and "larger than" in body["detail"]


def test_wrong_or_missing_token_is_401(server):
    base, _, csv = server
    _, records = _records(csv, 1)
    for token in ("wrong", None):
        status, body = _call(base + "/predict", "POST", {"records": records}, token=token)
        assert status == 401
        status, _ = _call(base + "/model", token=token)
        assert status == 401


def test_non_loopback_without_token_is_refused(tmp_path):
    r = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0"], env={"TUNER_SERVE_TOKEN": ""})
    assert r.exit_code == 2 and "without a token" in r.output


def test_a_request_may_bring_its_own_threshold(server):
    base, model_dir, csv = server
    raw, records = _records(csv, 20)
    status, body = _call(base + "/predict", "POST", {"records": records, "threshold": 0.0})
    assert status == 200, body
    assert set(body["predictions"]) == {"yes"}  # every probability reaches 0
    assert body["predictions"] != list(tuner.load(model_dir).predict(raw)) or set(tuner.load(model_dir).predict(raw)) == {"yes"}
    status, body = _call(base + "/predict", "POST", {"records": records, "threshold": 1.5})
    assert status == 422 and "between 0 and 1" in body["message"]
    status, body = _call(base + "/predict", "POST", {"records": records, "threshold": "high"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "threshold"]
