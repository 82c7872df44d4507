"""The exchange's parts and the steps every computation of it shares.

:class:`Steps` holds what the service plugs in (catalog, keys, receipt signer, decider,
scanner, clock, masker, watermarker, defaults) and the steps that both
:class:`~exchange.service.Exchange` (catalog, aggregates, approvals, reads) and
:class:`~exchange.delivery.Delivery` (PSI answers, extracts) take: decide, refuse,
queue for approval, expire, key the budget, sign a receipt, load the rows.
Every step takes the caller's session and audit sink; none commits.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import consent, jobs
from exchange.catalog import Catalog, Dataset
from exchange.crypto import MasterKey
from exchange.errors import Refused
from exchange.jobs import Job
from exchange.limits import Defaults, Limits
from exchange.ports import AuditSink, Caller, Clock, Decider, Grant, Masker, Scanner, Watermarker
from exchange.receipts import ReceiptSigner

__all__ = ["QUEUES", "Steps", "grant_of"]

QUEUES = ("allow", "approval_required")  # effects under which a request runs or is queued
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def grant_of(decision: Mapping[str, Any]) -> Grant:
    """The grant recorded with a job (it was approved, so it now allows)."""
    return Grant(effect="allow", rule_id=decision.get("rule_id"),
                 policy_version=str(decision.get("policy_version", "")),
                 reason=str(decision.get("reason", "")),
                 obligations=dict(decision.get("obligations") or {}))


class Steps:
    """The parts of one exchange and the steps its computations share."""

    def __init__(self, *, catalog: Catalog, master: MasterKey, signer: ReceiptSigner,
                 decider: Decider, scanner: Scanner, clock: Clock, masker: Masker | None = None,
                 watermarker: Watermarker | None = None, defaults: Defaults | None = None) -> None:
        self.catalog, self.master, self.signer = catalog, master, signer
        self.decider, self.scanner, self.clock = decider, scanner, clock
        self.masker, self.watermarker = masker, watermarker
        self.defaults = defaults or Defaults()

    def with_decider(self, decider: Decider) -> Self:
        """This exchange deciding through ``decider`` (the service's gate, bound to one
        request); catalog, keys and clock are shared."""
        bound = copy.copy(self)
        bound.decider = decider
        return bound

    def decide(self, audit: AuditSink, caller: Caller, action: str, ds: Dataset,
               purpose: str | None, *, audit_action: str,
               accept: Sequence[str] = QUEUES) -> Grant:
        """Ask the decider; anything but an accepted effect is recorded and refused."""
        grant = self.decider.decide(caller, action, grade=ds.grade, dataset=ds.name,
                                    owner_org=ds.owner_org, purpose=purpose,
                                    audit_action=audit_action, accept=tuple(accept))
        if grant.effect not in accept:
            audit.record(actor=caller, action=audit_action, dataset=ds.name, grade=ds.grade,
                         purpose=purpose, grant=grant, outcome="denied")
            reason = grant.reason or f"policy denies {action} on {ds.grade}"
            if grant.effect == "approval_required":
                reason = f"{action} needs an unconditional allow ({reason})"
            raise Refused(reason, rule_id=grant.rule_id)
        return grant

    def in_force(self, audit: AuditSink, consumer: Caller, job: Job, ds: Dataset, *,
                 actor: Caller, audit_action: str) -> Grant:
        """The grant an approved (or approvable) ``job`` runs under: the policy in force,
        asked again for its ``consumer`` and the dataset's grade now.

        An approval binds what was asked; the policy decides whether it may still run: a
        consumer revoked, a grade raised or a rule withdrawn after the approval refuses it
        (recorded as ``actor``'s refused ``audit_action``, the job left as it was). An
        ``approval_required`` answer is satisfied by the job's approval. The obligations
        are the policy's now (an ε cap or identifier limit lowered since applies)."""
        now = self.decider.decide(consumer, job.kind, grade=ds.grade, dataset=ds.name,
                                  owner_org=ds.owner_org, purpose=job.purpose,
                                  audit_action=audit_action, accept=(*QUEUES, "deny"))
        if now.effect not in QUEUES:
            approved = str(job.decision.get("policy_version") or "")[:12]
            exc = Refused(f"job {job.id}: the policy in force ({now.policy_version[:12]}) no longer "
                          f"allows this {job.kind} on {ds.name!r} ({ds.grade}) for "
                          f"{consumer.org}: {now.reason or 'denied'} (rule {now.rule_id}); it was "
                          f"approved under {approved or 'an earlier version'}",
                          rule_id=now.rule_id)
            raise self.refuse(audit, actor, audit_action, ds, job.purpose, now, exc,
                              labels={"job": job.id, "approved_under": approved})
        return Grant(effect="allow", rule_id=now.rule_id, policy_version=now.policy_version,
                     reason=now.reason, obligations=dict(now.obligations))

    def refuse(self, audit: AuditSink, caller: Caller, action: str, ds: Dataset,
               purpose: str | None, grant: Grant | None, exc: Refused,
               labels: Mapping[str, Any] | None = None) -> Refused:
        """Record the refusal ``exc`` (the caller commits it) and return it to raise."""
        audit.record(actor=caller, action=action, dataset=ds.name, grade=ds.grade,
                     purpose=purpose, grant=grant, outcome="denied",
                     labels={"reason": exc.reason, **dict(labels or {})})
        return exc

    def pending(self, session: Session, audit: AuditSink, caller: Caller, kind: str,
                ds: Dataset, query: Mapping[str, Any], purpose: str | None, grant: Grant, *,
                digest: str | None = None, size: int | None = None,
                body: bytes | None = None) -> Job:
        """Queue a job for approval with the full request it asks to run."""
        digest = digest or jobs.request_digest(query, purpose)
        job = jobs.insert(session, job_id=jobs.new_id(), kind=kind, dataset=ds.name,
                          owner_org=ds.owner_org, caller=caller, status="pending_approval",
                          query=query, purpose=purpose, grant=grant, now=self.clock.now(),
                          request_digest=digest, request_size=size, body=body)
        audit.record(actor=caller, action=f"exchange.{kind}", dataset=ds.name, grade=ds.grade,
                     purpose=purpose, grant=grant, outcome="pending", rows=size,
                     labels={"job": job.id, "status": job.status, "request_digest": digest})
        return job

    def budget_key(self, ds: Dataset, lim: Limits) -> str:
        """Budgets are kept per family, and per period when policy renews them."""
        if not lim.budget_period_days:
            return ds.budget_family
        days = (self.clock.now() - _EPOCH).total_seconds() / 86400.0
        return f"{ds.budget_family}@{int(days // lim.budget_period_days)}"

    def expired(self, session: Session, audit: AuditSink, caller: Caller, job: Job,
                ds: Dataset, what: str) -> Refused:
        """Mark ``job`` expired (committed with the refusal) and return the refusal."""
        jobs.update(session, job.id, status="expired", finished_at=self.clock.now())
        exc = Refused(f"{what} of job {job.id} has expired; submit the request again")
        return self.refuse(audit, caller, f"exchange.{job.kind}", ds, job.purpose, None, exc,
                           labels={"job": job.id})

    def receipt(self, *, job_id: str, kind: str, ds: Dataset, query: Mapping[str, Any],
                eps: float, dlt: float, digest: str, consumer: Caller, purpose: str | None,
                grant: Grant, approved_by: str | None) -> dict[str, Any]:
        """The signed receipt of a finished job: the run, its ``consumer`` and ``purpose``,
        the ``grant`` it ran under and who approved it (None: it needed no approval)."""
        return self.signer.sign(job=job_id, kind=kind, dataset=ds.name, dataset_digest=ds.digest,
                                query=dict(query), epsilon_spent=eps, delta_spent=dlt,
                                result_digest=digest, issued_at=self.clock.now().isoformat(),
                                consumer=consumer.id, consumer_org=consumer.org, purpose=purpose,
                                rule_id=grant.rule_id, policy_version=grant.policy_version or None,
                                approved_by=approved_by)

    def table(self, session: Session, ds: Dataset, purpose: str | None,
              columns: Iterable[str] | None = None) -> pa.Table:
        """The rows minus subjects who withdrew ``purpose``; only ``columns`` (plus the key
        column when it is needed for consent or contribution bounding) when given."""
        withdrawn = consent.withdrawn_hashes(session, dataset=ds.name, purpose=purpose)
        key = ds.key_columns[0] if ds.key_columns else None
        wanted: list[str] | None = None
        if columns is not None:
            wanted = list(dict.fromkeys(c for c in columns if c))
            if not wanted:  # a plain count still needs one column to count rows of
                cheap = [c.name for c in ds.columns if c.numeric] + list(ds.group_columns)
                wanted = [(cheap or [ds.columns[0].name])[0]]
            needs_key = withdrawn or ds.max_contributions > 1 or ds.truncate_contributions
            if key and needs_key and key not in wanted:
                wanted.append(key)
        table = self.catalog.load_table(session, ds.name, wanted)
        return consent.exclude_withdrawn(table, key_column=key if key in table.column_names else None,
                                         hash_key=self.master.subject_hasher(ds.name), withdrawn=withdrawn)
