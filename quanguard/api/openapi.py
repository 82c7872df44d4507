"""The OpenAPI document as the contract: request bodies of the routes that read their
body by hand, the error envelope on every operation, and the event schema.

Routes declare their body with ``openapi_extra=request_body(...)`` built from the
helpers here; :func:`install` adds the ``Error`` schema and its 4xx/5xx responses to
every operation of the generated document.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["ERROR_STATUSES", "JOB_REF", "binary", "form", "install", "job_responses", "json_schema", "ndjson",
           "request_body", "text"]

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_STATUSES = {"400": "invalid input", "401": "no valid API key", "403": "refused by role or policy",
                  "404": "not found", "413": "body larger than max_body_bytes",
                  "415": "content type not accepted", "422": "request does not have the expected shape",
                  "429": "rate limited", "503": "database or dependency unavailable"}
_ERROR = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["kind", "message", "request_id"], "additionalProperties": True,
        "description": "kind, message, request_id and details safe to show (index, accepted, problems, …)",
        "properties": {
            "kind": {"type": "string", "enum": ["invalid", "unauthenticated", "forbidden", "not_found",
                                                "conflict", "too_large", "unsupported_media",
                                                "rate_limited", "unavailable", "integrity"]},
            "message": {"type": "string"},
            "request_id": {"type": "string"},
            "index": {"type": "integer", "description": "0-based index of the record at fault"},
            "accepted": {"type": "array", "items": {"type": "string"}},
        }}},
}


JOB_REF = {"$ref": "#/components/schemas/Job"}
_JOB = {
    "type": "object", "additionalProperties": True,
    "required": ["job", "kind", "dataset", "status", "query", "decision", "created_at", "result"],
    "description": "An exchange job; a finished aggregate adds its result fields (epsilon_spent, "
                   "budget_left, suppressed_groups, …) and a signed receipt",
    "properties": {
        "job": {"type": "string"}, "kind": {"type": "string"}, "dataset": {"type": "string"},
        "status": {"type": "string", "description": "done, pending_approval, rejected, expired, …"},
        "query": {"type": "object", "additionalProperties": True},
        "purpose": {"type": ["string", "null"]}, "consumer": {"type": ["string", "null"]},
        "consumer_org": {"type": ["string", "null"]}, "reason": {"type": ["string", "null"]},
        "decided_by": {"type": ["string", "null"]},
        "decision": {"type": "object", "additionalProperties": True},
        "created_at": {"type": "string"}, "finished_at": {"type": ["string", "null"]},
        "result": {"description": "the aggregate's groups and values (null until done)"},
        "request": {"type": ["object", "null"], "additionalProperties": True},
        "receipt": {"type": ["object", "null"], "additionalProperties": True},
    },
}


def job_responses(done: str, *, ok_content: dict[str, object] | None = None) -> dict[str, object]:
    """``responses`` of an exchange call: 200 (``done``) and 202 (waiting for approval),
    both the Job unless ``ok_content`` says what a 200 carries."""
    return {"responses": {
        "200": {"description": done, "content": ok_content or json_schema(JOB_REF)},
        "202": {"description": "waiting for a manager's approval (poll the job)", "content": json_schema(JOB_REF)},
    }}


def json_schema(schema: Mapping[str, object]) -> dict[str, object]:
    return {"application/json": {"schema": schema}}


def text(*media: str) -> dict[str, object]:
    """Raw text bodies (bytes as sent; a CSV's encoding is detected and kept)."""
    return {m: {"schema": {"type": "string", "format": "binary"}} for m in media}


def ndjson(what: str, max_lines: int, *, gb: bool = False) -> dict[str, object]:
    """NDJSON: raw bytes, one JSON value a line (``what`` names it; generators take no
    schema for this media type, so it is described, not typed). ``gb``: a GBK/GB18030
    body is read when the Content-Type names its ``charset``."""
    text = "UTF-8 (or GBK/GB18030 named by charset=gb18030)" if gb else "UTF-8"
    return {"application/x-ndjson": {"schema": {
        "type": "string", "format": "binary",
        "description": f"{text}, one {what} a line, at most {max_lines:,} lines"}}}


def binary(*media: str) -> dict[str, object]:
    return {m: {"schema": {"type": "string", "format": "binary"}} for m in media}


def form(properties: dict[str, object], required: list[str]) -> dict[str, object]:
    return {"multipart/form-data": {"schema": {"type": "object", "properties": properties,
                                               "required": required}}}


def request_body(*contents: dict[str, object], description: str = "") -> dict[str, object]:
    """``openapi_extra`` declaring a required request body of the given content types."""
    content: dict[str, object] = {}
    for c in contents:
        content.update(c)
    return {"requestBody": {"required": True, "description": description, "content": content}}


@cache
def event_schema() -> dict[str, object]:
    """The reporter event JSON Schema, as an OpenAPI component (no ``$schema``/``$id``)."""
    raw = resources.files("monitor").joinpath("event.schema.json").read_text(encoding="utf-8")
    schema = json.loads(raw)
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


def _with_errors(doc: dict[str, Any]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = _ERROR
    schemas["Event"] = event_schema()
    schemas["Job"] = _JOB
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            for status, why in ERROR_STATUSES.items():
                op["responses"][status] = {"description": why, "content": json_schema(ERROR_REF)}
    return doc


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the generated document with the error envelope."""

    def openapi() -> dict[str, object]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_errors(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
