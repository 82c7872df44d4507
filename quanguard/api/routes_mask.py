"""Masking over HTTP: ``POST /v1/mask`` and ``POST /v1/unmask``.

``POST /v1/mask`` accepts (see ``ACCEPTED``):

- ``application/json`` ``{"profile": "共享", "records": [{...}], "dataset": "..."}``
  (at most 100,000 records), answered ``{"records": [...], "summary": {...}}``; nested
  objects and arrays are masked in place, a masked value is a string, every other
  value keeps its JSON type, no key is added;
- ``application/x-ndjson`` (one JSON object a line, same record limit), answered as
  NDJSON with the same keys and types, in the encoding the request's ``charset`` names
  (UTF-8 when none; GBK/GB18030 is read and answered as GB18030);
- ``text/csv``, ``text/tab-separated-values``, ``text/plain`` (one record a line),
  answered in the same format *and encoding*: the response's ``charset`` is the
  source's encoding, also given in ``X-Quanguard-Source-Encoding``; the request's
  ``charset`` (UTF-8 or GBK/GB18030) is taken as given, else the encoding is detected;
- ``multipart/form-data`` with a ``file`` field (CSV, TSV, XLSX, Parquet, NDJSON or
  text, by its name) and optional ``profile``/``dataset`` fields.

Options of non-JSON bodies are query parameters ``?profile=&dataset=``. The summary of
a non-JSON answer is in the ``X-Quanguard-Mask-Summary`` header (JSON, ASCII). Bodies
are limited by the setting ``max_body_bytes``. The policy decides (action ``mask`` /
``unmask``); every call is audited.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from monitor.ingest import not_text
from quanguard.api import openapi as oa
from quanguard.api.deps import ContainerDep, ContextDep, PrincipalDep, get_context
from quanguard.api.uploads import charset_of, scrub_names, spool_stream, spool_upload
from quanguard.errors import InvalidInput, UnsupportedMedia
from quanguard.usecases import json_records as jr
from quanguard.usecases import mask as uc

if TYPE_CHECKING:
    from quanguard.auth import Principal
    from quanguard.container import Container
    from quanguard.gate import RequestContext

router = APIRouter(tags=["mask"])

ACCEPTED = ("application/json", "application/x-ndjson", "text/csv", "text/tab-separated-values",
            "text/plain", "multipart/form-data")
_RAW = {"application/x-ndjson": ".jsonl", "application/jsonl": ".jsonl", "application/json-seq": ".jsonl",
        "text/csv": ".csv", "text/tab-separated-values": ".tsv", "text/plain": ".txt"}
_MEDIA = {".csv": "text/csv", ".tsv": "text/tab-separated-values", ".txt": "text/plain",
          ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          ".parquet": "application/vnd.apache.parquet"}
_LABEL = {".csv": "the uploaded CSV", ".tsv": "the uploaded TSV", ".txt": "the uploaded text"}


class _NotJson(ValueError):
    """NaN, Infinity or a number too large for a double: Python reads them, JSON has none."""


def _no_constant(name: str) -> object:
    raise _NotJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _NotJson(f"the number {text[:40]} is too large")
    return value


def _loads(text: str | bytes) -> Any:
    """Strict JSON: NaN, Infinity and numbers beyond a double are refused, so whatever
    is read can be answered (and hashed) as JSON again."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite)


def _parse_json(raw: bytes) -> dict[str, object]:
    try:
        body = _loads(raw)
    except _NotJson as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput("the body is not valid JSON (or nested too deeply)") from exc
    if not isinstance(body, dict):
        raise InvalidInput('expected a JSON object {"profile": ..., "records": [...]}')
    return body


# A lone UTF-16 surrogate reaches a decoded JSON value only as an escape (\ud800-\udfff
# without its pair): raw surrogate bytes are not UTF-8 and the decoder refuses them. Bodies
# without such an escape (nearly all) are not walked.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_NOT_TEXT = ("holds a lone UTF-16 surrogate (an escape \\ud800-\\udfff without its pair), "
             "which is not text; send the character itself, or both halves of its pair")


