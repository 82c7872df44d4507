"""Hostile text at every endpoint of the OpenAPI spec: lone UTF-16 surrogates (the JSON
escape ``\\ud800`` without its pair), NUL, overlong strings, bytes that are not UTF-8,
invalid JSON and values of the wrong type — in path parameters, query parameters, JSON
fields, form fields and uploaded files.

For every request: never a 5xx, never a logged traceback, an error is a JSON document
with the request id, and the attempt is in the audit trail (one event with the request's
id). A JSON body holding a lone surrogate or NUL is refused with a 4xx: such a string
cannot be stored (PostgreSQL refuses NUL), hashed or written to a file, so it must not get
past the border.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quanguard.container import Container, build_container
from tests.conftest import PG_URL, PgSchema, auth, make_settings
from tests.security.test_authz_matrix import EXPECTED, PUBLIC
from tests.serving import pg_available

LONG = 100_000
KINDS = ("surrogate", "nul", "long", "non_utf8", "invalid_json", "wrong_type")
# what a string field becomes, by kind (non_utf8 and invalid_json break the body itself)
_TEXT = {"surrogate": "x\ud800y", "nul": "a\x00b", "long": "长" * LONG}
# what a path or query value becomes (percent-encoded on the wire)
_URL = {"surrogate": "%ED%A0%80", "nul": "a%00b", "long": "x" * 2000, "non_utf8": "%FF%FE",
        "invalid_json": "%7B", "wrong_type": "%5B%5D"}
_BOUNDARY = "hostile-boundary-7d1f"


def _spec_operations() -> list[tuple[str, str]]:
    from quanguard.api.app import create_app

    with TestClient(create_app(_SPEC_CONTAINER)) as client:
        spec = client.get("/openapi.json").json()
    return sorted((method.upper(), path) for path, ops in spec["paths"].items() for method in ops)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[TestClient, dict[str, str], Container, dict[str, Any]]]:
    """The app on a fresh SQLite file, and on a fresh PostgreSQL schema (which refuses NUL
    in text where SQLite keeps it)."""
    from quanguard.api.app import create_app
    from quanguard.auth import create_key

    tmp = tmp_path_factory.mktemp("hostile-text")
    schema = None
    if request.param == "postgresql":
        if not pg_available(PG_URL):
            pytest.skip("PostgreSQL not reachable")
        schema = PgSchema()
        request.addfinalizer(schema.drop)
        container = build_container(make_settings(tmp, db_url=PG_URL), schema=schema.name)
    else:
        container = build_container(make_settings(tmp))
    keys = {}
    with container.session() as s, s.begin():
        for role in ("reporter", "auditor", "manager", "provider", "consumer", "officer", "admin"):
            keys[role] = create_key(s, role=role, org="市大数据局", name=f"{role}-hostile").key
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        spec = client.get("/openapi.json").json()
        yield client, keys, container, spec
    container.close()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _fill(spec: dict[str, Any], schema: dict[str, Any], kind: str) -> Any:
    """A value of ``schema``'s shape whose every string is the hostile text of ``kind``
    (``wrong_type``: every leaf has the wrong type)."""
    schema = _resolve(spec, schema)
    for alt in schema.get("anyOf", ()):
        if _resolve(spec, alt).get("type") != "null":
            return _fill(spec, alt, kind)
    kind_of = schema.get("type")
    if kind_of == "object" or "properties" in schema:
        return {k: _fill(spec, v, kind) for k, v in schema.get("properties", {}).items()}
    if kind_of == "array":
        return [_fill(spec, schema.get("items", {}), kind)]
    if kind == "wrong_type":
        return {"not": ["the", "expected", "type"]} if kind_of == "string" else "not-a-number"
    if "enum" in schema:
        return schema["enum"][0]
    if kind_of in ("integer", "number", "boolean"):
        return {"integer": 1, "number": 1.5, "boolean": True}[kind_of]
    return _TEXT.get(kind, "x")


def _raw_text(kind: str) -> bytes:
    if kind == "non_utf8":
        return b"\xff\xfe\xed\xa0\x80"
    return _TEXT.get(kind, "x").encode("utf-8", "surrogatepass")


def _multipart(spec: dict[str, Any], schema: dict[str, Any], kind: str) -> bytes:
    parts: list[bytes] = []
    for name, field in _resolve(spec, schema).get("properties", {}).items():
        field = _resolve(spec, field)
        head = f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"'.encode()
        if field.get("format") == "binary":
            content = b"name,id\r\n" + _raw_text(kind) + b",1\r\n" + _raw_text(kind) + b",2\r\n"
            if kind == "invalid_json":
                content = b'{"name": '
            head += b'; filename="f.csv"\r\nContent-Type: text/csv'
        elif kind == "wrong_type":
            content = b"not-a-number" if field.get("type") != "string" else b"[]"
        else:
            content = _raw_text(kind) if field.get("type") == "string" else b"1"
        parts.append(head + b"\r\n\r\n" + content + b"\r\n")
    return b"".join(parts) + f"--{_BOUNDARY}--\r\n".encode()


def _request(spec: dict[str, Any], method: str, path: str, kind: str) -> tuple[str, dict[str, str], bytes | None]:
    op = spec["paths"][path][method.lower()]
    url = path
    query = []
    for param in op.get("parameters", ()):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", _URL[kind])
        elif param["in"] == "query":
            query.append(f"{param['name']}={_URL[kind]}")
    if query:
        url += "?" + "&".join(query)
    content = op.get("requestBody", {}).get("content", {})
    headers: dict[str, str] = {}
    body: bytes | None = None
    if "application/json" in content:
        headers["content-type"] = "application/json"
        if kind == "non_utf8":
            body = b'{"dataset": "\xff\xfe", "purpose": "\xed\xa0\x80"}'
        elif kind == "invalid_json":
            body = b'{"dataset": "x", '
        else:
            value = _fill(spec, content["application/json"]["schema"], kind)
            body = json.dumps(value, ensure_ascii=True).encode()  # a surrogate as "\ud800"
    elif "multipart/form-data" in content:
        headers["content-type"] = f"multipart/form-data; boundary={_BOUNDARY}"
        body = _multipart(spec, content["multipart/form-data"]["schema"], kind)
    elif content:
        media = next(iter(content))
        headers["content-type"] = media
        if kind == "invalid_json":
            body = b'{"ts": '
        elif kind == "wrong_type":
            body = b"[1, 2, 3]\n"
        elif kind in _TEXT:
            body = json.dumps({"purpose": _TEXT[kind]}, ensure_ascii=True).encode() + b"\n"
        else:
            body = _raw_text(kind) + b"\n"
    return url, headers, body


def _role(method: str, path: str) -> str | None:
    allowed = EXPECTED.get((method, path))
    if allowed is None or allowed == PUBLIC or isinstance(allowed, str):
        return None
    # prefer the roles that reach the use case (and store what they send)
    for role in ("consumer", "provider", "manager", "reporter", "officer", "auditor", "admin"):
        if role in allowed:
            return role
    return None


def _events_with(container: Container, rid: str) -> list[dict[str, Any]]:
    with container.session() as session:
        docs = [json.loads(e.body) for e in container.audit.store.iter_range(session, 1)]
    return [d for d in docs if d.get("trace", {}).get("id") == rid]


_SPEC_CONTAINER: Any = None


def _operations() -> list[tuple[str, str]]:
    # the routes of the spec, read from the app's own /openapi.json
    import tempfile

    global _SPEC_CONTAINER
    with tempfile.TemporaryDirectory() as tmp:
        _SPEC_CONTAINER = build_container(make_settings(Path(tmp)))
        try:
            return _spec_operations()
        finally:
            _SPEC_CONTAINER.close()


OPERATIONS = _operations()


def test_the_sweep_sees_the_whole_spec() -> None:
    assert ("POST", "/v1/exchange/aggregate") in OPERATIONS and len(OPERATIONS) > 30
    assert all(_role(m, p) is not None or not p.startswith("/v1") or EXPECTED.get((m, p)) is not None
               for m, p in OPERATIONS)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_hostile_text_is_refused_cleanly_and_recorded(
        world: tuple[TestClient, dict[str, str], Container, dict[str, Any]],
        caplog: pytest.LogCaptureFixture, method: str, path: str, kind: str) -> None:
    client, keys, container, spec = world
    role = _role(method, path)
    url, headers, body = _request(spec, method, path, kind)
    if role is not None:
        headers.update(auth(keys[role]))
    rid = uuid.uuid4().hex
    headers["x-request-id"] = rid
    with caplog.at_level(logging.ERROR):
        r = client.request(method, url, headers=headers, content=body)
    assert r.status_code < 500, (r.status_code, r.text[:500])
    tracebacks = [rec.getMessage() for rec in caplog.records if rec.exc_info]
    assert tracebacks == []
    assert r.headers["x-request-id"] == rid
    if r.status_code >= 400:
        doc = r.json()
        if path == "/v1/events/batch" and "errors" in doc:  # its documented per-line report
            assert doc["accepted"] == 0 and doc["errors"]
        else:
            error = doc["error"]
            assert error["request_id"] == rid and error["kind"] and error["message"]
    if body is not None and (b"\\ud800" in body or b"\\u0000" in body) and "json" in headers.get("content-type", ""):
        assert 400 <= r.status_code < 500, r.text[:300]  # text no store can hold
    if path.startswith("/v1"):
        events = _events_with(container, rid)
        assert len(events) == 1, (r.status_code, events)
