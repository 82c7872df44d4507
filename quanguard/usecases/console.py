"""Console use cases: signing in. Signing in to the console is an access too, so each
attempt leaves one ``login`` event (labelled ``channel: console``).

The console admits the roles of ``quanguard.console.sessions.CONSOLE_ROLES``; the others
use the HTTP API or the CLI. A refused sign-in is a ``deny`` event written by the gate's
recorder in its own transaction, an admitted one is recorded in one unit of work. A
failure to write either fails the sign-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.events import EventDecision
from quanguard.auth import Principal, anonymous, key_fingerprint
from quanguard.console.sessions import CONSOLE_ROLES
from quanguard.errors import Forbidden
from quanguard.gate import RequestContext, origin, record_denial

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = ["refuse_sign_in", "sign_in"]

def sign_in(container: Container, principal: Principal, ctx: RequestContext) -> None:
    """Admit an authenticated ``principal`` to the console: a console role is recorded as
    allowed; another role is refused (recorded with reason ``role``, :class:`Forbidden`)."""
    if principal.role not in CONSOLE_ROLES:
        refuse_sign_in(container, principal, ctx, reason="role")
        raise Forbidden(f"role {principal.role!r} may not use the console")
    with container.unit_of_work() as session:
        container.audit.record(session, actor=principal, action="login",
                               decision=EventDecision("allow"), outcome="success",
                               **origin(ctx), labels={"channel": "console"})


def refuse_sign_in(container: Container, principal: Principal | None, ctx: RequestContext, *,
                  reason: str | None, key: str | None = None, suppressed: int = 0) -> int:
    """Record a refused sign-in; returns the event's seq. ``principal`` is None for a key
    that did not authenticate: the actor is then ``anonymous``, with the fingerprint of
    ``key`` (never the key) to tell attempts apart. ``suppressed``: how many earlier
    attempts of the same source this event also stands for (throttled, see
    ``quanguard.api.recording``)."""
    labels = {"channel": "console"}
    if reason:
        labels["reason"] = reason[:200]
    if suppressed:
        labels["suppressed"] = str(suppressed)
    if principal is None and key:
        labels["key_fingerprint"] = key_fingerprint(key)
    return record_denial(container, principal or anonymous(), "login", ctx,
                         reason=reason[:200] if reason else None, labels=labels)
