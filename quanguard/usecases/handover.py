"""Hand the audit trail over to another crypto suite (``quanguard audit handover``).

The trail's final checkpoint is signed with the trail's own key and names the successor
suite (``handover``); it seals the trail, so nothing is appended after it, and both the
old trail (up to that checkpoint) and the new one verify on their own. Steps, in one
transaction: 1. the ``audit_handover`` event is appended (who, to which suite); 2. the
final checkpoint is signed over the head that includes it and stored as exported; 3.
the trail is marked sealed. After the commit the checkpoint is written to ``export``.

Run it under the suite the trail was made with (``QUANGUARD_CRYPTO=intl``), then start
the service under the new suite on a new audit database: the sealed trail refuses every
append, so events are never mixed into it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gmcrypto import CryptoSuiteError, get_suite
from monitor.checkpoint import Checkpoint
from monitor.events import utc_now
from quanguard.errors import Conflict, InvalidInput
from quanguard.gate import RequestContext, authorize

if TYPE_CHECKING:
    from quanguard.auth import Principal
    from quanguard.container import Container

__all__ = ["handover"]


def handover(container: Container, principal: Principal, to: str, export: Path,
             ctx: RequestContext | None = None) -> Checkpoint:
    """Seal the trail with a signed final checkpoint naming ``to``; audited.

    Raises Forbidden (recorded by the gate) unless policy allows ``key_admin``;
    InvalidInput for an unknown suite or the trail's own; Conflict when already sealed."""
    decision = authorize(container, principal, "key_admin", None, ctx,
                         audit_action="audit_handover")
    try:
        successor = get_suite(to)
    except CryptoSuiteError as exc:
        raise InvalidInput(str(exc)) from exc
    audit = container.audit
    if successor.name == audit.store.suite.name:
        raise InvalidInput(f"the trail already runs crypto suite '{successor.name}'; "
                           f"hand over to the other one (intl or gm)")
    export = Path(export)
    if export.exists():
        raise Conflict(f"{export} exists; the final checkpoint is never overwritten")
    now = utc_now()
    with container.session() as session, session.begin():
        _suite, sealed, successor_name = audit.store.trail_suite(session)
        if sealed is not None:
            raise Conflict(f"the trail was already handed over to '{successor_name}'")
        audit.record(
            session, actor=principal, action="audit_handover", decision=decision,
            source_ip=ctx.source_ip if ctx else None,
            request_id=ctx.request_id if ctx else None,
            labels={"from_suite": audit.store.suite.name, "to_suite": successor.name},
        )
        session.flush()
        cp = audit.trail.checkpoint(session, now=now, handover=successor.name)
        stored = audit.trail.latest(session)
        assert stored is not None
        audit.trail.mark_exported(session, stored.id, now=now)
    export.write_text(cp.to_json() + "\n", encoding="utf-8")
    return cp
