"""`tuner serve` never answers 500: property-based tests against a real server process.

One server (a classifier with a numeric, a categorical and a date column; bearer token
required; small body limit) serves the whole module. Hypothesis throws arbitrary JSON bodies,
raw bytes, content types, methods, paths and Authorization headers at it; schemathesis
generates requests from the service's own OpenAPI document (valid and invalid, with and
without the token). Every answer must be a 2xx / 4xx (JSON where the API speaks JSON), and
the server must stay up.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

import tuner
from export_helpers import binary_frame, make_run, serving
from tuner.deploy.export import export_model

pytestmark = pytest.mark.slow  # whole runs, processes, servers or a browser (pyproject.toml markers)

TOKEN = "fuzz-token-0123"
MAX_BODY = 200_000
COLUMNS = ["x1", "x2", "count", "city", "signup"]
ENDPOINTS = ["/predict", "/model", "/health", "/openapi.json", "/docs", "/redoc", "/", "/nope", "/predict/"]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much, HealthCheck.data_too_large])


def _frame():
    df = binary_frame()
    rng = np.random.default_rng(5)
    days = rng.integers(0, 2000, size=len(df))
    df["signup"] = [str(np.datetime64("2018-01-01") + int(d)) + " 10:30" for d in days]
    return df


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    storage, _ = make_run(folder, _frame(), "churned", ["logistic_regression"], "f")
    export_model(folder / "model", run="f", storage=storage)
    assert tuner.load(folder / "model").schema.datetime == ["signup"], "the fuzzed model must have a date column"
    with serving(folder / "model", folder / "server.log", "--max-body-bytes", str(MAX_BODY),
                 env=dict(os.environ, TUNER_SERVE_TOKEN=TOKEN)) as (base, proc):
        yield base, proc, folder / "server.log"


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


def _log_size(server) -> int:
    return server[2].stat().st_size


def _alive(server, session, since: int = 0):
    """The server is up, and no request made it log an exception since byte ``since`` of its log
    (not even one it turned into a 4xx)."""
    base, proc, log = server
    assert proc.poll() is None, "the server died"
    assert session.get(base + "/health", timeout=30).status_code == 200
    with open(log, "rb") as fh:
        fh.seek(since)
        text = fh.read().decode(errors="replace")
    assert "Traceback" not in text, text[-3000:]


def _check(resp) -> None:
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:500]}"
    if resp.status_code >= 400 and resp.request.method != "HEAD":
        assert "detail" in resp.json()  # every error is JSON with a detail


# ----------------------------------------------------------------------------- hypothesis


class Raw:
    """JSON text written as is (NaN, Infinity, 1e999, a lone surrogate escape, a 5,000-digit number)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r})"


RAW = st.sampled_from([Raw(t) for t in [
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "0e0", "-0", "1" + "0" * 400, "-" + "9" * 700,
    "9" * 5000, '"\\ud800"', '"\\udfff x"', '"\\u0000"', '"\\ufeff"', "123456789012345678901234567890.5",
]])
TEXT = st.text(st.characters(codec=None, categories=["L", "N", "P", "S", "Z", "Cc", "Cs"]), max_size=12)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.integers(min_value=10 ** 300, max_value=10 ** 600), st.integers(min_value=-(10 ** 600), max_value=-(10 ** 300)),
    st.floats(allow_nan=False, allow_infinity=False), st.floats(min_value=1e300), st.floats(max_value=-1e300),
    TEXT, RAW,
    st.sampled_from(["", " ", "NaN", "nan", "NA", "null", "None", "inf", "-Infinity", "1e999", "3.5", " 3.5 ",
                     "Paris", "Lyon", "2020-02-30", "2020-01-01T00:00:00+99:00", "0001-01-01", "9999-12-31 23:59",
                     "10000-01-01", "1970-01-01", "12/31/1999", "-1", "abc", "\x00", "é", "👍"]),
    st.sampled_from(["\ud800", "x\udfffy", "\udc00\ud800"]),  # lone surrogates (JSON escapes can carry them)
)
NESTED = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=8)
VALUE = st.integers(0, 3).flatmap(lambda i: SCALAR if i < 3 else NESTED)  # mostly flat: nesting stops a request early


def to_json(v) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k) + ":" + to_json(x) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    return json.dumps(v)


@st.composite
def record(draw) -> dict:
    """Every column (nine times in ten), any values, sometimes extra keys."""
    r = {c: draw(VALUE) for c in COLUMNS}
    if draw(st.integers(0, 9)) == 9:
        del r[draw(st.sampled_from(COLUMNS))]
    if draw(st.integers(0, 3)) == 3:
        r.update(draw(st.dictionaries(TEXT, SCALAR, max_size=2)))
    return r


