"""Retention of the Elasticsearch copy of the trail.

Preferred: an ILM policy (``<prefix>-retention``) with a single delete phase at
``min_age = <retention_days>d``, named in the index template; each monthly index counts
its age from the end of its month (``index.lifecycle.origination_date``, set by
``monitor.es.EsSink``), so it is deleted once its newest possible event is older than the
retention period.

Fallback, for clusters without ILM (the test stand-in, some distributions, or a user not
allowed to manage ILM): delete the monthly indices that lie wholly before the cutoff, then
``delete_by_query`` the older events of the boundary month. Detection never crashes: a
missing ILM API is a mode, not an error.

The SQL store stays the source of truth; its own purge (``monitor.retention``) is the one
that refuses to drop events no exported checkpoint covers. The search copy may be pruned
at the same cutoff without losing anything the trail can prove.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.es import (
    EsError,
    EsRejected,
    call_es,
    ilm_available,
    index_pattern,
    month_end_ms,
    ts_us,
)

_log = logging.getLogger("monitor.retention_es")

MODE_ILM = "ilm"
MODE_FALLBACK = "delete_by_query"


def policy_name(prefix: str) -> str:
    return f"{prefix}-retention"


def ilm_policy(retention_days: int) -> dict[str, Any]:
    return {"phases": {
        "hot": {"min_age": "0ms", "actions": {}},
        "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
    }, "_meta": {"managed_by": "quanguard"}}


@dataclass(frozen=True)
class RetentionOutcome:
    mode: str  # ilm | delete_by_query
    retention_days: int
    cutoff: datetime
    deleted_indices: tuple[str, ...] = ()
    deleted_documents: int = 0
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "retention_days": self.retention_days,
                "cutoff": self.cutoff.isoformat(), "deleted_indices": list(self.deleted_indices),
                "deleted_documents": self.deleted_documents, "detail": self.detail}


def install_ilm(client: Any, *, prefix: str, retention_days: int) -> str | None:
    """Install the ILM policy when the cluster has ILM; returns its name, else None.

    A cluster that refuses the policy (no ILM, not permitted) yields None: the caller then
    uses :func:`apply_retention`'s fallback. Unreachable clusters raise EsUnavailable.
    """
    if not ilm_available(client):
        return None
    name = policy_name(prefix)
    try:
        call_es("installing the ILM policy", client.ilm.put_lifecycle, name=name,
              policy=ilm_policy(retention_days))
    except EsRejected as exc:
        _log.warning("ILM policy refused, falling back to delete_by_query: %s", exc)
        return None
    return name


def apply_retention(client: Any, *, prefix: str, retention_days: int,
                    now: datetime | None = None, use_ilm: bool | None = None) -> RetentionOutcome:
    """Enforce retention on the search copy; returns what was done. Never raises for a
    missing ILM; raises EsUnavailable when the cluster cannot be reached."""
    if retention_days < 1:
        raise ValueError("retention_days must be positive")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    if use_ilm is None:
        use_ilm = install_ilm(client, prefix=prefix, retention_days=retention_days) is not None
    if use_ilm:
        detail = _attach_policy(client, prefix)
        return RetentionOutcome(MODE_ILM, retention_days, cutoff,
                                detail=f"ILM policy {policy_name(prefix)} deletes old indices"
                                       f"{detail}")
    return _fallback(client, prefix, retention_days, cutoff)


def _attach_policy(client: Any, prefix: str) -> str:
    """Name the policy on indices created before it existed (the template covers new ones)."""
    try:
        call_es("attaching the ILM policy", client.indices.put_settings,
              index=index_pattern(prefix), allow_no_indices=True, ignore_unavailable=True,
              settings={"index": {"lifecycle": {"name": policy_name(prefix)}}})
    except EsRejected as exc:
        return f"; existing indices keep their settings ({exc})"
    return ""


def _fallback(client: Any, prefix: str, days: int, cutoff: datetime) -> RetentionOutcome:
    cutoff_ms = int(cutoff.timestamp() * 1000)
    existing = call_es("listing indices", client.indices.get, index=index_pattern(prefix),
                     allow_no_indices=True, ignore_unavailable=True)
    dropped: list[str] = []
    for index in sorted(existing):
        try:
            end = month_end_ms(index)
        except ValueError:
            continue  # not one of our monthly indices
        if end <= cutoff_ms:
            call_es(f"deleting index {index}", client.indices.delete, index=index)
            dropped.append(index)
    deleted = 0
    if len(dropped) < len(existing):
        try:
            resp = call_es("deleting old events", client.delete_by_query,
                         index=index_pattern(prefix), allow_no_indices=True,
                         ignore_unavailable=True, conflicts="proceed", refresh=True,
                         query={"range": {"quanguard.ts_us": {"lt": ts_us(cutoff)}}})
            deleted = int(resp.get("deleted", 0))
        except EsError as exc:
            if isinstance(exc, EsRejected):
                return RetentionOutcome(MODE_FALLBACK, days, cutoff, tuple(dropped), 0,
                                        f"delete_by_query refused: {exc}")
            raise
    return RetentionOutcome(MODE_FALLBACK, days, cutoff, tuple(dropped), deleted,
                            "no ILM on this cluster: deleted whole months and older events")
