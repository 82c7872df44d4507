"""FastAPI dependencies: the container, the request context, the caller and role checks.

Routes declare who may call them with ``Depends(require_roles(...))``; the returned
dependency carries ``.roles`` so the authorization-matrix test reads it from the router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from quanguard.api.recording import route_action
from quanguard.auth import ROLES, Principal, authenticate
from quanguard.container import Container
from quanguard.errors import Forbidden, Unauthenticated
from quanguard.gate import RequestContext, record_denial
from quanguard.ratelimit import limiter

__all__ = [
    "ContainerDep",
    "ContextDep",
    "PrincipalDep",
    "RequestContext",
    "get_container",
    "get_context",
    "get_principal",
    "request_action",
    "require_roles",
]


def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


def get_context(request: Request) -> RequestContext:
    rid = request.scope.get("state", {}).get("request_id") or "-"
    client = request.client.host if request.client else None
    return RequestContext(request_id=rid, source_ip=client)


ContainerDep = Annotated[Container, Depends(get_container)]
ContextDep = Annotated[RequestContext, Depends(get_context)]


def bearer_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("malformed Authorization header: use 'Bearer <key>'")
        return value.strip()
    return None


def get_principal(request: Request, container: ContainerDep) -> Principal:
    """The caller, from ``Authorization: Bearer`` (or a console session set by the console)."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    source = request.client.host if request.client else "unknown"
    limits = limiter(container)
    try:
        with container.read_session() as session:
            limits.check(source, session)  # one read; a successful authentication writes nothing
            principal = authenticate(session, bearer_key(request))
    except Unauthenticated:
        limits.fail(source)
        container.metrics.auth_failures.inc()
        raise
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def request_action(request: Request) -> str:
    route = request.scope.get("route")
    template = getattr(route, "path", None) or "unmatched"
    return route_action(request.method, template)


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only ``roles``; 403 otherwise, recorded by the gate as a
    ``deny`` event for the route's action (``audit search --effect deny`` finds it)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    allowed = frozenset(roles)

    def dependency(request: Request, principal: PrincipalDep, container: ContainerDep) -> Principal:
        if principal.role not in allowed:
            reason = f"role {principal.role!r} may not call {request.method} {request.url.path}"
            route = request.scope.get("route")
            record_denial(
                container, principal, request_action(request), get_context(request),
                reason=f"{reason} (allowed: {', '.join(sorted(allowed))})",
                dataset=_dataset(request),
                labels={"gate": "role", "http_method": request.method,
                        "http_route": getattr(route, "path", None) or "unmatched",
                        "http_status": "403"},
            )
            raise Forbidden(reason, allowed_roles=sorted(allowed))
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]
    return dependency


def _dataset(request: Request) -> str | None:
    params = request.scope.get("path_params") or {}
    value = params.get("name") or params.get("dataset")
    return str(value) if value is not None else None
