"""The audit trail over HTTP.

``POST /v1/events`` (one event, JSON) and ``POST /v1/events/batch`` (NDJSON, up to
10,000 lines) for reporter systems; ``GET /v1/audit/search``, ``GET /v1/audit/status``,
``POST /v1/audit/checkpoint``, ``GET /v1/audit/proof/{seq}`` and
``GET /v1/audit/consistency?old_size=N`` for the security team.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from monitor.errors import InvalidEvent
from monitor.events import parse_ago, parse_ts
from monitor.ingest import MAX_BATCH, not_text
from monitor.search import SearchQuery
from quanguard.api import openapi as oa
from quanguard.api.deps import ContainerDep, ContextDep, require_roles
from quanguard.api.uploads import charset_of
from quanguard.auth import Principal
from quanguard.errors import InvalidInput
from quanguard.gate import RequestContext as GateContext
from quanguard.usecases import audit as uc

router = APIRouter(tags=["audit"])

_Reporter = Annotated[Principal, Depends(require_roles("reporter"))]
_Searcher = Annotated[Principal, Depends(require_roles("auditor", "manager", "officer"))]
_Overseer = Annotated[Principal, Depends(
    require_roles("auditor", "manager", "officer", "admin"))]
_Signer = Annotated[Principal, Depends(require_roles("auditor", "officer", "admin"))]


@router.post("/v1/events", status_code=201, openapi_extra={
    **oa.request_body(oa.json_schema({"$ref": "#/components/schemas/Event"})),
    "responses": {"201": {"description": "stored", "content": oa.json_schema(
        {"type": "object", "properties": {"seq": {"type": "integer"}}})}}})
async def post_event(request: Request, caller: _Reporter, container: ContainerDep,
                     ctx: ContextDep) -> Any:
    """Record one access reported by another platform (the NDJSON line format as a JSON
    object). The caller is the event's reporter."""
    body = await request.body()
    if b"\n" in body.strip():
        raise InvalidInput("one JSON object expected; post NDJSON to /v1/events/batch")
    result = await run_in_threadpool(
        uc.ingest, container, caller, [body], ctx=ctx, max_lines=1, codec=_codec(request))
    if result.errors:
        raise InvalidEvent(result.errors[0].message)
    if not result.accepted:
        raise InvalidInput("the body is empty")
    return {"seq": result.first_seq}


@router.post("/v1/events/batch", openapi_extra=oa.request_body(
    oa.ndjson("event (components/schemas/Event)", MAX_BATCH, gb=True),
    description="up to 10,000 lines, each one event (components/schemas/Event)"))
async def post_batch(request: Request, caller: _Reporter, container: ContainerDep,
                     ctx: ContextDep, response: Response) -> Any:
    """Record up to 10,000 NDJSON lines in one transaction. Valid lines are kept; each
    invalid one is reported with its line number. 413 when the batch is too large."""
    body = await request.body()
    codec = _codec(request)
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(f"the body is {not_text(exc, codec, f'of the body, line {line}')}"
                           ) from exc
    # NDJSON lines end at "\n" (a "\r" before it is JSON whitespace): not at the other
    # breaks str.splitlines() knows (U+2028, U+0085 ...), which a JSON string may hold raw
    result = await run_in_threadpool(
        uc.ingest, container, caller, text.split("\n"), ctx=ctx, max_lines=MAX_BATCH)
    if result.errors:
        response.status_code = 207 if result.accepted else 400
    return result.to_dict()


def _codec(request: Request) -> str:
    """The codec of a reporter's body: its Content-Type's ``charset``, else UTF-8."""
    return charset_of(request.headers.get("content-type", "")) or "utf-8"


def _ts(value: str | None, name: str) -> datetime | None:
    """``15m``/``24h``/``7d``/``2w`` before now (as the CLI's ``--since``), or RFC 3339."""
    if value is None or value == "":
        return None
    try:
        return parse_ago(value) or parse_ts(value)
    except InvalidEvent as exc:
        raise InvalidInput(f"{name}: {exc.message} (or a relative time: 15m, 24h, 7d, 2w)",
                           field=name) from exc


