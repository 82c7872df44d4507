"""Issuing and revoking API keys, each recorded in the audit trail."""

from __future__ import annotations

from datetime import datetime

from quanguard.auth import IssuedKey, KeyInfo, Principal, create_key, list_keys, revoke_key
from quanguard.container import Container
from quanguard.models import ServiceState

__all__ = ["bootstrap_admin", "issue_key", "keys_overview", "revoke"]

_BOOTSTRAP = "bootstrap_admin_issued"


def _record(container: Container, session: object, actor: Principal, action: str, subject: Principal) -> None:
    try:
        audit = container.audit
    except ImportError:  # audit trail not wired in this build
        return
    audit.record(
        session,
        actor=actor,
        action=action,
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
) -> IssuedKey:
    with container.session() as session, session.begin():
        issued = create_key(session, role=role, org=org, name=name, expires_at=expires_at, created_by=actor.name)
        _record(container, session, actor, "key_create", issued.principal)
    return issued


def revoke(container: Container, actor: Principal, name: str) -> Principal:
    with container.session() as session, session.begin():
        subject = revoke_key(session, name)
        _record(container, session, actor, "key_revoke", subject)
    return subject


def keys_overview(container: Container) -> list[KeyInfo]:
    with container.session() as session:
        return list_keys(session)


def bootstrap_admin(container: Container, actor: Principal) -> IssuedKey | None:
    """On the first start only: issue an admin key and remember that it was issued."""
    with container.session() as session, session.begin():
        if session.get(ServiceState, _BOOTSTRAP) is not None:
            return None
        issued = create_key(session, role="admin", org="市大数据局", name="bootstrap-admin", created_by="bootstrap")
        session.add(ServiceState(key=_BOOTSTRAP, value=issued.principal.id))
        _record(container, session, actor, "key_create", issued.principal)
    return issued
