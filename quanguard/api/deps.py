"""FastAPI dependencies: the container, the request context, the caller and role checks.

Routes declare who may call them with ``Depends(require_roles(...))``; the returned
dependency carries ``.roles`` so the authorization-matrix test reads it from the router.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from quanguard.auth import ROLES, Principal, authenticate
from quanguard.container import Container
from quanguard.errors import Forbidden, RateLimited, Unauthenticated

__all__ = [
    "ContainerDep",
    "ContextDep",
    "PrincipalDep",
    "RequestContext",
    "get_container",
    "get_context",
    "get_principal",
    "require_roles",
]


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    source_ip: str | None


def get_container(request: Request) -> Container:
    return request.app.state.container  # type: ignore[no-any-return]


def get_context(request: Request) -> RequestContext:
    rid = request.scope.get("state", {}).get("request_id") or "-"
    client = request.client.host if request.client else None
    return RequestContext(request_id=rid, source_ip=client)


ContainerDep = Annotated[Container, Depends(get_container)]
ContextDep = Annotated[RequestContext, Depends(get_context)]


class _FailureLimiter:
    """Counts failed authentications per source address over a sliding minute."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, source: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(source, deque())
        while hits and hits[0] < now - self.window:
            hits.popleft()
        return hits

    def check(self, source: str) -> None:
        with self._lock:
            if len(self._recent(source, time.monotonic())) >= self.limit:
                raise RateLimited("too many failed authentications from this address; wait a minute")

    def fail(self, source: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(source, now).append(now)
            if len(self._hits) > 10_000:  # forget idle sources
                for key in [k for k, v in self._hits.items() if not v]:
                    del self._hits[key]


def _limiter(container: Container) -> _FailureLimiter:
    with container.lock:
        limiter = getattr(container, "_auth_limiter", None)
        if limiter is None:
            limiter = _FailureLimiter(container.settings.auth_fail_limit)
            container._auth_limiter = limiter  # type: ignore[attr-defined]
        return limiter


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
    limiter = _limiter(container)
    limiter.check(source)
    try:
        key = bearer_key(request)
        with container.read_session() as session:
            principal = authenticate(session, key)
    except Unauthenticated:
        limiter.fail(source)
        container.metrics.auth_failures.inc()
        raise
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only ``roles``; 403 (recorded in the audit trail) otherwise."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}")
    allowed = frozenset(roles)

    def dependency(request: Request, principal: PrincipalDep, container: ContainerDep) -> Principal:
        if principal.role not in allowed:
            _record_denial(container, principal, request)
            raise Forbidden(
                f"role {principal.role!r} may not call {request.method} {request.url.path}",
                allowed_roles=sorted(allowed),
            )
        return principal

    dependency.roles = allowed  # type: ignore[attr-defined]
    return dependency


def _record_denial(container: Container, principal: Principal, request: Request) -> None:
    """Denied requests are part of the trail too (事中全留痕)."""
    try:
        audit = container.audit
    except ImportError:  # the audit trail is not wired in this build
        return
    ctx = get_context(request)
    with container.session() as session, session.begin():
        audit.record(
            session,
            actor=principal,
            action="access_denied",
            outcome="failure",
            source_ip=ctx.source_ip,
            request_id=ctx.request_id,
            labels={"route": request.url.path, "method": request.method, "reason": "role"},
        )
