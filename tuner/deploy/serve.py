"""HTTP prediction service over an exported artifact (FastAPI + uvicorn, extra ``tuner[serve]``).

Endpoints::

    GET  /health         {"status": "ok", "model": family, "task": task}   (never needs the token)
    GET  /model          the model card
    POST /predict        {"records": [{column: value, ...}, ...]}
                         -> {"predictions": [...], "probabilities": [[...], ...] | null,
                             "classes": [...], "notes": [...]}
    GET  /openapi.json   OpenAPI schema (request body generated from the model's input schema)

Bad input is a 422 naming the field (missing column, wrong type, malformed JSON); a body
over the size limit is a 413; a missing or wrong bearer token (when one is set) a 401. No
body gets a 500: what the model cannot predict is a 422 too, and numbers JSON cannot hold
(a prediction that overflowed) are sent as null with a note. Input rules: :mod:`tuner.data.inputs`.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations at
# runtime, and the request models are built per app from the model's schema.
import hmac
import ipaddress
import json
import math
import os
import re
import sys
import traceback
from typing import Any, Optional

from tuner.data import inputs
from tuner.data.inputs import InputError
from tuner.deploy.artifact import LoadedModel, missing_extra
from tuner.errors import TunerError

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
TOKEN_ENV = "TUNER_SERVE_TOKEN"


def _require():
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise missing_extra(exc.name or "fastapi", "serve") from None


class BodyLimit:
    """ASGI middleware: read the request body up to ``max_bytes``; beyond that answer 413."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                return await self._refuse(send)
        if scope.get("method") == "POST":  # the API speaks JSON only: read a body as JSON whatever its type says
            kept = [(k, v) for k, v in scope.get("headers", []) if k != b"content-type"]
            scope = dict(scope, headers=kept + [(b"content-type", b"application/json")])
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await self._refuse(send)
            chunks.append(body)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send):
        payload = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes; "
                                        "send fewer records per request"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _finite_or_none(value):
    """``value`` with every float that JSON cannot hold (NaN, ±inf) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _json_list(values) -> list:
    """An array as JSON-ready lists; NaN (no prediction) and infinities become None."""
    import numpy as np

    if values.dtype.kind == "f" and not np.isfinite(values).all():
        return _finite_or_none(values.tolist())
    if values.dtype.kind == "O":
        return _finite_or_none(values.tolist())
    return values.tolist()


def _dumps(content) -> bytes:
    """Strict JSON, ASCII only: a lone surrogate or a NaN can never make the response fail."""
    return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def _blank_is_missing(v):
    return None if isinstance(v, str) and not v.strip() else v


def _category(v):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (bool, int, float)):
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    raise ValueError("must be text, a number or null")


# What a numeric field accepts as text (tuner.data.inputs): a number pandas reads, infinity (then
# missing, with a note), blank, or a word pandas reads as missing. Whitespace around is allowed.
_SPACE = "[ \\t\\n\\r\\f\\v]*"
NUMERIC_TEXT = (
    f"^{_SPACE}(?:[-+]?(?:[0-9]+\\.?[0-9]*|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
    "|[-+]?(?:inf|Inf|INF|infinity|Infinity)"
    "|" + "|".join(sorted((w.replace(".", "\\.") for w in inputs.NA_TEXT if w), key=len, reverse=True))
    + f")?{_SPACE}$"
)


def _record_model(model: LoadedModel):
    """A pydantic model of one input row, generated from the model's schema (the OpenAPI document's
    ``Record``: it says what each field accepts, which is what :mod:`tuner.data.inputs` accepts)."""
    from typing import Annotated

    from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model

    Number = Annotated[Optional[float], BeforeValidator(_blank_is_missing), WithJsonSchema({"anyOf": [
        {"type": "number"}, {"type": "boolean"}, {"type": "string", "pattern": NUMERIC_TEXT}, {"type": "null"}]})]
    Category = Annotated[Optional[str], BeforeValidator(_category), WithJsonSchema({"anyOf": [
        {"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]})]
    def number_with_words(words: list[str]):
        """A numeric field whose training data had a few words read as missing ('?'): they are missing here too."""
        known = frozenset(words)

        def word_is_missing(v):
            return None if isinstance(v, str) and v.strip() in known else v

        pattern = f"^{_SPACE}(?:" + "|".join(re.escape(w) for w in sorted(known, key=len, reverse=True)) + f"){_SPACE}$"
        return Annotated[Optional[float], BeforeValidator(_blank_is_missing), BeforeValidator(word_is_missing),
                         WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "boolean"},
                                                   {"type": "string", "pattern": NUMERIC_TEXT},
                                                   {"type": "string", "pattern": pattern}, {"type": "null"}]})]

    fields: dict[str, Any] = {}
    categories = model.schema.categories
    missing_words = getattr(model.schema, "missing_words", None) or {}
    for i, c in enumerate(model.schema.numeric):
        words = missing_words.get(c)
        also = f"; also missing, as in training: {', '.join(map(repr, words[:10]))}" if words else ""
        fields[f"n{i}"] = (number_with_words(words) if words else Number, Field(..., alias=c, description=(
            "number; null, blank or NA when missing; numeric text (\"3.5\") and booleans (1 / 0) are converted"
            + also)))
    text = set(getattr(model.schema, "text", None) or [])
    for i, c in enumerate(model.schema.categorical):
        seen = categories.get(c, [])
        hint = (f"category (null, blank or NA when missing; numbers and booleans become text); "
                f"seen in training: {', '.join(map(str, seen[:20]))}{' ...' if len(seen) > 20 else ''}")
        if c in text:
            hint = "free text (null, blank or NA when missing): its words are the model's features; new words are ignored"
        fields[f"c{i}"] = (Category, Field(..., alias=c, description=hint))
    return create_model("Record", __config__=ConfigDict(extra="allow", populate_by_name=False), **fields)


def _validation_message(errors) -> str:
    parts = []
    for e in errors[:5]:
        loc = [x for x in e.get("loc", ()) if x != "body"]
        if e.get("type") == "json_invalid":
            why = (e.get("ctx") or {}).get("error", "")
            parts.append(f"malformed JSON at character {loc[0] if loc else '?'}: {why}".rstrip(": "))
            continue
        where = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".") or "body"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def create_app(model: LoadedModel, *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES):
    """The FastAPI app serving ``model`` (wrapped in the body-size limit)."""
    _require()
    from fastapi import Depends, FastAPI, Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse as _StarletteJSON
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, Field, create_model

    class JSONResponse(_StarletteJSON):
        def render(self, content) -> bytes:
            return _dumps(content)

    Record = _record_model(model)

    PredictRequest = create_model(
        "PredictRequest",
        records=(list[Record], Field(..., description="rows to predict, one object per row, keyed by column")),
    )

    class PredictResponse(BaseModel):
        predictions: list[Any] = Field(..., description="one per record, in order; null where the model's "
                                                         "output is not a finite number (see `notes`)")
        probabilities: Optional[list[list[Optional[float]]]] = Field(
            None, description="per class, in the order of `classes`; null for regression")
        classes: Optional[list[Any]] = None
        notes: list[str] = Field([], description="what was ignored or imputed: extra columns, unseen categories, ...")

    class ErrorDetail(BaseModel):
        loc: list[Any] = Field(..., description='where: ["body", "records", record index, column]')
        msg: str
        type: str

    class ErrorResponse(BaseModel):
        detail: list[ErrorDetail]
        message: str = Field(..., description="the errors in one line")

    class PlainError(BaseModel):
        detail: str

    card = _finite_or_none(model.card)
    app = FastAPI(
        title=f"tuner model: {card['family']} predicting {card['target']!r}",
        description=f"{card['task']} model from run {card.get('run')!r}; exported {card.get('created_at')}.",
        version=str(card.get("versions", {}).get("tuner", "")),
        default_response_class=JSONResponse,
    )
    errors_doc = {
        413: {"model": PlainError, "description": "request body larger than the limit"},
        422: {"model": ErrorResponse, "description": "bad input; `loc` names the field"},
    }
    if token is not None:
        errors_doc[401] = {"model": PlainError, "description": "missing or wrong bearer token"}
    bearer = HTTPBearer(auto_error=False)

    def check_token(credentials: Optional[HTTPAuthorizationCredentials] = Depends(bearer)):
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            from fastapi import HTTPException

            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        for e in errors:
            e.pop("input", None)  # do not echo whole request bodies back
        return JSONResponse(status_code=422, content={"detail": errors, "message": _validation_message(errors)})

    @app.exception_handler(TunerError)
    async def _user_error(request: Request, exc: TunerError):
        loc = ["body", "records", exc.column] if isinstance(exc, InputError) and exc.column else ["body"]
        return JSONResponse(status_code=422, content={
            "detail": [{"loc": loc, "msg": str(exc), "type": "value_error"}], "message": str(exc)})

    @app.get("/health")
    def health():
        return {"status": "ok", "model": card["family"], "task": card["task"]}

    @app.get("/model", dependencies=[Depends(check_token)],
             responses={k: v for k, v in errors_doc.items() if k == 401})
    def model_card():
        return JSONResponse(card)

    schema = model.schema

    def unprocessable(errors: list[dict]):
        return JSONResponse(status_code=422, content={"detail": errors, "message": _validation_message(errors)})

    def parse(body: bytes):
        """The JSON body, or the 422 that says why it is not JSON."""
        try:
            payload = json.loads(body)
            if b"\\u" in body or not body.isascii():  # a lone surrogate may be in there: replace it
                payload = inputs.without_surrogates(payload)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nesting too deep
            pos = getattr(exc, "pos", 0)
            why = getattr(exc, "msg", None) or ("nested too deeply" if isinstance(exc, RecursionError) else str(exc))
            return unprocessable([{"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error",
                                   "ctx": {"error": why}}])
        return payload

    def answer(body: bytes, mlflow: bool = False):
        # Parsed and checked here rather than through a pydantic model per record: same 422s
        # (field named in `loc`), several times faster on 1,000-row requests.
        payload = parse(body)
        if isinstance(payload, _StarletteJSON):
            return payload
        if mlflow:  # MLflow's scoring protocol (tuner.deploy.mlflow_model): its two DataFrame forms
            payload = mlflow_records(payload)
            if payload is None:
                return unprocessable([{"type": "model_attributes_type", "loc": ["body"], "msg": (
                    'the body must be {"dataframe_records": [{column: value, ...}, ...]} or '
                    '{"dataframe_split": {"columns": [...], "data": [[...], ...]}}')}])
        if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
            return unprocessable([{"type": "model_attributes_type", "loc": ["body", "records"],
                                   "msg": 'the body must be an object {"records": [{column: value, ...}, ...]}'}])
        records = payload["records"]
        cut = None if mlflow else payload.get("threshold")  # a binary model's cut for this request only
        if cut is not None and (isinstance(cut, bool) or not isinstance(cut, (int, float))):
            return unprocessable([{"type": "float_type", "loc": ["body", "threshold"],
                                   "msg": "threshold must be a number between 0 and 1"}])
        errors = [{"type": "missing" if e.column else "dict_type",
                   "loc": ["body", "records", e.row] + ([e.column] if e.column else []),
                   "msg": "Field required (every record needs every column; null for a missing value)"
                   if e.column else "each record must be an object {column: value, ...}"}
                  for e in inputs.record_errors(records, schema)]
        if errors:
            return unprocessable(errors)
        try:
            frame = inputs.records_frame(records, schema)
            errors = [{"type": "value_error", "loc": ["body", "records", e.row if e.row is not None else 0, e.column],
                       "msg": str(e)} for e in inputs.column_errors(frame, schema)]
            if errors:
                return unprocessable(errors)
            result = model.predict_batch(frame, proba=model.is_classifier, threshold=cut)
        except TunerError as exc:
            return unprocessable([{"type": "value_error", "loc": ["body", "records"], "msg": str(exc)}])
        except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
            # The rows got past the checks but the model refused them: the client's input, not the
            # service, so a 422 (with the traceback in the server's log to find the check to add).
            traceback.print_exc(file=sys.stderr)
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            return unprocessable([{"type": "value_error", "loc": ["body", "records"],
                                   "msg": f"the model cannot predict these records: {why}"}])
        if mlflow:  # as MLflow's scoring server returns a DataFrame: one object per row
            rows = [{"prediction": p} for p in _json_list(result.predictions)]
            for row, proba in zip(rows, _json_list(result.probabilities) if result.probabilities is not None else []):
                row.update(zip(model.proba_columns, proba))
            return JSONResponse({"predictions": rows})
        return JSONResponse({
            "predictions": _json_list(result.predictions),
            "probabilities": _json_list(result.probabilities) if result.probabilities is not None else None,
            "classes": model.classes or None,
            "notes": result.notes,
        })

    request_body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/PredictRequest"}}}}

    @app.post("/predict", dependencies=[Depends(check_token)], openapi_extra={"requestBody": request_body},
              responses={200: {"model": PredictResponse}, **errors_doc})
    async def predict(request: Request):
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(answer, await request.body())

    # MLflow's protocol, for MLflow clients: left out of the OpenAPI document, whose request body is /predict's
    @app.post("/invocations", dependencies=[Depends(check_token)], responses=errors_doc, include_in_schema=False)
    async def invocations(request: Request):
        """MLflow's scoring protocol: {"dataframe_records": [...]} or {"dataframe_split": {...}} ->
        {"predictions": [{"prediction": ..., "proba_<class>": ...}, ...]}."""
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(answer, await request.body(), True)

    def openapi():
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            request_schema = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components.update(request_schema.pop("$defs", {}))
            components["PredictRequest"] = request_schema
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi

    return BodyLimit(app, max_body_bytes) if max_body_bytes else app


def mlflow_records(payload) -> dict | None:
    """``{"records": [...]}`` from an MLflow scoring body, or None when it is neither of its DataFrame forms."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("dataframe_records"), list):
        return {"records": payload["dataframe_records"]}
    split = payload.get("dataframe_split")
    if isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list):
        columns = split["columns"]
        rows = split["data"]
        if all(isinstance(r, list) and len(r) == len(columns) for r in rows):
            return {"records": [dict(zip(columns, r)) for r in rows]}
        return {"records": [r if isinstance(r, dict) else None for r in rows]}  # 422 names the bad row
    return None


