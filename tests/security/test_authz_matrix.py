"""Every route × every role (and no key, a revoked key, a malformed key) against a table,
and every ``/v1`` request leaves exactly one audit event (issue 11).

The table below is the reviewed statement of who may call what. It is keyed by
(method, path template) as FastAPI registers them; a route that is not in the table fails
``test_every_route_is_in_the_table`` with the line to add. For each route and caller:

* no key, a revoked key, a malformed key → 401 (before any body or parameter is looked at);
* a role not in the entry → 403 from the role gate (the error names ``allowed_roles``);
* a role in the entry → neither 401 nor a role-gate 403 (a *policy* 403 — the graded policy
  saying no for this resource — is the policy's business and is allowed), and never 5xx.

And for every ``/v1`` request of the matrix, the trail holds exactly one event with the
request's id: actor ``anonymous`` (with the key's fingerprint) and effect ``deny`` for a
401; effect ``deny`` for a 403; outcome ``success`` and effect ``allow`` (or
``approval_required``: a queued job) for 2xx; outcome ``failure`` and never ``deny`` for
any other 4xx/5xx (effect ``error``, or the use case's recorded decision). A failure
injected into every route (``test_server_errors_are_recorded``) proves the 500 path.
Non-``/v1`` routes (health, metrics, console pages) leave no generic event.

Requests carry minimal "valid-ish" parameters: dummy path values, required query values,
an empty JSON object as body. The role gate runs before body validation, so an allowed
role typically sees 400/404/422, a forbidden one 403.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from quanguard.api.app import create_app, route_modules
from quanguard.api.deps import get_context, get_principal
from quanguard.api.recording import recorded_path
from quanguard.auth import KEY_ROLES, create_key, key_fingerprint, revoke_key
from quanguard.container import Container, build_container
from tests.conftest import make_settings

ROLES = KEY_ROLES  # the roles an API key can carry (the CLI's ``operator`` cannot)
ALL = frozenset(ROLES)
PUBLIC = "public"
# Console pages: no API key at all; without a console session they redirect to the sign-in page.
SESSION = "console session"
# FastAPI's own pages are public (the schema holds no data).
FRAMEWORK_PUBLIC = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")


def roles(*names: str) -> frozenset[str]:
    return frozenset(names)


# (method, path) -> PUBLIC or the roles that pass the role gate.
EXPECTED: dict[tuple[str, str], str | frozenset[str]] = {
    # service
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/v1/whoami"): ALL,
    ("GET", "/v1/schemas/event"): ALL,
    # policy (issue 2)
    ("GET", "/v1/policy"): ALL,
    ("POST", "/v1/policy/decide"): roles("admin", "officer", "manager", "reporter"),
    ("POST", "/v1/policy/reload"): roles("officer"),
    # scan and inventory (issue 4); providers see only their org's assets (tenancy below)
    ("POST", "/v1/scan"): roles("officer", "manager", "provider", "admin"),
    ("GET", "/v1/assets"): ALL,
    ("GET", "/v1/assets/{asset_id}"): ALL,
    # audit trail and alerts (issue 3); issue 3 names auditors and managers as searchers,
    # officers (compliance) were added deliberately by the monitor engineer
    ("POST", "/v1/events"): roles("reporter"),
    ("POST", "/v1/events/batch"): roles("reporter"),
    ("GET", "/v1/audit/search"): roles("auditor", "manager", "officer"),
    ("GET", "/v1/audit/status"): roles("auditor", "manager", "officer", "admin"),
    ("POST", "/v1/audit/checkpoint"): roles("auditor", "officer", "admin"),
    ("GET", "/v1/audit/proof/{seq}"): roles("auditor", "manager", "officer", "admin"),
    ("GET", "/v1/audit/events/{seq}"): roles("auditor", "manager", "officer"),
    ("GET", "/v1/audit/consistency"): roles("auditor", "manager", "officer", "admin"),
    ("GET", "/v1/alerts"): roles("auditor", "manager", "officer", "admin"),
    ("PATCH", "/v1/alerts/{alert_id}"): roles("auditor", "manager", "officer", "admin"),
    # masking (issue 5): every role passes the gate, the graded policy decides per profile
    ("POST", "/v1/mask"): ALL,
    ("POST", "/v1/unmask"): ALL,
    # watermark (issue 6)
    ("POST", "/v1/watermark/embed"): roles("manager", "provider"),
    ("POST", "/v1/watermark/detect"): roles("manager", "auditor", "officer", "provider"),
    # exchange (issue 7): catalog metadata for everyone, rows for no one; tenancy below
    ("POST", "/v1/exchange/datasets"): roles("provider"),
    ("GET", "/v1/exchange/datasets"): ALL,
    ("GET", "/v1/exchange/datasets/{name}"): ALL,
    ("GET", "/v1/exchange/datasets/{name}/budget"): roles("consumer", "manager", "officer"),
    ("POST", "/v1/exchange/datasets/{name}/consent"): roles("provider"),
    ("GET", "/v1/exchange/datasets/{name}/psi"): roles("consumer", "manager", "officer"),
    ("POST", "/v1/exchange/aggregate"): roles("consumer", "manager", "officer"),
    ("POST", "/v1/exchange/psi"): roles("consumer", "manager", "officer"),
    ("POST", "/v1/exchange/extract"): roles("consumer", "manager", "officer"),
    ("GET", "/v1/exchange/jobs"): ALL,
    ("GET", "/v1/exchange/jobs/{job_id}"): ALL,
    # an officer decides the jobs whose rule names it (``approval: officer``); who decides
    # which job is the exchange's check (tests/security/test_seams_approval_binding.py)
    ("POST", "/v1/exchange/jobs/{job_id}/approve"): roles("manager", "officer"),
    ("POST", "/v1/exchange/jobs/{job_id}/reject"): roles("manager", "officer"),
    ("GET", "/v1/exchange/receipt-key"): ALL,
    # console (issue 3): sign-in pages are public, the rest needs a console session
    ("GET", "/console"): SESSION,
    ("GET", "/console/"): SESSION,
    ("GET", "/console/static/console.css"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("POST", "/console/logout"): PUBLIC,
    ("GET", "/console/search"): SESSION,
    ("GET", "/console/alerts"): SESSION,
    ("POST", "/console/alerts/{alert_id}"): SESSION,
    ("GET", "/console/status"): SESSION,
    ("GET", "/console/static/favicon.svg"): PUBLIC,
    ("GET", "/console/events/{seq}"): SESSION,
    ("GET", "/console/events/{seq}/proof"): SESSION,
    ("GET", "/console/actors/{actor_id}"): SESSION,
    ("GET", "/console/export"): SESSION,
    ("GET", "/console/report"): SESSION,
}


def _all_routes() -> list[APIRoute]:
    found = []
    for module in route_modules():
        found += [r for r in module.router.routes if isinstance(r, APIRoute)]
    return found


ROUTES = [(method, r.path, r) for r in _all_routes() for method in sorted(r.methods or ())]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


def _dependency_calls(dependant: Any) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _dependency_calls(dep)


def _gate(route: APIRoute) -> tuple[frozenset[str] | None, bool]:
    """(roles of a require_roles dependency or None, whether the route authenticates)."""
    gate = None
    authenticated = False
    for call in _dependency_calls(route.dependant):
        if getattr(call, "roles", None) is not None:
            gate = frozenset(call.roles)
        if call is get_principal:
            authenticated = True
    return gate, authenticated


def test_every_route_is_in_the_table() -> None:
    missing = [f"    ({m!r}, {p!r}): <roles>," for m, p, _ in ROUTES if (m, p) not in EXPECTED]
    assert not missing, (
        "routes without an entry in the authorization table of tests/security/test_authz_matrix.py;"
        " add who may call them:\n" + "\n".join(missing)
    )


def test_table_has_no_stale_entries() -> None:
    served = {(m, p) for m, p, _ in ROUTES}
    stale = sorted(set(EXPECTED) - served)
    assert not stale, f"entries for routes that no longer exist (remove them): {stale}"


@pytest.mark.parametrize(("method", "path", "route"), ROUTES, ids=ROUTE_IDS)
def test_table_agrees_with_the_route_declaration(method: str, path: str, route: APIRoute) -> None:
    expected = EXPECTED.get((method, path))
    if expected is None:
        pytest.fail(f"{method} {path} is missing from EXPECTED (see test_every_route_is_in_the_table)")
    gate, authenticated = _gate(route)
    if expected in (PUBLIC, SESSION):
        assert gate is None and not authenticated, f"{method} {path} is listed {expected} but takes an API key"
    elif gate is not None:
        assert gate == expected, f"{method} {path}: require_roles{sorted(gate)} but the table says {sorted(expected)}"
    else:
        assert authenticated, f"{method} {path} is listed for {sorted(expected)} but does not authenticate"


# --- the live matrix -------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, str], Container]]:
    from fastapi.testclient import TestClient

    tmp = tmp_path_factory.mktemp("authz")
    # The failed-auth limiter must not turn the matrix's deliberate 401s into 429s.
    container = build_container(make_settings(tmp, auth_fail_limit=1_000_000))
    keys: dict[str, str] = {}
    with container.session() as s, s.begin():
        for role in ROLES:
            keys[role] = create_key(s, role=role, org="市大数据局", name=f"{role}-{uuid.uuid4().hex[:6]}").key
        revoked = create_key(s, role="admin", org="市大数据局", name="revoked-admin")
        keys["<revoked>"] = revoked.key
    with container.session() as s, s.begin():
        revoke_key(s, "revoked-admin")
    keys["<malformed>"] = "qg_00000000_" + "A" * 43
    container.audit.set_redactor(lambda text: text)  # the records are the subject here
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        # every anonymous attempt gets its own event here (the throttle has its own test)
        assert container._request_recorder is not None
        container._request_recorder.throttle.window = 0.0
        yield client, keys, container
    container.close()


def _head(container: Container) -> int:
    with container.session() as session:
        return int(container.audit.store.head(session).seq)


def _events_of(container: Container, after: int, rid: str) -> list[dict[str, Any]]:
    with container.session() as session:
        docs = [json.loads(e.body) for e in container.audit.store.iter_range(session, after + 1)]
    return [d for d in docs if d.get("trace", {}).get("id") == rid]


def _event_problem(doc: dict[str, Any], status: int, caller: str, keys: dict[str, str]) -> str | None:
    """What is wrong with the one event of a request answered ``status`` (None if right)."""
    effect = doc.get("audit", {}).get("effect")
    outcome = doc.get("event", {}).get("outcome")
    labels = doc.get("labels", {})
    if status == 401:
        if doc["user"]["id"] != "anonymous" or effect != "deny":
            return f"401 must be recorded as anonymous/deny, got {doc['user']['id']}/{effect}"
        if caller != "<none>" and labels.get("key_fingerprint") != key_fingerprint(keys[caller]):
            return "401 with a key must carry the key's fingerprint"
        return None
    if status in (403, 429):
        return None if effect == "deny" and outcome == "failure" else f"{status} recorded {effect}/{outcome}"
    if status < 400:
        ok = effect in ("allow", "approval_required") and outcome == "success"
        return None if ok else f"{status} recorded {effect}/{outcome}"
    ok = outcome == "failure" and effect != "deny"
    return None if ok else f"{status} recorded {effect}/{outcome}"


def _dummy(annotation: Any) -> Any:
    text = str(annotation)
    if annotation is int or "int" in text:
        return 1
    if annotation is float or "float" in text:
        return 1.0
    if annotation is bool or "bool" in text:
        return "true"
    return "x"


def _request_args(route: APIRoute, path: str) -> tuple[str, dict[str, Any]]:
    url = path
    for param in route.dependant.path_params:
        url = url.replace("{" + param.name + "}", str(_dummy(param.field_info.annotation)))
        url = url.replace("{" + param.name + ":path}", "x")
    params = {
        p.alias: _dummy(p.field_info.annotation)
        for p in route.dependant.query_params
        if p.field_info.is_required()
    }
    kwargs: dict[str, Any] = {"params": params}
    body = route.body_field
    if body is not None:
        media = getattr(body.field_info, "media_type", "application/json")
        if "form" in media:
            kwargs["files"] = {"file": ("probe.csv", b"a,b\n1,2\n", "text/csv")}
        else:
            kwargs["json"] = {}
    return url, kwargs


CALLERS = [*ROLES, "<none>", "<revoked>", "<malformed>"]


@pytest.mark.parametrize(("method", "path", "route"), ROUTES, ids=ROUTE_IDS)
def test_matrix(world: tuple[TestClient, dict[str, str], Container], method: str, path: str, route: APIRoute) -> None:
    client, keys, container = world
    expected = EXPECTED.get((method, path))
    if expected is None:
        pytest.fail(f"{method} {path} is missing from EXPECTED (see test_every_route_is_in_the_table)")
    url, kwargs = _request_args(route, path)
    problems = []
    for caller in CALLERS:
        rid = uuid.uuid4().hex
        headers = {"X-Request-ID": rid}
        if caller != "<none>":
            headers["Authorization"] = f"Bearer {keys[caller]}"
        before = _head(container)
        r = client.request(method, url, headers=headers, follow_redirects=False, **kwargs)
        status = r.status_code
        where = f"{method} {url} as {caller}: {status} {r.text[:160]}"
        recorded = _events_of(container, before, rid)
        if recorded_path(path):
            if len(recorded) != 1:
                actions = [d["event"]["action"] for d in recorded]
                problems.append(f"expected exactly one event, found {len(recorded)} {actions}: {where}")
            else:
                wrong = _event_problem(recorded[0], status, caller, keys)
                if wrong:
                    problems.append(f"{wrong}: {where}")
        elif expected == PUBLIC and path in ("/healthz", "/metrics") and recorded:
            problems.append(f"probes are not recorded: {where}")
        if status >= 500:
            problems.append(f"server error: {where}")
            continue
        is_role_gate = status == 403 and "allowed_roles" in r.text
        if expected == SESSION:
            if status != 303 or not r.headers.get("location", "").endswith("/console/login"):
                problems.append(f"expected a redirect to the sign-in page without a session: {where}")
        elif expected == PUBLIC:
            if status in (401, 403):
                problems.append(f"public route refused: {where}")
        elif caller.startswith("<"):
            if status != 401:
                problems.append(f"expected 401: {where}")
        elif caller in expected:
            if status == 401 or is_role_gate:
                problems.append(f"role {caller} should pass the gate: {where}")
        elif not (status == 403 and is_role_gate):
            problems.append(f"role {caller} should get the role gate's 403: {where}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", FRAMEWORK_PUBLIC)
def test_framework_pages_are_public(world: tuple[TestClient, dict[str, str], Container], path: str) -> None:
    client, _, _ = world
    r = client.get(path)
    assert r.status_code in (200, 404), r.text[:200]  # 404 when the app disables the page


def test_unauthenticated_error_never_echoes_the_key(world: tuple[TestClient, dict[str, str], Container]) -> None:
    client, keys, _ = world
    for caller in ("<revoked>", "<malformed>"):
        r = client.get("/v1/whoami", headers={"Authorization": f"Bearer {keys[caller]}"})
        assert r.status_code == 401 and keys[caller] not in r.text
        assert r.headers.get("www-authenticate") == "Bearer"



V1 = [(m, p, r) for m, p, r in ROUTES if recorded_path(p)]


@pytest.mark.parametrize(("method", "path", "route"), V1, ids=[f"{m} {p}" for m, p, _ in V1])
def test_server_errors_are_recorded(world: tuple[TestClient, dict[str, str], Container], method: str, path: str, route: APIRoute) -> None:
    """A failure inside the route (injected into the request context every /v1 route but
    whoami takes; whoami's principal dependency instead) is a 500 with one ``error`` event."""
    client, keys, container = world
    expected = EXPECTED[(method, path)]
    role = min(expected) if isinstance(expected, frozenset) else "admin"

    def broken() -> Any:
        raise RuntimeError("injected failure")

    uses_ctx = any(call is get_context for call in _dependency_calls(route.dependant))
    cast(FastAPI, client.app).dependency_overrides[get_context if uses_ctx else get_principal] = broken
    try:
        url, kwargs = _request_args(route, path)
        rid = uuid.uuid4().hex
        before = _head(container)
        r = client.request(method, url, headers={"X-Request-ID": rid, "Authorization": f"Bearer {keys[role]}"},
                           follow_redirects=False, **kwargs)
    finally:
        cast(FastAPI, client.app).dependency_overrides.clear()
    assert r.status_code == 500, r.text[:200]
    assert "injected failure" not in r.text
    (doc,) = _events_of(container, before, rid)
    assert doc["audit"]["effect"] == "error" and doc["event"]["outcome"] == "failure"
    assert doc["labels"]["http_status"] == "500"
    assert doc["event"]["action"] == f"http.{method.lower()}.{path}"