def _exclusions(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in values or ():
        name, sep, value = item.partition(":")
        if not sep:
            raise InvalidInput(f"exclude {item[:60]!r} must look like field:value",
                               field="exclude")
        pairs.append((name, value))
    return tuple(pairs)


@router.get("/v1/audit/search")
def audit_search(
    caller: _Searcher, container: ContainerDep, ctx: ContextDep,
    actor: str | None = None, role: str | None = None, org: str | None = None,
    action: str | None = None, dataset: str | None = None, grade: str | None = None,
    effect: str | None = None, outcome: str | None = None, source_ip: str | None = None,
    since: str | None = None, until: str | None = None,
    q: str | None = None, sort: str = "-ts", page: int = 1, size: int = 50,
    agg: Annotated[list[str] | None, Query()] = None, tz: str | None = None,
    exclude: Annotated[list[str] | None, Query()] = None,
    facets: Annotated[list[str] | None, Query()] = None, format: str = "json",
) -> Any:
    """Search the trail: filters (case-insensitive; ``actor`` is an id or a key name,
    ``action=aggregate`` also finds ``exchange.aggregate``, ``source_ip`` an address or
    CIDR), ``exclude=field:value`` (repeatable), ``since`` (inclusive) / ``until``
    (exclusive) as RFC 3339 or relative (``15m``, ``24h``, ``7d``, ``2w`` ago), free text ``q`` over purpose and reason, ``sort`` by any
    column (``-`` for descending), paging, ``agg`` (by_<field>, per_minute, per_hour,
    per_day, per_week; repeatable), ``facets=actor,org,...`` (top 10 of each).
    ``format=csv`` or ``ndjson`` exports every matching event (capped by
    ``QUANGUARD_EXPORT_MAX_ROWS``; recorded as ``audit_export``). Every search is
    recorded as an ``audit_search`` event."""
    from quanguard.usecases import audit_read

    names = audit_read.facet_names(facets)
    query = SearchQuery(
        actor=actor, role=role, org=org, action=action, dataset=dataset, grade=grade,
        effect=effect, outcome=outcome, source_ip=source_ip, since=_ts(since, "since"),
        until=_ts(until, "until"), q=q, sort=sort, page=page, size=size,
        aggs=tuple(agg or ()) + tuple(f"by_{n}" for n in names),
        tz=tz or container.settings.tz, exclude=_exclusions(exclude),
    )
    if format != "json":
        done = audit_read.export(container, caller, query, format,
                                 GateContext(ctx.request_id, ctx.source_ip))
        return Response(done.body, media_type=done.media_type, headers={
            "Content-Disposition": f'attachment; filename="{done.filename}"',
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})
    result = uc.search(container, caller, query, ctx=ctx)
    backend = getattr(container.search, "last_backend", None) or getattr(
        container.search, "name", None)
    out = uc.result_dict(result, query, backend)
    if names:
        out["facets"] = audit_read.facets_of(result.aggs, names)
    return out


@router.get("/v1/audit/events/{seq}")
def audit_event(seq: int, caller: _Searcher, container: ContainerDep, ctx: ContextDep) -> Any:
    """One event of the trail by its seq, every field (with the actor's key name and
    organisation at the time); recorded as an ``audit_event`` event."""
    from quanguard.usecases import audit_read

    event = audit_read.get_event(container, caller, seq,
                                 GateContext(ctx.request_id, ctx.source_ip))
    return event.to_document()


@router.get("/v1/audit/status")
def audit_status(caller: _Overseer, container: ContainerDep, ctx: ContextDep) -> Any:
    """Trail head, last signed checkpoint, last verification, Elasticsearch shipping."""
    return uc.status(container, caller, ctx=ctx)


@router.post("/v1/audit/checkpoint")
def audit_checkpoint(caller: _Signer, container: ContainerDep, ctx: ContextDep) -> Any:
    """Sign a checkpoint of the current head and hand it out (it counts as exported:
    keep it outside, ``quanguard audit verify --checkpoint FILE`` checks against it)."""
    cp = uc.checkpoint(container, caller, ctx=ctx)
    return cp.to_dict()


@router.get("/v1/audit/proof/{seq}")
def audit_proof(seq: int, caller: _Overseer, container: ContainerDep, ctx: ContextDep) -> Any:
    """Inclusion proof of event ``seq`` with the signed checkpoint it is proven against
    (``quanguard audit verify-proof`` checks it offline)."""
    return uc.proof(container, caller, seq, ctx=ctx)


@router.get("/v1/audit/consistency")
def audit_consistency(old_size: int, caller: _Overseer, container: ContainerDep,
                      ctx: ContextDep) -> Any:
    """RFC 6962 consistency proof from an exported checkpoint of ``old_size`` events to a
    fresh signed checkpoint (``quanguard audit verify-consistency`` checks it offline)."""
    return uc.consistency(container, caller, old_size, ctx=ctx)
