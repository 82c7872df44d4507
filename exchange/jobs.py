"""Job records of the exchange and who may see them (tenancy).

A consumer sees only the jobs it submitted; a provider sees every job on its
organisation's datasets (and its own); managers, auditors, officers and admins see all.
A job someone may not see is reported as not found, so ids do not leak existence.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from exchange.errors import JobNotFound, JobStateError
from exchange.ports import Caller, Grant
from exchange.tables import job_requests, jobs

STATUSES = ("pending_approval", "approved", "done", "rejected", "failed", "expired")
OVERSEERS = frozenset({"manager", "auditor", "officer", "admin"})


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    dataset: str
    owner_org: str
    consumer_id: str
    consumer_org: str
    status: str
    query: Mapping[str, Any]
    purpose: str | None
    decision: Mapping[str, Any]
    result: Mapping[str, Any] | None
    receipt: Mapping[str, Any] | None
    reason: str | None
    decided_by: str | None
    created_at: datetime
    finished_at: datetime | None
    request_digest: str | None = None
    request_size: int | None = None
    expires_at: datetime | None = None

    def request_view(self) -> dict[str, Any]:
        """What the approver approves: size, digest, purpose, ε, and until when."""
        view: dict[str, Any] = {
            "kind": self.kind, "size": self.request_size, "digest": self.request_digest,
            "purpose": self.purpose, "epsilon": self.query.get("epsilon"),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }
        if self.kind == "aggregate":
            view.update({k: self.query.get(k) for k in ("agg", "column", "by", "where")})
        elif self.kind == "psi":
            ob = self.decision.get("obligations") or {}
            view["epsilon"] = ob.get("psi_count_epsilon") if ob.get("psi_reveal") != "matches" else None
            view["reveal"] = ob.get("psi_reveal")
        elif self.kind == "extract":
            view["format"] = self.query.get("format")
        return view

    def to_public(self) -> dict[str, Any]:
        """The job as returned to clients; a finished aggregate flattens its result."""
        out: dict[str, Any] = {
            "job": self.id, "kind": self.kind, "dataset": self.dataset, "status": self.status,
            "query": dict(self.query), "purpose": self.purpose, "consumer": self.consumer_id,
            "consumer_org": self.consumer_org, "reason": self.reason,
            "decided_by": self.decided_by,
            "decision": {k: self.decision.get(k) for k in ("effect", "rule_id", "policy_version")},
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "result": None,
            "request": self.request_view(),
        }
        if self.result is not None:
            out.update(self.result)
        out["receipt"] = dict(self.receipt) if self.receipt else None
        return out


def decision_json(grant: Grant) -> dict[str, Any]:
    return {"effect": grant.effect, "rule_id": grant.rule_id,
            "policy_version": grant.policy_version, "reason": grant.reason,
            "obligations": dict(grant.obligations)}


def request_digest(query: Mapping[str, Any], purpose: str | None) -> str:
    """Digest of an aggregate or extract request as submitted (the query and purpose)."""
    text = json.dumps({"query": dict(query), "purpose": purpose}, sort_keys=True,
                      ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_id() -> str:
    return "job-" + uuid.uuid4().hex[:20]


def insert(session: Session, *, job_id: str, kind: str, dataset: str, owner_org: str,
           caller: Caller, status: str, query: Mapping[str, Any], purpose: str | None,
           grant: Grant, now: datetime, result: Mapping[str, Any] | None = None,
           receipt: Mapping[str, Any] | None = None, reason: str | None = None,
           request_digest: str | None = None, request_size: int | None = None,
           body: bytes | None = None) -> Job:
    """Insert a job; ``body`` (a PSI job's blinded set) is kept for the approval to run."""
    finished = now if status in ("done", "rejected", "failed") else None
    values = {
        "id": job_id, "kind": kind, "dataset": dataset, "owner_org": owner_org, "consumer_id": caller.id,
        "consumer_org": caller.org, "status": status, "query": dict(query), "purpose": purpose,
        "decision": {**decision_json(grant), "role": caller.role}, "result": dict(result) if result is not None else None,
        "receipt": dict(receipt) if receipt is not None else None, "reason": reason,
        "decided_by": None, "created_at": now, "finished_at": finished,
        "request_digest": request_digest, "request_size": request_size, "expires_at": None,
    }
    session.execute(jobs.insert().values(**values))
    if body is not None:
        session.execute(job_requests.insert().values(job_id=job_id, body=body))
    return _to_job(values)


def request_body(session: Session, job_id: str) -> bytes | None:
    row = session.execute(select(job_requests.c.body).where(job_requests.c.job_id == job_id)).first()
    return bytes(row[0]) if row else None


def update(session: Session, job_id: str, **values: Any) -> Job:
    session.execute(jobs.update().where(jobs.c.id == job_id).values(**values))
    return get(session, job_id)


def advance(session: Session, job_id: str, *, from_status: str, **values: Any) -> Job:
    """Move a job out of ``from_status``: one conditional UPDATE, so of racing requests
    that all read the job in ``from_status`` exactly one moves it (PostgreSQL re-checks
    the condition after the winner commits; SQLite's writer lock serialises them).

    Raises JobStateError for the others: one approval runs once.
    """
    res = session.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.status == from_status)
                          .values(**values))
    if getattr(res, "rowcount", 0) != 1:  # CursorResult of an UPDATE
        raise JobStateError(f"job {job_id} is no longer {from_status}: it was used or "
                            f"decided by another request")
    return get(session, job_id)


def get(session: Session, job_id: str) -> Job:
    row = session.execute(select(jobs).where(jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise JobNotFound(job_id)
    return _to_job(row)


def visible(job: Job, caller: Caller) -> bool:
    if caller.role in OVERSEERS:
        return True
    if job.consumer_id == caller.id:
        return True
    return caller.role == "provider" and job.owner_org == caller.org


def get_for(session: Session, job_id: str, caller: Caller) -> Job:
    """The job if ``caller`` may see it, else JobNotFound (same as a missing id)."""
    job = get(session, job_id)
    if not visible(job, caller):
        raise JobNotFound(job_id)
    return job


def list_for(session: Session, caller: Caller, *, status: str | None = None,
             dataset: str | None = None, limit: int = 200) -> list[Job]:
    stmt = select(jobs)
    if caller.role not in OVERSEERS:
        cond = jobs.c.consumer_id == caller.id
        if caller.role == "provider":
            cond = or_(cond, jobs.c.owner_org == caller.org)
        stmt = stmt.where(cond)
    if status:
        stmt = stmt.where(jobs.c.status == status)
    if dataset:
        stmt = stmt.where(jobs.c.dataset == dataset)
    stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
    return [_to_job(r) for r in session.execute(stmt).mappings()]


def _to_job(row: Any) -> Job:
    return Job(
        id=row["id"], kind=row["kind"], dataset=row["dataset"], owner_org=row["owner_org"],
        consumer_id=row["consumer_id"], consumer_org=row["consumer_org"], status=row["status"],
        query=row["query"] or {}, purpose=row["purpose"], decision=row["decision"] or {},
        result=row["result"], receipt=row["receipt"], reason=row["reason"],
        decided_by=row["decided_by"], created_at=row["created_at"],
        finished_at=row["finished_at"], request_digest=row.get("request_digest"),
        request_size=row.get("request_size"), expires_at=aware(row.get("expires_at")),
    )


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        from datetime import UTC

        return value.replace(tzinfo=UTC)
    return value
