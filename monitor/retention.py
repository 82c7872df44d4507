"""Retention: purge events older than the retention period — but only those that an
exported checkpoint covers, so that an outside party can still hold us to them.

Purging keeps an anchor on the head row (``pruned_below``, the chain hash at that seq
and the Merkle frontier at that size), from which verification and proofs continue.
A trail with several generations (hand-overs between crypto suites) keeps one anchor per
generation: the purge walks them oldest first, each under its own suite's hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from gmcrypto import get_suite
from monitor.errors import RetentionRefused
from monitor.merkle import Accumulator
from monitor.store import EVENTS, HEAD, AuditStore, pack, to_us

MIN_RETENTION_DAYS = 180


@dataclass(frozen=True)
class PurgePlan:
    cutoff: datetime
    candidates: int  # events older than the cutoff (beyond the current anchor)
    purge_through: int  # purge seq <= this (0: nothing)
    blocked: int  # old events not covered by an exported checkpoint


def plan_purge(
    session: Session, store: AuditStore, *, exported_size: int, now: datetime,
    retention_days: int,
) -> PurgePlan:
    if retention_days < MIN_RETENTION_DAYS:
        raise RetentionRefused(
            f"retention of {retention_days} days is below the legal minimum of "
            f"{MIN_RETENTION_DAYS}"
        )
    head = store.head(session)
    retained_from = min((g.head.pruned_below for g in store.generations(session)
                         if g.head.pruned_below < g.head.seq), default=head.pruned_below)
    cutoff = now - timedelta(days=retention_days)
    # Purge a prefix only: the largest seq such that it and everything before is old.
    first_young = session.execute(
        sa.select(sa.func.min(EVENTS.c.seq)).where(EVENTS.c.ts >= to_us(cutoff))
    ).scalar()
    old_through = (int(first_young) - 1) if first_young is not None else head.seq
    old_through = max(old_through, retained_from)
    through = min(old_through, exported_size)
    return PurgePlan(
        cutoff=cutoff,
        candidates=old_through - retained_from,
        purge_through=max(through, retained_from),
        blocked=max(0, old_through - max(exported_size, retained_from)),
    )


def purge(session: Session, store: AuditStore, plan: PurgePlan, *, force_partial: bool = False
          ) -> int:
    """Delete events ``seq <= plan.purge_through``; returns how many were deleted.

    Refuses (RetentionRefused) when old events are not covered by an exported
    checkpoint, unless ``force_partial`` — then only the covered ones go.
    """
    if plan.blocked and not force_partial:
        raise RetentionRefused(
            f"{plan.blocked} events older than {plan.cutoff:%Y-%m-%d} are not covered by an "
            "exported checkpoint; export one first (quanguard audit checkpoint --export FILE)"
        )
    session.execute(sa.update(HEAD).where(HEAD.c.id == 1).values(seq=HEAD.c.seq))
    deleted = 0
    for gen in store.generations(session):
        head = gen.head
        through = min(plan.purge_through, head.seq)
        if through <= head.pruned_below:
            continue
        acc = Accumulator(head.pruned_size, head.pruned_frontier,
                          h=AuditStore(get_suite(gen.suite)).hash)
        last_hash = head.pruned_hash
        for row in store.iter_range(session, head.pruned_below + 1, through):
            acc.append(row.leaf_hash)
            last_hash = row.hash
        result = session.execute(sa.delete(EVENTS).where(
            EVENTS.c.seq > head.pruned_below, EVENTS.c.seq <= through))
        deleted += int(getattr(result, "rowcount", 0) or 0)
        session.execute(
            sa.update(HEAD).where(HEAD.c.id == gen.id).values(
                pruned_below=through, pruned_hash=last_hash,
                pruned_frontier=pack(acc.frontier),
            )
        )
    return deleted
