"""Scanning over HTTP: ``POST /v1/scan`` (text or an uploaded file) and the asset
inventory (``GET /v1/assets``, ``GET /v1/assets/{id}``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from quanguard.api import openapi as oa
from quanguard.api.deps import ContainerDep, ContextDep, PrincipalDep, require_roles
from quanguard.api.uploads import scrub_names, spool_upload
from quanguard.auth import Principal
from quanguard.errors import InvalidInput, TooLarge, UnsupportedMedia
from quanguard.usecases import scan as uc

if TYPE_CHECKING:
    from starlette.datastructures import FormData

    from quanguard.container import Container
    from quanguard.gate import RequestContext

router = APIRouter(tags=["scan"])

MAX_TEXT = 1_000_000
_Scanner = Annotated[Principal, Depends(require_roles("officer", "manager", "provider", "admin"))]


_SCAN_BODY = oa.request_body(
    oa.json_schema({"type": "object", "properties": {
        "text": {"type": "string", "maxLength": MAX_TEXT},
        "texts": {"type": "array", "maxItems": 10_000, "items": {"type": "string"}}}}),
    oa.form({"file": {"type": "string", "format": "binary"}, "sample": {"type": "integer", "minimum": 1},
             "full": {"type": "boolean"}, "dataset": {"type": "string"}}, ["file"]),
    description='{"text": ...} or {"texts": [...]}, or a multipart upload (field file)')


_GRADE = {"type": ["string", "null"], "description": "highest grade found (policy's grade order)"}
_FINDING = {"type": "object", "required": ["entity", "start", "end", "score"], "properties": {
    "entity": {"type": "string"}, "start": {"type": "integer"}, "end": {"type": "integer"},
    "score": {"type": "number"}, "text": {"type": "string"},
    "line": {"type": "integer", "description": "1-based line (a .txt upload)"}}}
_COLUMN = {"type": "object", "additionalProperties": True, "properties": {
    "name": {"type": "string"}, "entity": {"type": ["string", "null"]}, "grade": {"type": ["string", "null"]},
    "kind": {"type": "string"}, "confidence": {"type": "number"}, "hit_rate": {"type": "number"}}}
# One schema for the three answers: a text or texts batch, a .txt upload, a table upload.
_SCAN_OK = {"type": "object", "additionalProperties": True, "properties": {
    "findings": {"type": "array", "items": _FINDING, "description": "{text}, or a .txt upload (with line)"},
    "grade": _GRADE,
    "results": {"type": "array", "description": "{texts}: one entry per text, in order",
                "items": {"type": "object", "required": ["findings"],
                          "properties": {"findings": {"type": "array", "items": _FINDING}}}},
    "lines": {"type": "integer"}, "entities": {"type": "object", "additionalProperties": {"type": "integer"}},
    "dataset_grade": _GRADE, "columns": {"type": "array", "items": _COLUMN},
    "rows_scanned": {"type": "integer"}, "sampled": {"type": "boolean"},
    "quasi_identifiers": {"type": "array", "items": {"type": "string"}},
    "k_anonymity": {"type": ["integer", "null"]},
    "asset_id": {"type": "string"}, "dataset": {"type": "string"}, "version": {"type": "integer"}}}
ACCEPTED = ("application/json", "multipart/form-data")


@router.post("/v1/scan", openapi_extra={**_SCAN_BODY, "responses": {"200": {
    "description": "{text}: findings and grade; {texts}: results and grade; a .txt upload: findings per "
                   "line, lines, entities, dataset_grade; a table upload: the column report with its "
                   "inventory entry (asset_id, dataset, version)",
    "content": oa.json_schema(_SCAN_OK)}}})
async def scan(
    request: Request, caller: _Scanner, container: ContainerDep, ctx: ContextDep,
    dataset: Annotated[str | None, Query(max_length=300, description="inventory name (uploads)")] = None,
    sample: Annotated[int | None, Query(ge=1, description="rows to sample (table uploads)")] = None,
    full: Annotated[bool | None, Query(description="scan every row (table uploads)")] = None,
) -> Any:
    """Scan a JSON body ``{"text": "..."}`` (or a batch ``{"texts": [...]}``), or a multipart upload (field ``file``; a
    ``.txt`` file is scanned line by line, other files as tables).  Options of an upload, as
    form fields or query parameters (as for ``/v1/mask``; a form field wins):
    ``sample`` (rows), ``full`` (bool), ``dataset`` (inventory name)."""
    ctype = request.headers.get("content-type", "").lower()
    if ctype.split(";")[0].strip() == "application/json":
        raw = await request.body()
        if len(raw) > 4 * MAX_TEXT:
            raise TooLarge(f"JSON body larger than {4 * MAX_TEXT} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:  # RecursionError: hostile nesting
            raise InvalidInput("the body is not valid JSON (or nested too deeply)") from exc
        texts = body.get("texts") if isinstance(body, dict) else None
        if isinstance(texts, list):  # batch: {"texts": ["...", ...]}
            if not all(isinstance(t, str) for t in texts) or len(texts) > 10_000:
                raise InvalidInput('"texts" must be a list of at most 10000 strings')
            if sum(map(len, texts)) > MAX_TEXT:
                raise TooLarge(f"texts longer than {MAX_TEXT} characters in total")
            batch, grade = await run_in_threadpool(uc.scan_texts, container, caller, texts, ctx=ctx)
            return {"results": [{"findings": [f.to_dict() for f in fs]} for fs in batch], "grade": grade}
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise InvalidInput('expected {"text": "..."} or {"texts": ["...", ...]}')
        if len(text) > MAX_TEXT:
            raise TooLarge(f"text longer than {MAX_TEXT} characters; upload a file instead")
        findings, grade = await run_in_threadpool(uc.scan_text, container, caller, text, ctx=ctx)
        return {"findings": [f.to_dict() for f in findings], "grade": grade}
    if not ctype.startswith("multipart/form-data"):
        media = ctype.split(";")[0].strip().lower() or "(none)"
        raise UnsupportedMedia(f"content type {media} is not accepted; send application/json with a "
                               "text, or multipart/form-data with a file", accepted=list(ACCEPTED))
    async with request.form() as form:
        query = {"dataset": dataset, "sample": sample, "full": full}
        return await _scan_upload(form, caller, container, ctx, query)


async def _scan_upload(form: FormData, caller: Principal, container: Container, ctx: RequestContext | None,
                       query: dict[str, Any]) -> dict[str, object]:
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("multipart field 'file' is missing")
    name = Path(upload.filename or "upload.csv").name
    suffix = Path(name).suffix.lower() or ".csv"
    try:
        sample = int(str(form.get("sample") or query["sample"] or 10_000))
    except ValueError as exc:
        raise InvalidInput("sample must be an integer") from exc
    if sample < 1:
        raise InvalidInput("sample must be at least 1")
    given = form.get("full")
    full = (str(given).lower() in ("1", "true", "yes", "on")) if given else bool(query["full"])
    dataset = str(form.get("dataset")) if form.get("dataset") else query["dataset"]
    tmp = await spool_upload(upload, folder=container.settings.data_dir, suffix=suffix,
                             limit=container.settings.max_body_bytes)
    try:
        if uc.is_text_path(name):
            result = await run_in_threadpool(
                uc.scan_text_file, container, caller, tmp, dataset=dataset or Path(name).stem, ctx=ctx
            )
            return result.to_dict()
        # Scanning is CPU work: off the event loop, so other requests stay prompt.
        report, stored = await run_in_threadpool(
            uc.scan_table, container, caller, tmp, sample=sample, full=full,
            dataset=dataset or Path(name).stem, ctx=ctx, source_name=name,
        )
        return {**report.to_dict(), "asset_id": stored.id, "dataset": stored.dataset,
                "version": stored.version}
    except BaseException as exc:
        scrub_names(exc, {tmp: name})  # the upload by its own name, never the server's file
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)


@router.get("/v1/assets")
def list_assets(
    caller: PrincipalDep, container: ContainerDep,
    dataset: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """The asset inventory: one entry per dataset version (providers see their own org)."""
    return {"assets": [a.summary() for a in uc.assets(container, caller, dataset=dataset,
                                                        limit=limit, offset=offset)]}


@router.get("/v1/assets/{asset_id}")
def get_asset(asset_id: str, caller: PrincipalDep, container: ContainerDep) -> Any:
    """One inventory entry with its full column report."""
    return uc.asset(container, caller, asset_id).to_dict()
