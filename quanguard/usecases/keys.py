"""Issuing and revoking API keys: asked of the gate (action ``key_admin``), each recorded
in the audit trail (a refusal by the gate, a success here in the same transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import text

from quanguard.auth import IssuedKey, KeyInfo, Principal, create_key, list_keys, revoke_key
from quanguard.container import Container
from quanguard.gate import RequestContext, authorize
from quanguard.models import ServiceState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from quanguard.policy.model import Decision

__all__ = ["bootstrap_admin", "issue_key", "keys_overview", "revoke"]

_BOOTSTRAP = "bootstrap_admin_issued"


def _record(container: Container, session: Session, actor: Principal, action: str, subject: Principal,
            decision: Decision) -> None:
    container.audit.record(
        session,
        actor=actor,
        action=action,
        decision=decision,
        labels={"subject": subject.name, "subject_role": subject.role, "subject_org": subject.org},
    )


def issue_key(
    container: Container,
    actor: Principal,
    *,
    role: str,
    org: str,
    name: str,
    expires_at: datetime | None = None,
    ctx: RequestContext | None = None,
) -> IssuedKey:
    decision = authorize(container, actor, "key_admin", ctx=ctx, audit_action="key_create")
    with container.unit_of_work() as session:
        issued = create_key(session, role=role, org=org, name=name, expires_at=expires_at, created_by=actor.name,
                            suite=container.settings.suite)
        _record(container, session, actor, "key_create", issued.principal, decision)
    return issued


def revoke(container: Container, actor: Principal, name: str, *, ctx: RequestContext | None = None) -> Principal:
    decision = authorize(container, actor, "key_admin", ctx=ctx, audit_action="key_revoke")
    with container.unit_of_work() as session:
        subject = revoke_key(session, name)
        _record(container, session, actor, "key_revoke", subject, decision)
    return subject


def keys_overview(container: Container, actor: Principal) -> list[KeyInfo]:
    """The key holders (never the keys), for whoever may administer keys."""
    authorize(container, actor, "key_admin")
    with container.session() as session:
        return list_keys(session)


def bootstrap_admin(container: Container, actor: Principal) -> IssuedKey | None:
    """On the first start only: issue an admin key and remember that it was issued."""
    decision = authorize(container, actor, "key_admin", audit_action="key_create")
    with container.unit_of_work() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Several servers starting at once on one store: one issues the key, the others
            # wait here and then find it issued (SQLite's write lock does the same).
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext('quanguard.bootstrap'))"))
        if session.get(ServiceState, _BOOTSTRAP) is not None:
            return None
        issued = create_key(session, role="admin", org="市大数据局", name="bootstrap-admin", created_by="bootstrap",
                            suite=container.settings.suite)
        session.add(ServiceState(key=_BOOTSTRAP, value=issued.principal.id))
        _record(container, session, actor, "key_create", issued.principal, decision)
    return issued
