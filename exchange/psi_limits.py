"""PSI limits (issue 11, finding 3): against membership probing and group testing.

A request must hold at least ``psi_min_set_size`` identifiers; a consumer organisation may
send at most ``psi_max_requests`` requests holding at most ``psi_max_items`` identifiers
in all to one budget family (the datasets of the same people) per ``psi_period_days``.
Requests waiting for approval or approved count as well; rejected ones do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.errors import Refused
from exchange.limits import Limits
from exchange.tables import datasets, jobs

_COUNTED = ("pending_approval", "approved", "done")


def lock_family(session: Session, family: str) -> None:
    """Hold the family's first dataset row until the transaction ends, so that two
    concurrent requests cannot both pass the limits on the last free place."""
    session.execute(select(datasets.c.name).where(datasets.c.name == family).with_for_update())


def usage(session: Session, *, consumer_org: str, datasets: Sequence[str],
          since: datetime) -> tuple[int, int]:
    """(requests, identifiers) of PSI jobs of ``consumer_org`` on ``datasets`` since ``since``."""
    rows = session.execute(
        select(jobs.c.request_size, jobs.c.query).where(
            jobs.c.kind == "psi", jobs.c.consumer_org == consumer_org,
            jobs.c.dataset.in_(list(datasets)), jobs.c.created_at >= since,
            jobs.c.status.in_(_COUNTED))
    ).all()
    items = 0
    for size, query in rows:
        items += int(size if size is not None else (query or {}).get("client_items", 0))
    return len(rows), items


def check(session: Session, lim: Limits, *, consumer_org: str, datasets: Sequence[str],
          n_items: int, now: datetime) -> None:
    """Raise Refused when a new request of ``n_items`` identifiers breaks a limit."""
    if n_items < lim.psi_min_set_size:
        raise Refused(f"PSI request holds {n_items} identifier(s); policy requires at least "
                      f"{lim.psi_min_set_size} (psi_min_set_size)")
    if lim.psi_max_requests is None and lim.psi_max_items is None:
        return
    since = now - timedelta(days=lim.psi_period_days)
    count, items = usage(session, consumer_org=consumer_org, datasets=datasets, since=since)
    period = f"{lim.psi_period_days:g} day(s)"
    if lim.psi_max_requests is not None and count >= lim.psi_max_requests:
        raise Refused(f"PSI request limit reached: {count} of {lim.psi_max_requests} requests "
                      f"per {period} on these subjects (psi_max_requests)")
    if lim.psi_max_items is not None and items + n_items > lim.psi_max_items:
        raise Refused(f"PSI identifier limit reached: {items} + {n_items} exceeds "
                      f"{lim.psi_max_items} per {period} on these subjects (psi_max_items)")