def is_loopback(host: str) -> bool:
    if host in {"localhost", "ip6-localhost"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None) -> str | None:
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    return token or None


def serve(model_dir, *, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, allow_unauthenticated: bool = False,
          trust_pickle: bool = False, log_level: str = "info", on_start=None, trust_modules=()) -> None:
    """Load the artifact and serve it until interrupted."""
    _require()
    import uvicorn

    from tuner.deploy.artifact import load

    token = resolve_token(token)
    if not is_loopback(host) and token is None and not allow_unauthenticated:
        raise TunerError(
            f"refusing to serve on {host} without a token: anyone who can reach it could use the model; "
            f"set --token or {TOKEN_ENV}, or pass --allow-unauthenticated"
        )
    if max_body_bytes < 0:
        raise TunerError(f"--max-body-bytes must be positive (got {max_body_bytes})")
    if not 0 <= port <= 65535:
        raise TunerError(f"--port must be between 0 and 65535 (got {port})")
    model = load(model_dir, trust_pickle=trust_pickle, trust_modules=trust_modules)
    app = create_app(model, token=token, max_body_bytes=max_body_bytes)
    if on_start is not None:
        on_start(model, token)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


__all__ = ["create_app", "serve", "BodyLimit", "DEFAULT_MAX_BODY_BYTES", "TOKEN_ENV", "is_loopback"]
