"""Masking over HTTP: ``POST /v1/mask`` and ``POST /v1/unmask``.

``POST /v1/mask`` takes JSON ``{"profile": "共享", "records": [{...}], "dataset": "..."}``
(at most 100,000 records) and answers ``{"records": [...], "summary": {...}}``; or an
``application/x-ndjson`` / ``text/csv`` / ``text/plain`` (one record per line) body (``?profile=&dataset=``) that is spooled to
disk and answered as a stream in the same format, with the summary in the
``X-Quanguard-Mask-Summary`` header (JSON, ASCII).  The policy decides (action
``mask`` / ``unmask``); every call is audited.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from quanguard.api.deps import ContainerDep, ContextDep, PrincipalDep
from quanguard.errors import InvalidInput, TooLarge
from quanguard.usecases import mask as uc

router = APIRouter(tags=["mask"])

MAX_BODY = 200 * 1024 * 1024
MAX_JSON = 64 * 1024 * 1024
_STREAM_TYPES = {"application/x-ndjson": ".jsonl", "application/jsonl": ".jsonl",
                 "application/json-seq": ".jsonl", "text/csv": ".csv", "text/plain": ".txt"}


async def _json_body(request: Request) -> tuple[dict[str, Any], str]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON:
            raise TooLarge(f"JSON body larger than {MAX_JSON // 2**20} MB; stream NDJSON or CSV instead")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise InvalidInput('expected a JSON object {"profile": ..., "records": [...]}')
    return body, hashlib.sha256(raw).hexdigest()


def _records(body: dict[str, Any]) -> list[dict[str, Any]]:
    records = body.get("records")
    if not isinstance(records, list):
        raise InvalidInput('"records" must be a list of objects')
    if len(records) > uc.MAX_RECORDS:
        raise TooLarge(f"at most {uc.MAX_RECORDS:,} records per request; stream NDJSON/CSV instead")
    return records


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f'"{key}" must be a string')
    return value


@router.post("/v1/mask")
async def mask(request: Request, caller: PrincipalDep, container: ContainerDep, ctx: ContextDep) -> Any:
    """Mask JSON records, or a streamed NDJSON/CSV body, by a masking profile."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body, digest = await _json_body(request)
        records = _records(body)
        out, outcome = await run_in_threadpool(
            uc.mask_records, container, caller, records, profile=_opt_str(body, "profile"),
            dataset=_opt_str(body, "dataset"), ctx=ctx, body_sha256=digest)
        summary = outcome.to_dict()
        return {"records": out, "summary": summary}
    suffix = _STREAM_TYPES.get(ctype)
    if suffix is None:
        raise InvalidInput("send application/json records, or an application/x-ndjson, text/csv or "
                           "text/plain body")
    src = uc.temp_path(container, suffix)
    dst = uc.temp_path(container, suffix)
    try:
        size = 0
        async with await anyio.open_file(src, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise TooLarge(f"body larger than {MAX_BODY // 2**20} MB")
                await fh.write(chunk)
        q = request.query_params
        run = uc.mask_text_file if suffix == ".txt" else uc.mask_file
        outcome = await run_in_threadpool(run, container, caller, src, dst,
                                          profile=q.get("profile"), dataset=q.get("dataset") or "upload",
                                          ctx=ctx)
    except BaseException:
        for p in (src, dst):
            Path(p).unlink(missing_ok=True)
        raise
    Path(src).unlink(missing_ok=True)
    summary = outcome.to_dict()
    summary.pop("plan", None)
    header = json.dumps({**summary, "profile": outcome.profile}, ensure_ascii=True)
    return FileResponse(dst, media_type=ctype, headers={"X-Quanguard-Mask-Summary": header},
                        background=BackgroundTask(os.unlink, dst))


@router.post("/v1/unmask")
async def unmask(request: Request, caller: PrincipalDep, container: ContainerDep, ctx: ContextDep) -> Any:
    """Restore encrypt/fpe columns of JSON records: ``{"records": [...], "columns": ["身份证号"]}``.
    Allowed only when the policy allows ``unmask``; every attempt is audited."""
    body, digest = await _json_body(request)
    records = _records(body)
    columns = body.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput('"columns" must be a list of column names')
    out = await run_in_threadpool(uc.unmask_records, container, caller, records, columns,
                                  dataset=_opt_str(body, "dataset"), ctx=ctx, body_sha256=digest)
    return {"records": out}