def _not_text(value: object) -> bool:
    """Whether a decoded JSON value holds a string (key or value) no UTF-8 encoder takes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_not_text(k) or _not_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_not_text(v) for v in value)
    return False


def _only_text(raw: bytes, body: dict[str, object]) -> None:
    """Refuse (400) a body whose records or fields hold a lone surrogate, naming the record."""
    if _SURROGATE_ESCAPE.search(raw) is None:
        return
    records = body.get("records")
    if isinstance(records, list):
        for index, record in enumerate(records):
            if _not_text(record):
                raise jr.record_error(index, _NOT_TEXT)
    for key, value in body.items():
        if _not_text(key) or (key != "records" and _not_text(value)):
            raise InvalidInput(f"a field of the body {_NOT_TEXT}")


def _records(body: dict[str, object]) -> list[object]:
    records = body.get("records")
    if not isinstance(records, list):
        raise InvalidInput('"records" must be a list of objects')
    return records


def _opt_str(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f'"{key}" must be a string')
    return value


_NDJSON_HINT = ("NDJSON is UTF-8: send it as UTF-8, or name its encoding "
                "(Content-Type: application/x-ndjson; charset=gb18030 for a GBK export)")


def _ndjson_records(raw: bytes, codec: str = "utf-8") -> list[object]:
    """NDJSON lines in ``codec`` (a value of ``monitor.ingest.CHARSETS``) → records; an
    error names the record's 0-based index (a line that is not text in ``codec`` too)."""
    codec = "utf-8" if codec == "utf-8-sig" else codec  # a byte order mark starts the body only
    out: list[object] = []
    # lines end at "\n" only: a JSON string may hold U+2028 or U+0085 raw (splitlines breaks
    # there). 0x0A is never part of a multi-byte character in UTF-8 or GB18030.
    for number, chunk in enumerate(raw.split(b"\n")):
        try:
            line = chunk.decode(codec)
        except UnicodeDecodeError as exc:
            message = not_text(exc, codec, "of the record", hint=_NDJSON_HINT)
            raise jr.record_error(len(out), f"is {message}") from None
        if number == 0:  # UTF-8's and GB18030's byte order marks both decode to U+FEFF
            line = line.removeprefix("\ufeff")
        if not line.strip():
            continue
        if len(out) >= uc.MAX_RECORDS:
            from quanguard.errors import TooLarge

            raise TooLarge(f"at most {uc.MAX_RECORDS:,} NDJSON records per request; split the file")
        try:
            record = _loads(line)
        except _NotJson as exc:
            raise jr.record_error(len(out), f"is not valid JSON: {exc}") from None
        except (ValueError, RecursionError):
            raise jr.record_error(len(out), "is not valid JSON") from None
        if not isinstance(record, dict):
            raise jr.record_error(len(out), "is not a JSON object")
        if _SURROGATE_ESCAPE.search(chunk) is not None and _not_text(record):
            raise jr.record_error(len(out), _NOT_TEXT)
        out.append(record)
    return out


def _summary_header(outcome: uc.MaskOutcome) -> dict[str, str]:
    summary = outcome.to_dict()
    summary.pop("plan", None)
    return {"X-Quanguard-Mask-Summary": json.dumps({**summary, "profile": outcome.profile}, ensure_ascii=True)}


async def _mask_ndjson(raw: bytes, caller: Principal, container: Container, ctx: RequestContext | None, profile: str | None,
                       dataset: str | None, codec: str | None = None) -> Response:
    """Mask an NDJSON body read in ``codec`` (UTF-8 when None), answered in the same encoding."""
    records = await run_in_threadpool(_ndjson_records, raw, codec or "utf-8")
    out, outcome = await run_in_threadpool(
        uc.mask_records, container, caller, records, profile=profile, dataset=dataset or "upload", ctx=ctx,
        body_sha256=hashlib.sha256(raw).hexdigest())
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out)
    headers = _summary_header(outcome)
    if codec is None or codec.startswith("utf-8"):
        return Response(text.encode(), media_type="application/x-ndjson", headers=headers)
    headers["X-Quanguard-Source-Encoding"] = codec
    return Response(text.encode(codec), media_type=f"application/x-ndjson; charset={codec}", headers=headers)


async def _mask_spooled(src: str, suffix: str, label: str, caller: Principal, container: Container,
                        ctx: RequestContext | None, profile: str | None, dataset: str | None,
                        encoding: str | None = None) -> Response:
    """Mask the spooled file ``src`` (removed here) into a file answered in the same format."""
    dst = uc.temp_path(container, suffix)
    try:
        run = uc.mask_text_file if suffix == ".txt" else uc.mask_file
        outcome = await run_in_threadpool(run, container, caller, src, dst, profile=profile,
                                          dataset=dataset or "upload", ctx=ctx, encoding=encoding)
    except BaseException as exc:
        Path(dst).unlink(missing_ok=True)
        scrub_names(exc, {src: label, dst: "the masked output"})
        raise
    finally:
        Path(src).unlink(missing_ok=True)
    media = _MEDIA.get(suffix, "application/octet-stream")
    headers = _summary_header(outcome)
    if outcome.encoding:
        charset = "utf-8" if outcome.encoding.lower().replace("_", "-") == "utf-8-sig" else outcome.encoding
        media = f"{media}; charset={charset}"
        headers["X-Quanguard-Source-Encoding"] = outcome.encoding
    return FileResponse(dst, media_type=media, headers=headers, background=BackgroundTask(os.unlink, dst))


async def _mask_multipart(request: Request, caller: Principal, container: Container, ctx: RequestContext | None) -> Response:
    q = request.query_params
    async with request.form() as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput("multipart field 'file' is missing")
        name = Path(upload.filename or "upload.csv").name
        suffix = Path(name).suffix.lower() or ".csv"
        suffix = ".jsonl" if suffix == ".ndjson" else suffix
        profile = str(form.get("profile") or q.get("profile") or "") or None
        dataset = str(form.get("dataset") or q.get("dataset") or "") or Path(name).stem
        limit = container.settings.max_body_bytes
        if suffix == ".jsonl":
            raw = await upload.read(limit + 1)
            codec = charset_of(upload.headers.get("content-type", ""))  # the part's own charset
            return await _mask_ndjson(raw, caller, container, ctx, profile, dataset, codec)
        src = await spool_upload(upload, folder=container.settings.data_dir, suffix=suffix, limit=limit)
    return await _mask_spooled(src, suffix, name, caller, container, ctx, profile, dataset)