@st.composite
def body(draw):
    """Mostly the right shape with wild values (what reaches the model); sometimes anything."""
    kind = draw(st.integers(0, 9))
    if kind < 7:
        return {"records": draw(st.lists(record(), min_size=1, max_size=5))}
    if kind < 9:
        return {"records": draw(st.lists(st.one_of(record(), VALUE), max_size=3)),
                **draw(st.dictionaries(TEXT, VALUE, max_size=2))}
    return draw(VALUE)


BODY = body()


@FUZZ
@given(body=BODY)
def test_any_json_body_is_never_a_500(server, session, body):
    base = server[0]
    text = to_json(body).encode("utf-8", "surrogatepass")
    note(f"body: {text[:500]!r}")
    logged = _log_size(server)
    resp = session.post(base + "/predict", data=text, timeout=20,
                        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    _check(resp)
    if resp.status_code == 200:
        payload = resp.json()
        n = len(body["records"])
        assert len(payload["predictions"]) == n and len(payload["probabilities"]) == n
        assert payload["classes"] == ["no", "yes"]
    else:
        assert resp.status_code in (413, 422), resp.text[:300]
        assert "detail" in resp.json()
    _alive(server, session, logged)


AUTH = st.one_of(st.none(), st.just(f"Bearer {TOKEN}"), st.just("Bearer"), st.just("Bearer "),
                 st.just("Basic dXNlcjpwYXNz"), st.just(f"bearer {TOKEN}"),
                 st.text(st.characters(min_codepoint=33, max_codepoint=255, exclude_categories=["Cc", "Zs"]), max_size=40))
CONTENT_TYPE = st.one_of(st.none(), st.sampled_from([
    "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/octet-stream", "application/json; charset=latin-1", "", "*/*", "application/xml"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30))


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
       path=st.one_of(st.sampled_from(ENDPOINTS), st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                                                        exclude_characters="#?%"), max_size=20)
                      .map(lambda p: "/" + p)),
       body=st.one_of(st.binary(max_size=300), BODY.map(lambda b: to_json(b).encode("utf-8", "surrogatepass"))),
       content_type=CONTENT_TYPE, auth=AUTH)
def test_any_request_is_never_a_500(server, session, method, path, body, content_type, auth):
    base = server[0]
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if auth is not None:
        headers["Authorization"] = auth
    logged = _log_size(server)
    resp = session.request(method, base + path, data=body if method not in ("GET", "HEAD") else None,
                           headers=headers, timeout=20)
    _check(resp)
    if (path, method) in (("/predict", "POST"), ("/model", "GET")) and TOKEN not in (auth or ""):
        assert resp.status_code in (401, 413)  # no token, no model ("bearer" in any case works; 413 comes first)
    _alive(server, session, logged)


def test_edge_bodies(server, session):
    base = server[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    good = {"x1": 1.0, "x2": 0.5, "count": 2, "city": "Paris", "signup": "2020-01-01 10:00"}
    cases = {
        b"[" * 150_000 + b"]" * 150_000: 413,  # over the body limit
        b"[" * 50_000: 422,  # nested too deeply for the parser
        json.dumps({"records": [{**good, "x1": [[[[[[1]]]]]]}]}).encode(): 422,
        json.dumps({"records": [good] * 3000}).encode(): 413,
        b'{"records": [' + json.dumps(good).encode().replace(b"1.0", b"1e999") + b"]}": 200,
        b'{"records": []}': 200,
        b'{"records": [{}]}': 422,
        b"\xff\xfe\x00": 422,
    }
    for body, status in cases.items():
        resp = session.post(base + "/predict", data=body, headers=auth, timeout=60)
        assert resp.status_code == status, (body[:60], resp.status_code, resp.text[:300])
        resp.json()
    _alive(server, session)


# ----------------------------------------------------------------------------- schemathesis


@pytest.fixture(scope="module")
def api_schema(server):
    base = server[0]
    return schemathesis.openapi.from_url(base + "/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("with_token", [True, False])
def test_schemathesis_from_the_openapi_document(server, api_schema, session, mode, with_token):
    base = server[0]
    headers = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
    seen = []

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=api_schema.as_strategy(generation_mode=mode))
    def run(case):
        # every default check: not_a_server_error, status code / content type / response schema
        # conformance, positive_data_acceptance, negative_data_rejection, ...
        resp = case.call_and_validate(base_url=base, session=session, headers=headers)
        seen.append((case.operation.label, resp.status_code))
        if case.operation.label in ("POST /predict", "GET /model"):
            if not with_token:
                assert resp.status_code == 401
            elif mode is GenerationMode.POSITIVE:
                assert resp.status_code == 200, resp.text[:300]  # schema-valid input is accepted

    run()
    labels = {label for label, _ in seen}
    assert "POST /predict" in labels, seen[:10]
    _alive(server, session)
