"""Reading the trail for investigation: one event, facets, and exports (CSV / NDJSON).

Each call goes through the one gate (policy action ``audit_search``) and records one
event of its own in the trail with the caller's request id: ``audit_event`` (one event
read), ``audit_export`` (an export, with its format, filters and row count). An export
larger than its cap — the smaller of ``QUANGUARD_EXPORT_MAX_ROWS`` and the policy's
``row_limit`` obligation — is refused as a whole (413), never silently cut short.

CSV cells are neutralised against spreadsheet formula injection (OWASP "CSV
Injection"): reporters control free text, so a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return gets a leading apostrophe, which spreadsheets
show as text and never evaluate.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Unpack

from monitor.events import AuditEvent
from monitor.search import FACET_SIZE, FACETS, MAX_SIZE, MAX_WINDOW, Bucket, SearchQuery
from quanguard.auth import Principal
from quanguard.errors import InvalidInput, NotFound, TooLarge
from quanguard.gate import RequestContext, authorize, origin

if TYPE_CHECKING:
    from quanguard.container import Container
    from quanguard.policy.model import Decision
    from quanguard.services.audit import EventDetails

__all__ = [
    "CSV_COLUMNS",
    "EXPORT_FORMATS",
    "Export",
    "csv_safe",
    "event_row",
    "export",
    "facet_names",
    "get_event",
    "names_of",
]

EXPORT_FORMATS = ("csv", "ndjson")
CSV_COLUMNS = ("seq", "time", "user.id", "user.name", "user.role", "organization.name",
               "action", "dataset", "grade", "effect", "outcome", "rows", "source.ip",
               "purpose", "reason", "rule.id", "trace.id", "event.id")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """The text of a CSV cell that no spreadsheet will evaluate as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def event_row(event: AuditEvent) -> dict[str, object]:
    """The flat row of an event (CSV columns and console tables)."""
    return {
        "seq": event.seq, "time": event.ts.isoformat(), "user.id": event.actor.id,
        "user.name": event.actor.name, "user.role": event.actor.role,
        "organization.name": event.actor.org, "action": event.action,
        "dataset": event.dataset, "grade": event.grade, "effect": event.effect,
        "outcome": event.outcome, "rows": event.rows, "source.ip": event.source_ip,
        "purpose": event.purpose, "reason": event.reason,
        "rule.id": event.decision.rule_id if event.decision else None,
        "trace.id": event.request_id, "event.id": event.id,
    }


def facet_names(raw: str | Sequence[str] | None) -> tuple[str, ...]:
    """``actor,org`` (or a list) -> validated facet names; InvalidInput otherwise."""
    if not raw:
        return ()
    items = [raw] if isinstance(raw, str) else list(raw)
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACETS]
    if unknown:
        raise InvalidInput(f"unknown facet(s) {', '.join(unknown[:5])} "
                           f"(known: {', '.join(FACETS)})", field="facets")
    return tuple(dict.fromkeys(names))


def names_of(container: Container, ids: Sequence[str]) -> dict[str, str]:
    """Names of actor ids (for facets and alerts, whose rows hold only ids): the key's
    name, else the newest name the actor's events carry (reporters' actors hold no key)."""
    import sqlalchemy as sa

    from monitor.store import EVENTS
    from quanguard.models import PrincipalRow

    wanted = [i for i in dict.fromkeys(ids) if i][:1000]
    if not wanted:
        return {}
    with container.session() as session:
        rows = session.execute(sa.select(PrincipalRow.id, PrincipalRow.name)
                               .where(PrincipalRow.id.in_(wanted))).all()
        out = {str(i): str(n) for i, n in rows}
        missing = [i for i in wanted if i not in out]
        if missing:
            newest = (sa.select(EVENTS.c.actor, sa.func.max(EVENTS.c.seq).label("seq"))
                      .where(EVENTS.c.actor.in_(missing), EVENTS.c.actor_name.is_not(None))
                      .group_by(EVENTS.c.actor).subquery())
            for actor, name in session.execute(
                    sa.select(EVENTS.c.actor, EVENTS.c.actor_name)
                    .join(newest, EVENTS.c.seq == newest.c.seq)):
                out[str(actor)] = str(name)
    return out


