"""The console at ``/console``: server-rendered pages for the security team.

Sign in with an API key (auditors, managers, admins) -> a server-side session whose
random id is the only thing in the cookie. Pages: audit search (pick-lists from the
trail's vocabulary, relative ranges, a histogram whose interval follows the range,
sortable columns, highlighted matches, top-10 facets that add or exclude a filter,
CSV/NDJSON export; every search is an audit event, through the same use case as
``GET /v1/audit/search``), event detail with its downloadable inclusion proof, actor
timelines, alerts (filter and sort by severity, status, rule, actor; acknowledge /
close by POST forms with a CSRF token), trail status, and the monthly report
(``quanguard.report``). No JavaScript.

This module also starts and stops the Elasticsearch shipper with the service
(``on_startup`` / ``on_shutdown``; see ``quanguard.services.shipper``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.errors import InvalidQuery
from quanguard.api.deps import ContainerDep, RequestContext, get_context
from quanguard.api.recording import RequestRecorder
from quanguard.auth import authenticate
from quanguard.console import data
from quanguard.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    ConsoleSession,
    get_store,
    tokens_match,
)
from quanguard.console.views import (
    FILTER_FIELDS,
    RANGES,
    SORTS,
    build_chart,
    facet_links,
    hit_rows,
    page_urls,
    parse_search_form,
    sort_links,
    templates,
)
from quanguard.errors import Forbidden, RateLimited, Unauthenticated
from quanguard.ratelimit import limiter as auth_failure_limiter
from quanguard.usecases import console as signin

if TYPE_CHECKING:
    from quanguard.container import Container

router = APIRouter(prefix="/console", include_in_schema=False)

PREFIX = "/console"
_STATIC = Path(__file__).resolve().parent.parent / "console" / "static"
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def on_startup(container: Container) -> None:
    from quanguard.services.shipper import start_es

    start_es(container)


def on_shutdown(container: Container) -> None:
    from quanguard.services.shipper import stop_es

    stop_es(container)


# --- helpers -----------------------------------------------------------------------------

def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _render(name: str, code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("prefix", PREFIX)
    html = templates().get_template(name).render(**ctx)
    return HTMLResponse(html, status_code=code, headers=_HEADERS)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def _session(request: Request, container: Container) -> ConsoleSession | None:
    # One read: the session (whichever worker created it) and its key's state; a revoked
    # or expired key ends every session of it ...
    store = get_store(container)
    current = store.get(request.cookies.get(COOKIE))
    if current is None:
        return None
    # ... and the active policy still admits its role: a reload since sign-in that no
    # longer does ends the key's sessions (the refusal recorded once, by the gate).
    try:
        signin.still_admitted(container, current.principal, _ctx(request))
    except Forbidden:
        store.drop_principal(current.principal.id)
        return None
    # The audit use cases read the caller from request.state like the API's dependency.
    request.state.principal = current.principal
    return current


def _page(request: Request, current: ConsoleSession, name: str, page: str,
          code: int = 200, **ctx: Any) -> HTMLResponse:
    flash = request.query_params.get("done")
    return _render(name, code, me=current.principal, csrf=current.csrf, page=page,
                   flash=flash, **ctx)


def _ctx(request: Request) -> RequestContext:
    return get_context(request)


# --- sign in / out ----------------------------------------------------------------------

@router.get("/static/console.css")
def stylesheet() -> Response:
    css = (_STATIC / "console.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css",
                    headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


_FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
            '<rect width="16" height="16" rx="3" fill="#13283f"/>'
            '<path d="M4 8l3 3 5-6" stroke="#fff" stroke-width="2" fill="none"/></svg>')


@router.get("/static/favicon.svg")
def favicon() -> Response:
    return Response(_FAVICON, media_type="image/svg+xml",
                    headers={"Cache-Control": "max-age=86400", "X-Content-Type-Options": "nosniff"})


@router.get("")
@router.get("/")
def home(request: Request, container: ContainerDep) -> Response:
    return _redirect(f"{PREFIX}/search" if _session(request, container) else f"{PREFIX}/login")


def _login_page(request: Request, *, error: str | None = None, code: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    response = _render("login.html", code, login_csrf=token, error=error)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request), path=PREFIX, max_age=3600)
    return response


@router.get("/login")
def login_form(request: Request, container: ContainerDep) -> Response:
    if _session(request, container):
        return _redirect(f"{PREFIX}/search")
    return _login_page(request)


@router.post("/login")
async def login(request: Request, container: ContainerDep) -> Response:
    form = await request.form()
    if not tokens_match(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, error="The sign-in form expired; please try again.",
                           code=400)
    key = str(form.get("key", "")).strip()
    ctx = _ctx(request)
    # The same failed-authentication limit per source address as the API's bearer keys.
    limiter = auth_failure_limiter(container)
    source = request.client.host if request.client else "unknown"
    try:
        with container.read_session() as session:
            limiter.check(source, session)
            principal = authenticate(session, key)
    except RateLimited as exc:
        # Refused before the key was read; recorded like the API's rate-limited requests:
        # one anonymous event per source a minute, the next counting those folded in.
        recorder = RequestRecorder.of(container)
        admitted = recorder.throttle.admit(source)
        if admitted is None:
            recorder.m_suppressed.inc()
        else:
            signin.refuse_sign_in(container, None, ctx, reason=exc.message, key=key or None,
                                  suppressed=admitted)
        return _login_page(request, error=exc.message, code=429)
    except Unauthenticated as exc:
        limiter.fail(source)
        container.metrics.auth_failures.inc()
        # The refused key's fingerprint (never the key) tells attempts apart in the trail.
        signin.refuse_sign_in(container, None, ctx, reason=exc.message, key=key or None)
        return _login_page(request, error=f"Sign-in failed: {exc.message}.", code=401)
    try:
        signin.sign_in(container, principal, ctx)
    except Forbidden:
        # who may sign in is the policy's (console_sign_in); the refusal is recorded
        message = (f"Your key belongs to role '{principal.role}'. The policy admits "
                   f"{_people(signin.admitted_roles(container))} to the console; use the "
                   f"HTTP API or the CLI for your own work.")
        return _render("denied.html", 403, message=message)
    sid, _ = get_store(container).create(principal)
    response = _redirect(f"{PREFIX}/search")
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=_secure(request),
                        path=PREFIX)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


# the roles as the console's readers name them, in the order they are listed
_PEOPLE = {"auditor": "auditors", "manager": "managers", "admin": "administrators",
           "officer": "officers", "provider": "providers", "consumer": "consumers",
           "reporter": "reporters"}


def _people(roles: list[str]) -> str:
    """``auditors, managers and administrators`` (``no role`` for none)."""
    order = list(_PEOPLE)
    ranked = sorted(roles, key=lambda r: order.index(r) if r in order else len(order))
    names = [_PEOPLE.get(r, r) for r in ranked]
    if not names:
        return "no role"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@router.post("/logout")
async def logout(request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    form = await request.form()
    if current is not None and tokens_match(str(form.get("csrf", "")), current.csrf):
        get_store(container).drop(request.cookies.get(COOKIE))
    response = _redirect(f"{PREFIX}/login")
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


# --- pages ------------------------------------------------------------------------------

def _search_ctx(container: Container, params: dict[str, str]) -> dict[str, Any]:
    return {"form": params, "filter_fields": FILTER_FIELDS, "sorts": SORTS, "ranges": RANGES,
            "vocab": data.vocabulary(container), "tz": container.settings.tz}


def _run_search(request: Request, container: Container, current: ConsoleSession, base: str,
                params: dict[str, str], template: str, page: str, **extra: Any) -> Response:
    tz = container.settings.tz
    ctx = {**_search_ctx(container, params), **extra}
    try:
        clean, query = parse_search_form(params, tz=tz)
    except (ValueError, InvalidQuery) as exc:
        return _page(request, current, template, page, 400, error=str(exc), **ctx)
    outcome = data.search(container, current.principal, _ctx(request), query)
    if outcome.error:
        return _page(request, current, template, page, outcome.status,
                     error=outcome.error, **ctx)
    result = outcome.result
    assert result is not None
    if extra.get("actor_id") and not ctx.get("actor_name"):
        # The name the actor's own events carry (reporters' actors hold no key here).
        ctx["actor_name"] = next((h.actor.name for h in result.hits if h.actor.name), None)
    prev_url, next_url, pages = page_urls(base, clean, page=query.page, total=result.total)
    histogram = next(a for a in query.aggs if a.startswith("per_"))
    ids = [h.actor.id for h in result.hits if not h.actor.name] + [
        b.key for b in result.aggs.get("by_actor", ())]
    names = data.names(container, ids)
    names.update({h.actor.id: h.actor.name for h in result.hits if h.actor.name})
    export_qs = urlencode({k: v for k, v in clean.items() if k != "page"})
    return _page(request, current, template, page, result=result,
                 backend=outcome.backend,
                 hits=hit_rows(result.hits, tz=tz, terms=query.terms, names=names),
                 chart=build_chart(result.aggs.get(histogram, ()), histogram[4:]),
                 facets=facet_links(base, clean, result.aggs, names),
                 sort_urls=sort_links(base, clean), page_no=query.page, pages=pages,
                 prev_url=prev_url, next_url=next_url, clean=clean,
                 exclusions=[(k[4:], v) for k, v in clean.items() if k.startswith("not_")],
                 export_csv=f"{PREFIX}/export?format=csv&{export_qs}",
                 export_ndjson=f"{PREFIX}/export?format=ndjson&{export_qs}",
                 first=query.offset + 1, last=query.offset + len(result.hits), **ctx)


@router.get("/search")
def search_page(request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    params = dict(request.query_params)
    if not request.query_params:
        return _page(request, current, "search.html", "search",
                     **_search_ctx(container, params))
    return _run_search(request, container, current, f"{PREFIX}/search", params,
                       "search.html", "search")


@router.get("/actors/{actor_id}")
def actor_page(actor_id: str, request: Request, container: ContainerDep) -> Response:
    """One actor's timeline: its events (histogram, facets) and its alerts."""
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    params = {**dict(request.query_params), "actor": actor_id}
    alerts = data.browse_alerts(container, current.principal, _ctx(request), status=None,
                                severity=None, rule=None, actor=actor_id, sort="severity")
    name = data.names(container, [actor_id]).get(actor_id)
    return _run_search(request, container, current, f"{PREFIX}/actors/{quote(actor_id)}",
                       params, "actor.html", "search", actor_id=actor_id, actor_name=name,
                       alerts=alerts.rows, alerts_error=alerts.error)


