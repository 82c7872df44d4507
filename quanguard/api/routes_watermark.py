"""Watermarking over HTTP: ``POST /v1/watermark/embed`` (upload a table, download the
marked copy) and ``POST /v1/watermark/detect`` (upload a suspect, get the verdict)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from quanguard.api import openapi as oa
from quanguard.api.deps import ContainerDep, ContextDep, require_roles
from quanguard.api.uploads import scrub_names, spool_upload
from quanguard.auth import Principal
from quanguard.errors import InvalidInput, UnsupportedMedia
from quanguard.usecases import watermark as uc
from watermark import Params, check_alpha
from watermark.models import ALPHA_MIN, CANARIES_MAX, GAMMA_MAX

if TYPE_CHECKING:
    from quanguard.container import Container

router = APIRouter(tags=["watermark"])
_N = TypeVar("_N", int, float)

_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".pq", ".xlsx")
_MEDIA = {".csv": "text/csv", ".tsv": "text/tab-separated-values",
          ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson",
          ".parquet": "application/vnd.apache.parquet", ".pq": "application/vnd.apache.parquet",
          ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_Embedder = Annotated[Principal, Depends(require_roles("manager", "provider"))]
_Detector = Annotated[Principal, Depends(require_roles("manager", "auditor", "officer",
                                                       "provider"))]


async def _save_upload(request: Request, container: Container) -> tuple[_Fields, str, str]:
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        media = ctype.split(";")[0].strip().lower() or "(none)"
        raise UnsupportedMedia(f"content type {media} is not accepted; send multipart/form-data with the "
                               "table in field 'file'", accepted=["multipart/form-data"])
    form = await request.form()
    try:
        return await _save_form(form, container)
    finally:
        await form.close()


async def _save_form(form: FormData, container: Container) -> tuple[_Fields, str, str]:
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidInput("multipart field 'file' is missing")
    name = Path(upload.filename or "upload.csv").name
    suffix = Path(name).suffix.lower() or ".csv"
    if suffix not in _SUFFIXES:
        raise InvalidInput(f"{name}: unsupported table format {suffix!r} "
                           f"(known: {' '.join(_SUFFIXES)})")
    tmp = await spool_upload(upload, folder=container.settings.data_dir, suffix=suffix,
                             limit=container.settings.max_body_bytes)
    fields = {k: form.getlist(k) for k in form if k != "file"}
    return _Fields(fields), tmp, name


class _Fields:
    """The text fields of a closed multipart form."""

    def __init__(self, fields: Mapping[str, Sequence[object]]) -> None:
        self._f = {k: [str(v) for v in vs if isinstance(v, str)] for k, vs in fields.items()}

    def get(self, name: str) -> str | None:
        values = self._f.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return list(self._f.get(name, []))


def _number(form: _Fields, field: str, default: _N, parse: Callable[[str], _N], what: str) -> _N:
    """The form field parsed by ``parse``; ``default`` when absent or empty."""
    raw = form.get(field)
    if raw is None or raw == "":
        return default
    try:
        return parse(str(raw))
    except ValueError as exc:
        raise InvalidInput(f"{field} must be {what}") from exc


def _int(form: _Fields, field: str, default: int) -> int:
    return _number(form, field, default, int, "an integer")


def _float(form: _Fields, field: str, default: float) -> float:
    return _number(form, field, default, float, "a number")


@router.post("/v1/watermark/embed", response_class=FileResponse, openapi_extra=oa.request_body(oa.form({
    "file": {"type": "string", "format": "binary"}, "recipient": {"type": "string"},
    "dataset": {"type": "string"}, "gamma": {"type": "integer", "minimum": 1, "maximum": GAMMA_MAX},
    "canaries": {"type": "integer", "minimum": 0, "maximum": CANARIES_MAX},
    "key_column": {"type": "array", "items": {"type": "string"}},
    "column": {"type": "array", "items": {"type": "string"}},
    "pseudonym_columns": {"type": "array", "items": {"type": "string"}}}, ["file", "recipient"])))
async def embed(request: Request, caller: _Embedder, container: ContainerDep,
                ctx: ContextDep) -> Any:
    """Multipart: ``file`` (CSV/TSV/JSONL/Parquet/XLSX), ``recipient``, optional
    ``dataset``, ``gamma`` (1 to 10 000), ``canaries`` (0 to 1 000), ``key_column``/``column`` (repeatable),
    ``pseudonym_columns`` (repeatable: columns of made-up values — fakes of phone, ID or
    card numbers, hash pseudonyms — that carry marks in a keyed character). Returns
    the marked copy in the same format; headers ``X-Watermark-Copy-Id`` and
    ``X-Watermark-Report`` (JSON: rows, marked cells, per-column mean shift)."""
    form, tmp, name = await _save_upload(request, container)
    out = tmp + ".marked" + Path(tmp).suffix
    try:
        recipient = str(form.get("recipient") or "").strip()
        if not recipient:
            raise InvalidInput("field 'recipient' is required")
        params = Params(gamma=_int(form, "gamma", 8), canaries=_int(form, "canaries", 0),
                        key_columns=tuple(str(v) for v in form.getlist("key_column")),
                        columns=tuple(str(v) for v in form.getlist("column")),
                        pseudonyms=tuple(str(v) for v in form.getlist("pseudonym_columns")))
        dataset = str(form.get("dataset") or "") or Path(name).stem
        # Marking is CPU work: off the event loop, so other requests stay prompt.
        result = await run_in_threadpool(uc.embed, container, caller, tmp, out, recipient=recipient,
                                         dataset=dataset, params=params, ctx=ctx, source_name=name)
    except BaseException as exc:
        Path(out).unlink(missing_ok=True)
        scrub_names(exc, {out: "the marked copy", tmp: name})  # no server file in an error
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    rep = result.report
    summary = {"copy_id": result.copy_id, "dataset": result.dataset, "rows": rep.rows,
               "marked_cells": rep.marked_cells, "changed_cells": rep.changed_cells,
               "canary_rows": rep.canary_rows, "output_digest": result.output_digest,
               "columns": {c.name: {"marked": c.marked, "relative_shift": c.relative_shift}
                           for c in rep.columns}}
    stem = Path(name).stem
    suffix = Path(name).suffix.lower() or ".csv"
    return FileResponse(
        out, media_type=_MEDIA.get(suffix, "application/octet-stream"),
        filename=f"{stem}.{result.copy_id[:8]}{suffix}",
        headers={"X-Watermark-Copy-Id": result.copy_id,
                 "X-Watermark-Report": json.dumps(summary, ensure_ascii=True)},
        background=BackgroundTask(lambda: Path(out).unlink(missing_ok=True)))


@router.post("/v1/watermark/detect", openapi_extra=oa.request_body(oa.form({
    "file": {"type": "string", "format": "binary"}, "dataset": {"type": "string"},
    "alpha": {"type": "number", "minimum": ALPHA_MIN, "exclusiveMaximum": 1}}, ["file"])))
async def detect(request: Request, caller: _Detector, container: ContainerDep,
                 ctx: ContextDep) -> Any:
    """Multipart: ``file`` (the suspect table), optional ``dataset`` and ``alpha`` (at
    least 1e-30, below 1). Returns ``{"verdict": "match"|"none", "recipient", "p_value",
    "candidates", "evidence", "message"}``."""
    form, tmp, name = await _save_upload(request, container)
    try:
        alpha = check_alpha(_float(form, "alpha", 1e-6))
        dataset = str(form.get("dataset") or "") or None
        verdict = await run_in_threadpool(uc.detect, container, caller, tmp, dataset=dataset,
                                          alpha=alpha, ctx=ctx, source_name=name)
    except BaseException as exc:
        scrub_names(exc, {tmp: name})  # no server file in an error
        raise
    finally:
        Path(tmp).unlink(missing_ok=True)
    return verdict.to_dict()

