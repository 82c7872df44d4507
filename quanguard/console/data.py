"""The console's calls into the service: the same use cases as the HTTP API.

Each function takes the signed-in principal and the request context, calls the use case
that the matching ``/v1`` route calls (so policy, role checks and audit events are the
same), and turns domain/service errors into a message for the page instead of a JSON
error body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor.alert_engine import Alert
from monitor.errors import InvalidQuery, MonitorError
from monitor.events import AuditEvent
from monitor.search import SearchQuery, SearchResult
from quanguard.auth import Principal
from quanguard.errors import ServiceError, classify
from quanguard.gate import RequestContext

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = [
    "ALERT_SORTS",
    "ALERT_STATUSES",
    "QUERY_ERRORS",
    "SEVERITY_ORDER",
    "AlertsOutcome",
    "EventOutcome",
    "SearchOutcome",
    "browse_alerts",
    "export",
    "get_event",
    "list_alerts",
    "names",
    "proof",
    "search",
    "trail_status",
    "update_alert",
    "vocabulary",
]

ALERT_STATUSES = ("open", "acknowledged", "closed")
QUERY_ERRORS: tuple[type[Exception], ...] = (InvalidQuery,)


@dataclass(frozen=True)
class SearchOutcome:
    result: SearchResult | None = None
    backend: str | None = None
    error: str | None = None
    status: int = 200


@dataclass(frozen=True)
class AlertsOutcome:
    rows: list[dict[str, object]] = field(default_factory=list)
    error: str | None = None
    status: int = 200


def _status(exc: Exception) -> int:
    info = classify(exc)
    return info.status if info else 500


def search(container: Container, principal: Principal, ctx: RequestContext,
           query: SearchQuery) -> SearchOutcome:
    """Run the audit search use case (itself recorded as an ``audit_search`` event)."""
    from quanguard.usecases import audit as usecase

    try:
        result = usecase.search(container, principal, query, ctx=ctx)
    except (ServiceError, MonitorError) as exc:
        return SearchOutcome(error=str(exc), status=_status(exc))
    backend = getattr(container.search, "last_backend", None) or getattr(
        container.search, "name", None)
    return SearchOutcome(result=result, backend=backend)


def _when(value: object, zone: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _alert_row(alert: Alert, zone: ZoneInfo) -> dict[str, object]:
    seqs = list(alert.seqs)
    shown = ", ".join(str(s) for s in seqs[:8]) + (" …" if len(seqs) > 8 else "")
    return {"id": alert.id, "rule": alert.rule, "severity": alert.severity,
            "actor": alert.actor, "summary": alert.summary, "count": alert.count,
            "window": f"{_when(alert.window_start, zone)} – {_when(alert.window_end, zone)}",
            "seqs": shown, "status": alert.status, "note": alert.note}


def list_alerts(container: Container, principal: Principal, ctx: RequestContext,
                status: str) -> AlertsOutcome:
    from quanguard.usecases import audit as usecase

    try:
        alerts = usecase.list_alerts(container, principal, status=status,
                                     ctx=ctx)
    except (ServiceError, MonitorError) as exc:
        return AlertsOutcome(error=str(exc), status=_status(exc))
    zone = ZoneInfo(container.settings.tz)
    return AlertsOutcome(rows=[_alert_row(a, zone) for a in alerts])


def update_alert(container: Container, principal: Principal, ctx: RequestContext, alert_id: str, *,
                 status: str, note: str | None) -> str | None:
    """Acknowledge or close an alert; returns an error message or None."""
    from quanguard.usecases import audit as usecase

    if status not in ("acknowledged", "closed"):
        return f"unknown alert status {status!r}"
    try:
        usecase.update_alert(container, principal, alert_id, status=status, note=note,
                             ctx=ctx)
    except (ServiceError, MonitorError) as exc:
        return str(exc)
    return None


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def trail_status(container: Container, principal: Principal, ctx: RequestContext
                 ) -> tuple[list[tuple[str, list[tuple[str, str]]]], str | None]:
    """Sections of the status page: trail head, checkpoint, verification, shipping."""
    from quanguard.services.shipper import es_status
    from quanguard.usecases import audit as usecase

    sections: list[tuple[str, list[tuple[str, str]]]] = []
    error = None
    try:
        status = usecase.status(container, principal, ctx=ctx)
    except (ServiceError, MonitorError) as exc:
        status, error = {}, str(exc)
    for title, key in (("Trail 留痕", "head"), ("Last checkpoint 检查点", "last_checkpoint"),
                       ("Last verification 校验", "last_verify")):
        value = status.get(key)
        rows = [(k, _fmt(v)) for k, v in value.items()] if isinstance(value, dict) else [
            (key, _fmt(value))]
        sections.append((title, rows))
    es: dict[str, Any] | None = es_status(container)
    if es is None:
        sections.append(("Elasticsearch", [("shipping", "off (QUANGUARD_ES_URL not set)")]))
    else:
        shipper = es["shipper"]
        cluster = es.get("cluster") or {}
        sections.append(("Elasticsearch", [
            ("cluster", _fmt(cluster.get("version"))), ("health", _fmt(es.get("health"))),
            ("shipped seq", _fmt(shipper["shipped_seq"])), ("lag", _fmt(shipper["lag"])),
            ("state", _fmt(shipper["state"])), ("last error", _fmt(shipper["last_error"])),
            ("retention", _fmt((es.get("retention") or {}).get("mode")))]))
    return sections, error


# --- investigation (issue 13) ------------------------------------------------------------

_VOCAB_TTL = 60.0


def vocabulary(container: Container) -> dict[str, list[str]]:
    """Pick-list values: the known vocabulary plus what the trail actually holds
    (distinct values from the system of record, cached for a minute)."""
    import time

    import sqlalchemy as sa

    from monitor.actions import KNOWN_ACTIONS
    from monitor.events import EFFECTS, OUTCOMES
    from monitor.store import EVENTS
    from quanguard.auth import ROLES

    with container.lock:
        cached = getattr(container, "_console_vocab", None)
        if cached is not None and time.monotonic() - cached[0] < _VOCAB_TTL:
            return dict(cached[1])
    seen: dict[str, set[str]] = {}
    with container.session() as session:
        for name in ("role", "action", "grade", "org"):
            col = EVENTS.c[name]
            seen[name] = {str(v) for (v,) in session.execute(
                sa.select(col).where(col.is_not(None)).distinct().limit(500))}
    order = list(container.policy.grade_order)
    grades = order + sorted(seen["grade"] - set(order))
    vocab = {
        "role": sorted(set(ROLES) | seen["role"]),
        "action": sorted(set(KNOWN_ACTIONS) | seen["action"]),
        "grade": grades,
        "effect": list(EFFECTS),
        "outcome": list(OUTCOMES),
        "org": sorted(seen["org"]),
    }
    with container.lock:
        container._console_vocab = (time.monotonic(), vocab)
    return vocab


@dataclass(frozen=True)
class EventOutcome:
    event: AuditEvent | None = None
    error: str | None = None
    status: int = 200


def get_event(container: Container, principal: Principal, ctx: RequestContext,
              seq: int) -> EventOutcome:
    from quanguard.usecases import audit_read

    try:
        return EventOutcome(event=audit_read.get_event(container, principal, seq, ctx))
    except (ServiceError, MonitorError) as exc:
        return EventOutcome(error=str(exc), status=_status(exc))


def proof(container: Container, principal: Principal, ctx: RequestContext,
          seq: int) -> tuple[dict[str, object] | None, str | None, int]:
    """The inclusion proof of ``seq`` (with its checkpoint), as ``GET /v1/audit/proof``."""
    from quanguard.usecases import audit as usecase

    try:
        doc = usecase.proof(container, principal, seq, ctx=ctx)
    except (ServiceError, MonitorError) as exc:
        return None, str(exc), _status(exc)
    return doc, None, 200


def export(container: Container, principal: Principal, ctx: RequestContext, query: SearchQuery,
           fmt: str) -> tuple[Any, str | None, int]:
    from quanguard.usecases import audit_read

    try:
        return audit_read.export(container, principal, query, fmt, ctx), None, 200
    except (ServiceError, MonitorError) as exc:
        return None, str(exc), _status(exc)


def names(container: Container, ids: list[str]) -> dict[str, str]:
    from quanguard.usecases.audit_read import names_of

    return names_of(container, ids)


SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}
ALERT_SORTS = (("severity", "severity 严重程度"), ("-created", "newest first"),
               ("created", "oldest first"), ("-events", "most events"), ("rule", "rule"))
MAX_ALERTS = 1000


def browse_alerts(container: Container, principal: Principal, ctx: RequestContext, *,
                  status: str | None, severity: str | None, rule: str | None,
                  actor: str | None, sort: str) -> AlertsOutcome:
    """Alerts filtered by status/severity/rule/actor and sorted (severity first by
    default: a critical alert is never buried under medium ones)."""
    from quanguard.usecases import audit as usecase

    try:
        alerts = usecase.list_alerts(container, principal, status=status or None,
                                     rule=rule or None, actor=actor or None,
                                     limit=MAX_ALERTS, ctx=ctx)
    except (ServiceError, MonitorError) as exc:
        return AlertsOutcome(error=str(exc), status=_status(exc))
    if severity:
        alerts = [a for a in alerts if a.severity == severity]
    keys = {
        "severity": lambda a: (SEVERITY_ORDER.get(a.severity, 9), -a.created.timestamp()),
        "-created": lambda a: -a.created.timestamp(),
        "created": lambda a: a.created.timestamp(),
        "-events": lambda a: (-len(a.seqs), -a.created.timestamp()),
        "rule": lambda a: (a.rule, -a.created.timestamp()),
    }
    alerts = sorted(alerts, key=keys.get(sort, keys["severity"]))
    zone = ZoneInfo(container.settings.tz)
    who = names(container, [a.actor for a in alerts])
    rows = []
    for a in alerts:
        row = _alert_row(a, zone)
        row.update(seq_list=list(a.seqs), events=len(a.seqs), hits=a.count,
                   name=who.get(a.actor),
                   created=_when(a.created, zone))
        rows.append(row)
    return AlertsOutcome(rows=rows)


def last_month(tz: str) -> str:
    from monitor.events import utc_now

    now = utc_now().astimezone(ZoneInfo(tz))
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def report(container: Container, principal: Principal, ctx: RequestContext, month: str, *,
           pdf: bool = False) -> tuple[str | bytes | None, str | None, int]:
    """The monthly report as HTML (or PDF bytes), or an error message for the page."""
    import tempfile
    from pathlib import Path

    from quanguard.report import html_to_pdf
    from quanguard.report_html import render_html
    from quanguard.usecases.report import monthly_report

    try:
        html = render_html(monthly_report(container, principal, month, ctx,
                                          fmt="pdf" if pdf else "html"))
        if not pdf:
            return html, None, 200
        with tempfile.TemporaryDirectory(prefix="qg-report-") as tmp:
            out = html_to_pdf(html, Path(tmp) / "report.pdf")
            return out.read_bytes(), None, 200
    except (ServiceError, MonitorError) as exc:
        return None, str(exc), _status(exc)
