"""Hand the audit trail over to another crypto suite (``quanguard audit handover``).

The trail's current generation gets a final checkpoint, signed with its own key, that
names the successor suite (``handover``); it seals the generation, so nothing is appended
to it again. The next generation starts in the same database under the successor suite,
and its first event names that final checkpoint by digest: both verify, each under its
own suite, and ``audit verify`` follows the link. Steps, in one transaction:

1. the ``audit_handover`` event is appended to the old generation (who, to which suite);
2. the final checkpoint is signed over the head that includes it and stored as exported;
   the generation is marked sealed;
3. the next generation is opened (suite, head row) and its first event is appended,
   hashed with the successor's hash: action ``audit_handover`` again, labels
   ``previous_generation``, ``previous_suite``, ``previous_tree_size`` and
   ``previous_checkpoint`` (the successor's hash of the final checkpoint document).

After the commit the final checkpoint is written to ``export``. Run it under the suite
the trail runs now, then restart the service with ``QUANGUARD_CRYPTO`` set to the
successor: events of the old suite are never mixed into the new generation (nor the
other way round), search and the console keep reading every generation (seqs run on).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gmcrypto import CryptoSuiteError, get_suite
from monitor.checkpoint import Checkpoint
from monitor.events import Actor, AuditEvent, EventDecision, utc_now
from quanguard.errors import Conflict, InvalidInput
from quanguard.gate import RequestContext, authorize, origin

if TYPE_CHECKING:
    from quanguard.auth import Principal
    from quanguard.container import Container

__all__ = ["handover"]


def handover(container: Container, principal: Principal, to: str, export: Path,
             ctx: RequestContext | None = None) -> Checkpoint:
    """Seal the trail with a signed final checkpoint naming ``to``; audited.

    Raises Forbidden (recorded by the gate) unless policy allows ``key_admin``;
    InvalidInput for an unknown suite or the trail's own; Conflict when already handed over
    or when the trail's current generation runs another suite than this deployment. A
    generation sealed for ``to`` by a hand-over from before generations existed gets its
    next generation opened (the final checkpoint it already has is exported again)."""
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
    name = str(getattr(principal, "name", "") or "") or None
    opening = AuditEvent(
        ts=now, action="audit_handover", reporter="quanguard",
        actor=Actor(str(principal.id), str(principal.role), str(principal.org), name),
        decision=EventDecision(str(decision.effect), getattr(decision, "rule_id", None),
                               getattr(decision, "policy_version", None)),
        outcome="success", **origin(ctx),
    )
    with container.unit_of_work() as session:
        suite, sealed, successor_name = audit.store.trail_suite(session)
        if sealed is not None and successor_name == successor.name:
            # sealed by a hand-over from before trail generations: open the next one now
            gen = audit.store.head(session).generation
            cp = audit.trail.final_checkpoint(session, gen)
            if cp is None:
                raise Conflict(f"generation {gen} is sealed but has no final checkpoint; "
                               "run 'quanguard audit verify'")
            audit.trail.open_next(session, successor, opening, cp, now=now)
        elif sealed is not None:
            raise Conflict(f"the trail was already handed over to '{successor_name}'")
        elif suite != audit.store.suite.name:
            raise Conflict(f"the trail's current generation runs crypto suite '{suite}'; "
                           f"run the hand-over under QUANGUARD_CRYPTO={suite}")
        else:
            audit.record(
                session, actor=principal, action="audit_handover", decision=decision,
                **origin(ctx),
                labels={"from_suite": audit.store.suite.name, "to_suite": successor.name},
            )
            session.flush()
            cp, _first = audit.trail.hand_over(session, successor, opening, now=now)
            stored = audit.trail.latest(session, cp.generation)
            assert stored is not None  # hand_over has just stored it
            audit.trail.mark_exported(session, stored.id, now=now)
    export.write_text(cp.to_json() + "\n", encoding="utf-8")
    return cp
