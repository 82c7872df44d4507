"""The one gate: how every use case gets permission (ARCHITECTURE.md, "Fail closed").

``authorize(container, principal, action, resource, ctx)`` asks the policy engine and
returns the :class:`Decision` when its effect is one the caller accepts (``allow`` unless
told otherwise: the exchange also accepts ``approval_required``, which queues a job).
Any other answer is recorded in the audit trail *in its own transaction* — so the
denial survives the caller's rollback — and raised as :class:`Forbidden`.

No module decides or records a denial on its own, and no principal bypasses policy:
the local operator of the CLI is a role with explicit rules in ``policies/roles.yaml``.

The gate also remembers, per request, whether an event was written for it
(:func:`mark_recorded` / :func:`was_recorded`), so the HTTP layer can guarantee that
every request leaves exactly one event — allowed, denied or failed. The audit service
counts an event when its transaction commits (an event rolled back with its caller's
work does not count), through :func:`request_counter`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from quanguard.errors import Forbidden

if TYPE_CHECKING:  # imports for types only: the gate loads nothing at import time
    from quanguard.auth import Principal
    from quanguard.container import Container
    from quanguard.policy.model import Decision, Resource

__all__ = [
    "AuditOrigin",
    "RequestContext",
    "authorize",
    "mark_recorded",
    "origin",
    "record_denial",
    "request_counter",
    "reset_recorded",
    "stop_tracking",
    "tracking",
    "was_recorded",
]


@dataclass(frozen=True)
class RequestContext:
    """Where a call came from: the HTTP request id and client address (None from the CLI)."""

    request_id: str | None = None
    source_ip: str | None = None


class AuditOrigin(TypedDict):
    """Where an audit event's call came from, as ``AuditService.record`` takes it."""

    source_ip: str | None
    request_id: str | None


def origin(ctx: RequestContext | None) -> AuditOrigin:
    """The audit fields of ``ctx`` (both None without one): ``record(..., **origin(ctx))``."""
    return {"source_ip": ctx.source_ip if ctx else None, "request_id": ctx.request_id if ctx else None}


# The number of events written for the request being served in this context (None when
# no request is being tracked: CLI commands, background work).
_RECORDED: ContextVar[list[int] | None] = ContextVar("quanguard_request_events", default=None)


# The ASGI scope of the request being served: the router writes the matched route into
# it, whose declared status a use case's own success event carries as ``http_status``.
_SCOPE: ContextVar[MutableMapping[str, object] | None] = ContextVar("quanguard_request_scope", default=None)


def reset_recorded(scope: MutableMapping[str, object] | None = None) -> Token[list[int] | None]:
    """Start tracking a request (``scope``: its ASGI scope; None for a CLI command);
    returns a token for :func:`stop_tracking`."""
    _SCOPE.set(scope)
    return _RECORDED.set([0])


def success_status() -> str | None:
    """The status a successful answer of the current request's route has (None outside a
    request): the route's declared ``status_code``, 200 when it declares none."""
    scope = _SCOPE.get()
    if _RECORDED.get() is None or scope is None:
        return None
    return str(getattr(scope.get("route"), "status_code", None) or 200)


def stop_tracking(token: Token[list[int] | None]) -> None:
    """End the tracking started by :func:`reset_recorded`."""
    _RECORDED.reset(token)


def tracking() -> bool:
    """True while an HTTP request is being served in this context (a CLI command tracks
    its events with ``reset_recorded(None)``: no request, no HTTP status)."""
    return _RECORDED.get() is not None and _SCOPE.get() is not None


def request_counter() -> list[int] | None:
    """The event counter of the request being served (None outside a request).

    The audit service takes it when it appends an event and increments it when the
    event's transaction commits — possibly in another thread of the same request."""
    return _RECORDED.get()


def mark_recorded() -> None:
    """Note that an event was written for the current request."""
    holder = _RECORDED.get()
    if holder is not None:
        holder[0] += 1


def was_recorded() -> bool:
    """True when the request being served already left an event in the trail."""
    holder = _RECORDED.get()
    return bool(holder and holder[0])


def authorize(
    container: Container,
    principal: Principal,
    action: str,
    resource: Resource | None = None,
    ctx: RequestContext | None = None,
    *,
    accept: Collection[str] = ("allow",),
    audit_action: str | None = None,
    fields: Sequence[str] = (),
    rows: int | None = None,
    purpose: str | None = None,
    labels: Mapping[str, object] | None = None,
) -> Decision:
    """Decide ``action`` on ``resource`` for ``principal``; record and raise unless accepted.

    Returns the decision when its effect is in ``accept``. Otherwise one audit event
    (effect ``deny``, outcome ``failure``, the deciding rule and policy version, the
    reason) is committed and :class:`Forbidden` is raised. ``audit_action`` names the
    event when it differs from the policy action (``exchange.psi`` for ``psi``).
    """
    from quanguard.policy.model import Resource

    res = resource if resource is not None else Resource()
    decision = container.policy.decide(principal, action, res)
    if decision.effect in accept:
        return decision
    reason = decision.reason
    if decision.effect == "approval_required":
        reason = f"approval required ({decision.reason}); this action has no approval flow"
    record_denial(
        container, principal, audit_action or action, ctx,
        decision=decision, dataset=res.dataset, grade=res.grade, fields=fields, rows=rows,
        purpose=purpose or res.purpose, reason=reason, labels=labels,
    )
    what = f" on {res.dataset!r}" if res.dataset else ""
    raise Forbidden(
        f"policy does not allow {action}{what}: {reason}",
        rule_id=decision.rule_id, policy_version=decision.policy_version,
    )


def record_denial(
    container: Container,
    principal: Principal,
    action: str,
    ctx: RequestContext | None = None,
    *,
    decision: Decision | None = None,
    dataset: str | None = None,
    grade: str | None = None,
    fields: Sequence[str] = (),
    rows: int | None = None,
    purpose: str | None = None,
    reason: str | None = None,
    labels: Mapping[str, object] | None = None,
    error: BaseException | None = None,
) -> int:
    """Commit one ``deny`` event for a refused attempt; returns its seq.

    Written in a transaction of its own so that it stays when the caller's work is
    rolled back. A failure to write it propagates: no refusal goes unrecorded.

    With ``error`` (a rejected request: bad input, an unknown name, a conflict) the
    event's effect follows the error — ``deny`` for a refusal (401/403/429), ``error``
    for anything else — and, over HTTP, ``labels.http_status`` is the error's status
    (403 without ``error``: a refusal by policy or role).
    """
    from monitor.events import EventDecision
    from quanguard.errors import classify

    status = 403
    if error is not None:
        info = classify(error)
        status = info.status if info is not None else 500
    if tracking():
        labels = {"http_status": str(status), **(labels or {})}
    effect = EventDecision(
        "deny" if status in (401, 403, 429) else "error",
        getattr(decision, "rule_id", None),
        getattr(decision, "policy_version", None),
    )
    with container.unit_of_work() as session:
        return int(container.audit.record(
            session,
            actor=principal,
            action=action,
            dataset=dataset,
            fields=fields,
            grade=grade,
            rows=rows,
            purpose=purpose,
            decision=effect,
            outcome="failure",
            **origin(ctx),
            reason=reason or (getattr(decision, "reason", None) if decision else None),
            labels=labels,
        ))