@router.get("/events/{seq}")
def event_page(seq: int, request: Request, container: ContainerDep) -> Response:
    """Every field of one event, its raw JSON, and its inclusion proof for download."""
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    outcome = data.get_event(container, current.principal, _ctx(request), seq)
    if outcome.error:
        return _page(request, current, "event.html", "search", outcome.status,
                     error=outcome.error, seq=seq)
    event = outcome.event
    assert event is not None  # no error: get_event found it
    doc = event.to_document()
    zone = ZoneInfo(container.settings.tz)
    name = event.actor.name or data.names(container, [event.actor.id]).get(event.actor.id)
    return _page(request, current, "event.html", "search", seq=seq, event=event,
                 actor_name=name, local=event.ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S.%f"),
                 tz=container.settings.tz, fields=_flatten(doc),
                 raw=json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True))


def _flatten(doc: Mapping[str, object], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key in sorted(doc):
        value = doc[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.extend(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out.append((name, ", ".join(str(v) for v in value)))
        else:
            out.append((name, str(value)))
    return out


def _download(body: bytes, media: str, filename: str) -> Response:
    return Response(body, media_type=media, headers={
        **_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/events/{seq}/proof")
def event_proof(seq: int, request: Request, container: ContainerDep,
                part: str = "proof") -> Response:
    """The event's inclusion proof (``part=proof``) or the signed checkpoint it is proven
    against (``part=checkpoint``), for ``quanguard audit verify-proof``."""
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    doc, error, code = data.proof(container, current.principal, _ctx(request), seq)
    if doc is None:
        return _page(request, current, "event.html", "search", code, error=error, seq=seq)
    if part == "checkpoint":
        body = json.dumps(doc["checkpoint"], indent=2, sort_keys=True) + "\n"
        return _download(body.encode(), "application/json", f"checkpoint-{seq}.json")
    body = json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return _download(body.encode(), "application/json", f"proof-{seq}.json")


@router.get("/export")
def export_search(request: Request, container: ContainerDep, format: str = "csv") -> Response:
    """The current search as CSV or NDJSON (capped; recorded as ``audit_export``)."""
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    params = {k: v for k, v in request.query_params.items() if k != "format"}
    try:
        _, query = parse_search_form(params, tz=container.settings.tz)
    except (ValueError, InvalidQuery) as exc:
        return _page(request, current, "search.html", "search", 400, error=str(exc),
                     **_search_ctx(container, params))
    done, error, code = data.export(container, current.principal, _ctx(request), query,
                                    format)
    if done is None:
        return _page(request, current, "search.html", "search", code, error=error,
                     **_search_ctx(container, params))
    return _download(done.body, done.media_type, done.filename)


@router.get("/alerts")
def alerts_page(request: Request, container: ContainerDep, status: str = "open",
                severity: str = "", rule: str = "", actor: str = "",
                sort: str = "severity") -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    if status not in (*data.ALERT_STATUSES, "all"):
        status = "open"
    outcome = data.browse_alerts(container, current.principal, _ctx(request),
                                 status=None if status == "all" else status,
                                 severity=severity or None, rule=rule or None,
                                 actor=actor or None, sort=sort)
    return _alerts_page(request, current, container, outcome, status=status,
                        severity=severity, rule=rule, actor=actor, sort=sort)


def _alerts_page(request: Request, current: ConsoleSession, container: Container, outcome: data.AlertsOutcome,
                 code: int | None = None, **form: str) -> HTMLResponse:
    from monitor.alerts import SEVERITIES

    rules = [r.id for r in container.audit.rules]
    counts: dict[str, int] = {}
    for row in outcome.rows:
        severity = str(row["severity"])
        counts[severity] = counts.get(severity, 0) + 1
    keep = {k: v for k, v in form.items() if v and k != "status"}
    return _page(request, current, "alerts.html", "alerts", code or outcome.status,
                 alerts=outcome.rows, statuses=(*data.ALERT_STATUSES, "all"),
                 severities=SEVERITIES, rules=rules, sorts=data.ALERT_SORTS,
                 by_severity=counts, keep=urlencode(keep), error=outcome.error, **form)


@router.post("/alerts/{alert_id}")
async def alert_update(alert_id: str, request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    form = await request.form()
    if not tokens_match(str(form.get("csrf", "")), current.csrf):
        return _alerts_page(request, current, container, data.AlertsOutcome(
            error="The form's security token did not match; reload the page."), 403,
            status="open", severity="", rule="", actor="", sort="severity")
    status = str(form.get("status", ""))
    note = str(form.get("note", "")).strip() or None
    error = data.update_alert(container, current.principal, _ctx(request), alert_id,
                              status=status, note=note)
    if error:
        outcome = data.browse_alerts(container, current.principal, _ctx(request),
                                     status="open", severity=None, rule=None, actor=None,
                                     sort="severity")
        return _alerts_page(request, current, container,
                            data.AlertsOutcome(rows=outcome.rows, error=error), 400,
                            status="open", severity="", rule="", actor="", sort="severity")
    return _redirect(f"{PREFIX}/alerts?status={status}&done=alert+{alert_id}+{status}")


@router.get("/report")
def report_page(request: Request, container: ContainerDep, month: str = "",
                format: str = "html") -> Response:
    """The monthly report (``?month=2026-11``; ``format=pdf`` where Chromium exists),
    self-contained, recorded as ``audit_report``."""
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    if not month:
        return _page(request, current, "report_pick.html", "report",
                     month=data.last_month(container.settings.tz))
    html, error, code = data.report(container, current.principal, _ctx(request), month,
                                    pdf=format == "pdf")
    if error or html is None:
        return _page(request, current, "report_pick.html", "report", code, error=error,
                     month=month)
    if isinstance(html, bytes):
        return _download(html, "application/pdf", f"quanguard-report-{month}.pdf")
    # The report page carries its own inline styles (it is a standalone document).
    headers = {**_HEADERS, "Content-Security-Policy": "default-src 'none'; "
               "style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
               "base-uri 'none'; form-action 'none'"}
    return HTMLResponse(html, headers=headers)


@router.get("/status")
def status_page(request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    sections, error = data.trail_status(container, current.principal, _ctx(request))
    return _page(request, current, "status.html", "status", sections=sections, error=error)


