"""The console at ``/console``: server-rendered pages for the security team.

Sign in with an API key (auditors, managers, admins) -> a server-side session whose
random id is the only thing in the cookie. Pages: audit search (filters, per-day chart,
paging; every search is an audit event, through the same use case as
``GET /v1/audit/search``), alerts (acknowledge / close by POST forms with a CSRF token),
and trail status (last checkpoint, last verification, shipper lag). No JavaScript.

This module also starts and stops the Elasticsearch shipper with the service
(``on_startup`` / ``on_shutdown``; see ``quanguard.services.shipper``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quanguard.api.deps import ContainerDep, RequestContext, get_context
from quanguard.api.deps import _limiter as auth_failure_limiter  # one limiter per service
from quanguard.auth import authenticate
from quanguard.console import data
from quanguard.console.sessions import (
    CONSOLE_ROLES,
    COOKIE,
    LOGIN_COOKIE,
    ConsoleSession,
    get_store,
    key_still_valid,
    tokens_match,
)
from quanguard.console.views import (
    FILTER_FIELDS,
    SORTS,
    build_chart,
    hit_rows,
    page_urls,
    parse_search_form,
    templates,
)
from quanguard.errors import RateLimited, Unauthenticated

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


def on_startup(container: Any) -> None:
    from quanguard.services.shipper import start_es

    start_es(container)


def on_shutdown(container: Any) -> None:
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


def _session(request: Request, container: Any) -> ConsoleSession | None:
    store = get_store(container)
    sid = request.cookies.get(COOKIE)
    current = store.get(sid)
    if current is None:
        return None
    if not key_still_valid(container, current.principal):
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
        limiter.check(source)
    except RateLimited as exc:
        return _login_page(request, error=exc.message, code=429)
    try:
        with container.session() as session:
            principal = authenticate(session, key)
    except Unauthenticated as exc:
        limiter.fail(source)
        container.metrics.auth_failures.inc()
        data.record_login(container, None, ctx, ok=False, reason=exc.message)
        return _login_page(request, error=f"Sign-in failed: {exc.message}.", code=401)
    if principal.role not in CONSOLE_ROLES:
        data.record_login(container, principal, ctx, ok=False, reason="role")
        message = (f"Your key belongs to role '{principal.role}'. Only auditors, managers "
                   f"and administrators may use the console; use the HTTP API or the CLI "
                   f"for your own work.")
        return _render("denied.html", 403, message=message)
    data.record_login(container, principal, ctx, ok=True)
    sid, _ = get_store(container).create(principal)
    response = _redirect(f"{PREFIX}/search")
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=_secure(request),
                        path=PREFIX)
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


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

@router.get("/search")
def search_page(request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    tz = container.settings.tz
    params = dict(request.query_params)
    ctx: dict[str, Any] = {"form": params, "filter_fields": FILTER_FIELDS, "sorts": SORTS,
                           "effects": ("allow", "deny", "approval_required"), "tz": tz}
    if not request.query_params:
        return _page(request, current, "search.html", "search", **ctx)
    try:
        clean, query = parse_search_form(params, tz=tz)
    except ValueError as exc:
        return _page(request, current, "search.html", "search", 400, error=str(exc), **ctx)
    except data.QUERY_ERRORS as exc:
        return _page(request, current, "search.html", "search", 400, error=str(exc), **ctx)
    outcome = data.search(container, current.principal, _ctx(request), query)
    if outcome.error:
        return _page(request, current, "search.html", "search", outcome.status,
                     error=outcome.error, **ctx)
    result = outcome.result
    assert result is not None
    prev_url, next_url, pages = page_urls(f"{PREFIX}/search", clean, page=query.page,
                                          total=result.total)
    return _page(request, current, "search.html", "search", result=result,
                 backend=outcome.backend, hits=hit_rows(result.hits, tz=tz),
                 chart=build_chart(result.aggs.get("per_day", ())), page_no=query.page,
                 pages=pages, prev_url=prev_url, next_url=next_url,
                 first=query.offset + 1, last=query.offset + len(result.hits), **ctx)


@router.get("/alerts")
def alerts_page(request: Request, container: ContainerDep, status: str = "open") -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    if status not in data.ALERT_STATUSES:
        status = "open"
    outcome = data.list_alerts(container, current.principal, _ctx(request), status)
    return _page(request, current, "alerts.html", "alerts", outcome.status,
                 alerts=outcome.rows, status=status, statuses=data.ALERT_STATUSES,
                 error=outcome.error)


@router.post("/alerts/{alert_id}")
async def alert_update(alert_id: str, request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    form = await request.form()
    if not tokens_match(str(form.get("csrf", "")), current.csrf):
        return _page(request, current, "alerts.html", "alerts", 403, alerts=[], status="open",
                     statuses=data.ALERT_STATUSES,
                     error="The form's security token did not match; reload the page.")
    status = str(form.get("status", ""))
    note = str(form.get("note", "")).strip() or None
    error = data.update_alert(container, current.principal, _ctx(request), alert_id,
                              status=status, note=note)
    if error:
        outcome = data.list_alerts(container, current.principal, _ctx(request), "open")
        return _page(request, current, "alerts.html", "alerts", 400, alerts=outcome.rows,
                     status="open", statuses=data.ALERT_STATUSES, error=error)
    return _redirect(f"{PREFIX}/alerts?status={status}&done=alert+{alert_id}+{status}")


@router.get("/status")
def status_page(request: Request, container: ContainerDep) -> Response:
    current = _session(request, container)
    if current is None:
        return _redirect(f"{PREFIX}/login")
    sections, error = data.trail_status(container, current.principal, _ctx(request))
    return _page(request, current, "status.html", "status", sections=sections, error=error)