_RECORDS = {"type": "array", "maxItems": 100_000, "description": "JSON objects; nested objects and arrays allowed",
            "items": {"type": "object", "additionalProperties": True}}
_MASK_JSON = {"type": "object", "required": ["records"], "properties": {
    "records": _RECORDS, "profile": {"type": "string", "description": "masking profile (default: policy's)"},
    "dataset": {"type": "string"}}}
_MASK_BODY = oa.request_body(
    oa.json_schema(_MASK_JSON), oa.ndjson("JSON object", 100_000, gb=True),
    # text/csv last: a generated client sends a raw body with the last raw type it knows
    oa.text("text/tab-separated-values", "text/plain", "text/csv"),
    oa.form({"file": {"type": "string", "format": "binary"}, "profile": {"type": "string"},
             "dataset": {"type": "string"}}, ["file"]),
    description="JSON records, an NDJSON/CSV/TSV/text body, or a multipart upload (field file)")
_MASK_OK = {"200": {"description": "the masked records or file, in the body's format and encoding",
                    "content": {**oa.json_schema({"type": "object", "required": ["records", "summary"],
                                                  "properties": {"records": _RECORDS,
                                                                 "summary": {"type": "object"}}}),
                                **oa.text("application/x-ndjson", "text/csv", "text/tab-separated-values",
                                          "text/plain"),
                                **oa.binary("application/octet-stream")}}}
_Opt = Annotated[str | None, Query(max_length=200, description="for non-JSON bodies")]


@router.post("/v1/mask", openapi_extra={**_MASK_BODY, "responses": _MASK_OK})
async def mask(request: Request, caller: PrincipalDep, container: ContainerDep,
               profile: _Opt = None, dataset: _Opt = None) -> Any:
    """Mask JSON records, an NDJSON/CSV/TSV/text body or a multipart upload by a masking profile."""
    # the context is built here rather than as a (sync, thread-hopping) dependency: small
    # JSON calls are the hot path of the exchanges
    ctx = get_context(request)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        raw = await request.body()
        body = _parse_json(raw)
        _only_text(raw, body)
        records, name = _records(body), _opt_str(body, "dataset")
        chosen = _opt_str(body, "profile")
        out, outcome = await run_in_threadpool(
            uc.mask_records, container, caller, records, profile=chosen, dataset=name, ctx=ctx,
            body_sha256=hashlib.sha256(raw).hexdigest())
        # plain JSON values already: no jsonable_encoder pass
        return JSONResponse({"records": out, "summary": outcome.to_dict()})
    if ctype == "multipart/form-data":
        return await _mask_multipart(request, caller, container, ctx)
    suffix = _RAW.get(ctype)
    if suffix is None:
        raise UnsupportedMedia(f"content type {ctype or '(none)'} is not accepted; send one of "
                               + ", ".join(ACCEPTED), accepted=list(ACCEPTED))
    encoding = charset_of(request.headers.get("content-type", ""))
    if suffix == ".jsonl":
        return await _mask_ndjson(await request.body(), caller, container, ctx, profile, dataset, encoding)
    src = await spool_stream(request.stream(), folder=container.settings.data_dir, suffix=suffix,
                             limit=container.settings.max_body_bytes)
    return await _mask_spooled(src, suffix, _LABEL[suffix], caller, container, ctx, profile, dataset,
                               encoding)


_UNMASK_JSON = {"type": "object", "required": ["records", "columns"], "properties": {
    "records": _RECORDS, "columns": {"type": "array", "items": {"type": "string"}}, "dataset": {"type": "string"}}}


@router.post("/v1/unmask", openapi_extra={
    **oa.request_body(oa.json_schema(_UNMASK_JSON)),
    "responses": {"200": {"description": "the records with the columns restored",
                          "content": oa.json_schema({"type": "object", "properties": {"records": _RECORDS}})}}})
async def unmask(request: Request, caller: PrincipalDep, container: ContainerDep, ctx: ContextDep) -> Any:
    """Restore encrypt/fpe columns of JSON records: ``{"records": [...], "columns": ["身份证号"]}``.
    Allowed only when the policy allows ``unmask``; every attempt is audited."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise UnsupportedMedia("send application/json", accepted=["application/json"])
    raw = await request.body()
    body = _parse_json(raw)
    _only_text(raw, body)
    records = _records(body)
    columns = body.get("columns")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput('"columns" must be a list of column names')
    out = await run_in_threadpool(uc.unmask_records, container, caller, records, columns,
                                  dataset=_opt_str(body, "dataset"), ctx=ctx,
                                  body_sha256=hashlib.sha256(raw).hexdigest())
    return {"records": out}