def _record(container: Container, principal: Principal, action: str, ctx: RequestContext, *,
            decision: Decision, **kw: Unpack[EventDetails]) -> int:
    from quanguard.usecases.audit import with_retry

    def tx() -> int:
        with container.unit_of_work() as session:
            return int(container.audit.record(
                session, actor=principal, action=action, decision=decision,
                **origin(ctx), **kw))
    return with_retry(tx)


def get_event(container: Container, principal: Principal, seq: int,
              ctx: RequestContext) -> AuditEvent:
    """One stored event (from the system of record), recorded as ``audit_event``."""
    from monitor.errors import EventNotFound

    decision = authorize(container, principal, "audit_search", None, ctx,
                         audit_action="audit_event", labels={"seq": str(seq)})
    try:
        with container.session() as session:
            event: AuditEvent = container.audit.store.get(session, seq)
    except EventNotFound as exc:
        _record(container, principal, "audit_event", ctx, decision=decision,
                outcome="failure", labels={"seq": str(seq)}, reason="no such event")
        raise NotFound(str(exc)) from exc
    _record(container, principal, "audit_event", ctx, decision=decision, rows=1,
            labels={"seq": str(seq)})
    return event


@dataclass(frozen=True)
class Export:
    """A finished export: the body, its media type and a file name."""

    body: bytes
    media_type: str
    filename: str
    rows: int


def _labels(query: SearchQuery) -> dict[str, str]:
    labels = dict(query.filters())
    for name, value in query.exclude:
        labels[f"not_{name}"] = value
    if query.since:
        labels["since"] = query.since.isoformat()
    if query.until:
        labels["until"] = query.until.isoformat()
    return labels


def _pages(container: Container, query: SearchQuery, total: int) -> Iterator[AuditEvent]:
    size = MAX_SIZE
    for page in range(1, (total + size - 1) // size + 1):
        result = container.search.search(replace(query, page=page, size=size, aggs=()))
        yield from result.hits


def export(container: Container, principal: Principal, query: SearchQuery, fmt: str,
           ctx: RequestContext) -> Export:
    """Every event of ``query`` (in its sort order) as CSV or NDJSON, recorded as
    ``audit_export``. Raises TooLarge when the result exceeds the cap."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format must be one of json, {', '.join(EXPORT_FORMATS)}",
                           field="format")
    labels = {**_labels(query), "format": fmt}
    reason = f"q: {query.q[:500]}" if query.q else None
    decision = authorize(container, principal, "audit_search", None, ctx,
                         audit_action="audit_export", labels=labels)
    limit = int(container.settings.export_max_rows)
    row_limit = (getattr(decision, "obligations", None) or {}).get("row_limit")
    if isinstance(row_limit, int) and row_limit > 0:
        limit = min(limit, row_limit)
    limit = min(limit, MAX_WINDOW)
    total = container.search.search(replace(query, page=1, size=0, aggs=())).total
    if total > limit:
        _record(container, principal, "audit_export", ctx, decision=decision,
                outcome="failure", rows=total, labels={**labels, "cap": str(limit)},
                reason=f"{total} events exceed the export cap of {limit}" +
                       (f"; {reason}" if reason else ""))
        raise TooLarge(f"the search matches {total} events; exports are capped at {limit} "
                       "(QUANGUARD_EXPORT_MAX_ROWS / policy row_limit): narrow the time "
                       "range or add filters", limit=limit, total=total)
    events = list(_pages(container, query, total))
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for event in events:
            row = event_row(event)
            writer.writerow([csv_safe(row[c]) for c in CSV_COLUMNS])
        body = ("\ufeff" + out.getvalue()).encode("utf-8")  # BOM: Excel reads UTF-8 (CJK)
        media = "text/csv; charset=utf-8"
    else:
        body = b"".join(json.dumps(e.to_document(), ensure_ascii=False,
                                   sort_keys=True).encode("utf-8") + b"\n" for e in events)
        media = "application/x-ndjson"
    seq = _record(container, principal, "audit_export", ctx, decision=decision,
                  rows=len(events), labels={**labels, "cap": str(limit)}, reason=reason)
    return Export(body, media, f"quanguard-audit-{seq}.{fmt}", len(events))


def facets_of(result_aggs: Mapping[str, Sequence[Bucket]], names: Sequence[str]
              ) -> dict[str, list[dict[str, object]]]:
    """The top ``FACET_SIZE`` buckets of each requested facet."""
    return {n: [{"key": b.key, "count": b.count} for b in result_aggs.get(f"by_{n}", ())
                ][:FACET_SIZE] for n in names}
