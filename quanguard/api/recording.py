"""Every ``/v1`` request leaves exactly one audit event (ARCHITECTURE.md, "Fail closed").

The request middleware tracks each ``/v1`` request (:func:`quanguard.gate.reset_recorded`).
An event a use case records for it — or the gate's denial — counts once its transaction
commits. When the response status is known and no event was committed for the request,
:class:`RequestRecorder` writes one generic event *before* the response leaves:

=========  ==========================================================================
action     the route's: ``http.<method>.<route template>``, e.g.
           ``http.get./v1/exchange/datasets/{name}`` (``http.get.unmatched`` when no
           route matched)
actor      the authenticated principal (id, role, org, ``labels.key_name``) — also when
           the request was refused before the route read the key (malformed body,
           unknown path); without a valid key ``anonymous``, with
           ``labels.key_fingerprint``: a 12-hex SHA-256 prefix of the presented key
           (never the key; it matches the stored key hash of a revoked key)
dataset    the ``{name}`` path parameter, when the route has one
effect     by status — 2xx/3xx ``allow`` (outcome success); 401, 403, 429 ``deny``
           (refused); any other 4xx or 5xx ``error`` (could not be served: bad input,
           an unknown name, a server failure); outcome failure for both
labels     ``http_method``, ``http_route``, ``http_status``, the other path parameters
=========  ==========================================================================

Events of the anonymous actor are throttled per source address: at most one a minute;
the next one after the minute carries ``labels.suppressed`` — how many attempts from that
source it stands for — and the metric ``quanguard_audit_anonymous_suppressed_total`` counts
them as they happen, so a key-guessing run cannot flood the trail and nothing is hidden.

If the event cannot be written the response is replaced by 503: no access without its
record. Not recorded here: ``/healthz`` and ``/metrics`` (probes, no principal), FastAPI's
schema pages, and the console (its pages record sign-ins and call the same use cases,
which record their own events).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter
from starlette.types import Scope

from monitor.events import EventDecision
from quanguard.auth import Principal, anonymous, authenticate, key_fingerprint
from quanguard.errors import Unauthenticated
from quanguard.usecases.audit import with_retry

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = ["AnonymousThrottle", "RequestRecorder", "effect_for", "recorded_path", "route_action"]

_SAFE = re.compile(r"[\w.:\-]{1,64}", re.ASCII)


def recorded_path(path: str) -> bool:
    """The paths whose every request leaves an event: the API, ``/v1`` and below."""
    return path == "/v1" or path.startswith("/v1/")


def route_action(method: str, template: str) -> str:
    """The audit action of a request that no use case names."""
    return f"http.{method.lower()}.{template}"


def effect_for(status: int) -> tuple[str, str]:
    """(effect, outcome) of a response status: served, refused, or could not be served."""
    if status < 400:
        return "allow", "success"
    if status in (401, 403, 429):
        return "deny", "failure"
    return "error", "failure"


class AnonymousThrottle:
    """One anonymous event per source address per ``window`` seconds."""

    def __init__(self, window: float = 60.0) -> None:
        self.window = window
        self._seen: dict[str, list[float]] = {}  # source -> [window start, suppressed]
        self._lock = threading.Lock()

    def admit(self, source: str) -> int | None:
        """The number of attempts suppressed since the last event when one may be written
        now; None when this attempt is folded into the next one."""
        now = time.monotonic()
        with self._lock:
            entry = self._seen.get(source)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
                return None
            suppressed = int(entry[1]) if entry is not None else 0
            self._seen[source] = [now, 0]
            if len(self._seen) > 10_000:  # forget quiet sources
                for key in [k for k, v in self._seen.items() if now - v[0] >= self.window and not v[1]]:
                    del self._seen[key]
            return suppressed


def _presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            text: str = value.decode("latin-1").strip()
            scheme, _, rest = text.partition(" ")
            return rest.strip() if scheme.lower() == "bearer" and rest.strip() else text
    return None


def _param(value: Any) -> str:
    text = str(value)
    if _SAFE.fullmatch(text):
        return text
    # free-form values (a file name, a typo with personal data) are not kept in labels
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


class RequestRecorder:
    """Writes the generic event of a ``/v1`` request that left none (one per container)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.throttle = AnonymousThrottle()
        self.m_suppressed = Counter(
            "quanguard_audit_anonymous_suppressed_total",
            "Requests without a valid key folded into the next anonymous event of their source",
            registry=container.metrics.registry,
        )

    @classmethod
    def of(cls, container: Container) -> RequestRecorder:
        return container.shared("_request_recorder", lambda: cls(container))

    def _holder(self, key: str) -> Principal | None:
        try:
            with self.container.read_session() as session:
                return authenticate(session, key)
        except Unauthenticated:
            return None

    def record(self, scope: Scope, status: int) -> int | None:
        """Commit the request's event; returns its seq (None when throttled)."""
        state = scope.get("state") or {}
        principal = state.get("principal")
        method = str(scope.get("method", "GET"))
        template = getattr(scope.get("route"), "path", None) or "unmatched"
        effect, outcome = effect_for(status)
        labels: dict[str, str] = {"http_method": method, "http_route": template,
                                  "http_status": str(status)}
        client = scope.get("client")
        source_ip = client[0] if client else None
        reason = None
        key = _presented_key(scope)
        if not isinstance(principal, Principal) and key and status not in (401, 429):
            # refused before the route looked at the key (a malformed body, an unknown
            # path, a body too large): the holder of a valid key is still named
            principal = self._holder(key)
        if not isinstance(principal, Principal):
            admitted = self.throttle.admit(source_ip or "unknown")
            if admitted is None:
                self.m_suppressed.inc()
                return None
            if admitted:
                labels["suppressed"] = str(admitted)
            if key:
                labels["key_fingerprint"] = key_fingerprint(key)
            if status == 401:
                reason = "API key refused" if key else "no API key"
            principal = anonymous()
        if template == "unmatched":
            reason = f"no route for {method} {str(scope.get('path', ''))[:200]}"
        params = dict(scope.get("path_params") or {})
        dataset = params.pop("name", None)
        for name, value in params.items():
            labels[f"param_{name}"] = _param(value)
        actor = principal

        def write() -> int:
            with self.container.unit_of_work() as session:
                return int(self.container.audit.record(
                    session, actor=actor, action=route_action(method, template),
                    dataset=str(dataset) if dataset is not None else None,
                    decision=EventDecision(effect), outcome=outcome, source_ip=source_ip,
                    request_id=state.get("request_id"), reason=reason, labels=labels,
                ))

        # a busy SQLite file is waited for (the work the event records is already done)
        return with_retry(write)
