"""Console use cases: signing in. Signing in to the console is an access too, so each
attempt leaves one ``login`` event (labelled ``channel: console``).

Who may sign in is the policy's decision (action ``console_sign_in`` in
``policies/roles.yaml``), asked of the one gate like every other action; the roles it does
not admit use the HTTP API or the CLI. A refused sign-in is a ``deny`` event written by
the gate in its own transaction (the deciding rule, the policy version and its reason), an
admitted one is recorded in one unit of work with the admitting rule. A failure to write
either fails the sign-in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from quanguard.auth import Principal, anonymous, key_fingerprint
from quanguard.gate import RequestContext, authorize, origin, record_denial
from quanguard.policy.model import Resource

if TYPE_CHECKING:
    from quanguard.container import Container

__all__ = ["admitted_roles", "refuse_sign_in", "sign_in", "still_admitted"]

def sign_in(container: Container, principal: Principal, ctx: RequestContext) -> None:
    """Admit an authenticated ``principal`` to the console when the policy allows
    ``console_sign_in``: recorded as allowed; otherwise the gate records the refusal and
    raises :class:`~quanguard.errors.Forbidden`."""
    labels = {"channel": "console"}
    decision = authorize(container, principal, "console_sign_in", Resource(), ctx,
                         audit_action="login", labels=labels)
    with container.unit_of_work() as session:
        container.audit.record(session, actor=principal, action="login",
                               decision=decision, outcome="success",
                               **origin(ctx), labels=labels)


def still_admitted(container: Container, principal: Principal, ctx: RequestContext) -> None:
    """Ask the policy again for a signed-in session, on every console request: a session
    is the active policy's, not the one it signed in under. When a reload has stopped
    admitting the role, the gate records the refusal (a ``login`` ``deny`` labelled
    ``session: ended``, with the deciding rule and the new policy version) and raises
    :class:`~quanguard.errors.Forbidden`; the caller ends the key's sessions. An admitted
    request records nothing here (its page's own action is recorded)."""
    authorize(container, principal, "console_sign_in", Resource(), ctx,
              audit_action="login", labels={"channel": "console", "session": "ended"})


def admitted_roles(container: Container) -> list[str]:
    """The roles of API keys the active policy admits to the console (for the message a
    refused holder reads; the decision itself is :func:`sign_in`'s)."""
    from quanguard.auth import KEY_ROLES

    return [role for role in KEY_ROLES
            if container.policy.decide(Principal(id="-", name="-", role=role, org="-"),
                                       "console_sign_in", Resource()).effect == "allow"]


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
