"""The exchange's use of its parts: decide → guard → compute → charge → sign → record.

:class:`Exchange` methods take the caller's session (they never commit) and an
:class:`~exchange.ports.AuditSink` bound to that session. A refusal is recorded before
it is raised; the caller commits the refusal's audit event and then re-raises.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import budget, consent, family, jobs
from exchange.aggregate import AggregateQuery, run_aggregate, validate
from exchange.catalog import Catalog, Dataset
from exchange.crypto import MasterKey
from exchange.delivery import DeliveryMixin, grant_of
from exchange.errors import (
    BudgetExhausted,
    InvalidDataset,
    InvalidQuery,
    JobNotFound,
    JobStateError,
    Refused,
)
from exchange.jobs import Job
from exchange.limits import Defaults, Limits, limits_of
from exchange.ports import AuditSink, Caller, Clock, Decider, Grant, Masker, Scanner, Watermarker
from exchange.receipts import ReceiptSigner, result_digest
from gmcrypto import INTL

QUEUES = ("allow", "approval_required")  # effects under which a request runs or is queued
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Exchange(DeliveryMixin):
    """Catalog, aggregates, approvals and reads; PSI and extracts come from DeliveryMixin."""

    def __init__(self, *, catalog: Catalog, master: MasterKey, signer: ReceiptSigner,
                 decider: Decider, scanner: Scanner, clock: Clock, masker: Masker | None = None,
                 watermarker: Watermarker | None = None, defaults: Defaults | None = None) -> None:
        self.catalog, self.master, self.signer = catalog, master, signer
        self.decider, self.scanner, self.clock = decider, scanner, clock
        self.masker, self.watermarker = masker, watermarker
        self.defaults = defaults or Defaults()

    def with_decider(self, decider: Decider) -> Exchange:
        """This exchange deciding through ``decider`` (the service's gate, bound to one
        request); catalog, keys and clock are shared."""
        bound = copy.copy(self)
        bound.decider = decider
        return bound

    # -- helpers ---------------------------------------------------------------
    def _decide(self, audit: AuditSink, caller: Caller, action: str, ds: Dataset,
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

    def _refuse(self, audit: AuditSink, caller: Caller, action: str, ds: Dataset,
                purpose: str | None, grant: Grant | None, exc: Refused,
                labels: Mapping[str, Any] | None = None) -> Refused:
        audit.record(actor=caller, action=action, dataset=ds.name, grade=ds.grade,
                     purpose=purpose, grant=grant, outcome="denied",
                     labels={"reason": exc.reason, **dict(labels or {})})
        return exc

    def _pending(self, session: Session, audit: AuditSink, caller: Caller, kind: str,
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

    def _budget_key(self, ds: Dataset, lim: Limits) -> str:
        """Budgets are kept per family, and per period when policy renews them."""
        if not lim.budget_period_days:
            return ds.budget_family
        days = (self.clock.now() - _EPOCH).total_seconds() / 86400.0
        return f"{ds.budget_family}@{int(days // lim.budget_period_days)}"

    def _expired(self, session: Session, audit: AuditSink, caller: Caller, job: Job,
                 ds: Dataset, what: str) -> Refused:
        """Mark ``job`` expired (committed with the refusal) and return the refusal."""
        jobs.update(session, job.id, status="expired", finished_at=self.clock.now())
        exc = Refused(f"{what} of job {job.id} has expired; submit the request again")
        return self._refuse(audit, caller, f"exchange.{job.kind}", ds, job.purpose, None, exc,
                            labels={"job": job.id})

    @staticmethod
    def _ttl(job: Job, defaults: Defaults) -> timedelta:
        lim = limits_of(job.decision.get("obligations") or {}, defaults)
        return timedelta(days=lim.approval_ttl_days)

    def _receipt(self, *, job_id: str, kind: str, ds: Dataset, query: Mapping[str, Any],
                 eps: float, dlt: float, digest: str) -> dict[str, Any]:
        return self.signer.sign(job=job_id, kind=kind, dataset=ds.name, dataset_digest=ds.digest,
                                query=dict(query), epsilon_spent=eps, delta_spent=dlt,
                                result_digest=digest, issued_at=self.clock.now().isoformat())

    def _table(self, session: Session, ds: Dataset, purpose: str | None,
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

    # -- catalog -----------------------------------------------------------------
    def register(self, session: Session, audit: AuditSink, caller: Caller, *, name: str,
                 table: pa.Table, key_columns: Iterable[str] = (),
                 bounds: Mapping[str, tuple[float, float]] | None = None,
                 computations: Iterable[str] | None = None,
                 group_columns: Iterable[str] | None = None,
                 max_contributions: int | None = None, declared_grade: str | None = None,
                 grade_order: Sequence[str] = ()) -> Dataset:
        """Scan, grade (never below ``declared_grade``), decide ``dataset_register`` on the
        grade, find the budget family of its people, encrypt and store."""
        grading = self.scanner.grade_table(table)
        grade = grading.grade
        if declared_grade is not None:
            order = list(grade_order)
            if declared_grade not in order:
                raise InvalidDataset(f"declared grade {declared_grade!r} is not a grade "
                                     f"(known: {' '.join(order)})")
            if grade not in order or order.index(declared_grade) > order.index(grade):
                grade = declared_grade
        grading = type(grading)(grade=grade, columns=grading.columns, identifiers=grading.identifiers)
        grant = self.decider.decide(caller, "dataset_register", grade=grade, dataset=name,
                                    owner_org=caller.org, purpose=None,
                                    audit_action="exchange.register", accept=("allow",))
        if grant.effect != "allow":
            audit.record(actor=caller, action="exchange.register", dataset=name,
                         grade=grade, grant=grant, outcome="denied")
            raise Refused(grant.reason or "policy does not allow registering this dataset",
                          rule_id=grant.rule_id)
        lim = limits_of(grant.obligations, self.defaults)
        keys = list(dict.fromkeys(key_columns))
        subjects = family.subject_columns(table, keys=[k for k in keys if k in table.column_names],
                                          identifiers=grading.identifiers)
        # Family sketches stay HMAC-SHA-256 under an intl-derived key in both suites: a
        # dataset registered after a suite switch must still find the family of one
        # registered before it (a different hash would split the budget: fail open).
        sketch = family.sketches(table, subjects,
                                 self.master.subject_key("budget-family/v1", INTL))
        fam, overlap = family.choose_family(sketch, self.catalog.sketches(session),
                                            threshold=lim.budget_family_jaccard)
        ds = self.catalog.register(session, name=name, table=table, owner=caller, grading=grading,
                                   now=self.clock.now(), key_columns=keys, bounds=bounds,
                                   computations=computations, group_columns=group_columns,
                                   max_contributions=max_contributions, family=fam,
                                   declared_grade=declared_grade, subject_sketch=sketch)
        audit.record(actor=caller, action="exchange.register", dataset=ds.name, grade=ds.grade,
                     fields=tuple(c.name for c in ds.columns), rows=ds.rows, grant=grant,
                     result_digest=ds.digest,
                     labels={"budget_family": ds.budget_family, "overlap": round(overlap, 3),
                             "declared_grade": declared_grade})
        return ds

    # -- aggregate ---------------------------------------------------------------
    def aggregate(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                  query: AggregateQuery, purpose: str | None = None) -> Job:
        ds = self.catalog.get(session, dataset)
        grant = self._decide(audit, caller, "aggregate", ds, purpose, audit_action="exchange.aggregate")
        lim = limits_of(grant.obligations, self.defaults)
        try:
            validate(ds, query, epsilon_cap=lim.epsilon_cap, epsilon_min=lim.epsilon_min)
        except Refused as exc:
            raise self._refuse(audit, caller, "exchange.aggregate", ds, purpose, grant, exc) from None
        if grant.effect == "approval_required":
            return self._pending(session, audit, caller, "aggregate", ds, query.to_json(),
                                 purpose, grant)
        try:
            return self._run_aggregate(session, audit, caller, ds, query, purpose, grant,
                                       job_id=jobs.new_id(), existing=False)
        except BudgetExhausted as exc:
            raise self._refuse(audit, caller, "exchange.aggregate", ds, purpose, grant, exc) from None

    def _run_aggregate(self, session: Session, audit: AuditSink, consumer: Caller, ds: Dataset,
                       query: AggregateQuery, purpose: str | None, grant: Grant, *, job_id: str,
                       existing: bool) -> Job:
        lim = limits_of(grant.obligations, self.defaults)
        key = self._budget_key(ds, lim)
        budget.precheck(session, consumer=consumer.org, dataset=key, epsilon=query.epsilon,
                        epsilon_cap=lim.epsilon_cap, delta_cap=lim.delta_cap)
        table = self._table(session, ds, purpose,
                            [*query.by, *(c for c, _ in query.where), query.column or ""])
        res = run_aggregate(table, ds, query, min_group_size=lim.min_group_size,
                            delta=lim.query_delta)
        eps = max(res.epsilon_spent, query.epsilon)
        now = self.clock.now()
        left = budget.charge(session, consumer=consumer.org, dataset=key, job_id=job_id,
                             epsilon=eps, delta=res.delta_spent, epsilon_cap=lim.epsilon_cap,
                             delta_cap=lim.delta_cap, now=now)
        result = {"result": res.rows, "suppressed_groups": res.suppressed_groups,
                  "epsilon_spent": eps, "delta_spent": res.delta_spent,
                  "noise_scale": res.noise_scale, "threshold": res.threshold,
                  "budget_left": left.epsilon_left}
        digest = result_digest(res.rows, self.signer.suite)
        receipt = self._receipt(job_id=job_id, kind="aggregate", ds=ds, query=query.to_json(),
                                eps=eps, dlt=res.delta_spent, digest=digest)
        if existing:
            job = jobs.update(session, job_id, status="done", result=result, receipt=receipt,
                              finished_at=now)
        else:
            job = jobs.insert(session, job_id=job_id, kind="aggregate", dataset=ds.name,
                              owner_org=ds.owner_org, caller=consumer, status="done",
                              query=query.to_json(), purpose=purpose, grant=grant, now=now,
                              result=result, receipt=receipt)
        audit.record(actor=consumer, action="exchange.aggregate", dataset=ds.name, grade=ds.grade,
                     fields=tuple(c for c in (query.column, *query.by) if c), purpose=purpose,
                     grant=grant, result_digest=digest,
                     labels={"job": job_id, "epsilon": eps, "groups": len(res.rows),
                             "suppressed_groups": res.suppressed_groups, "budget_family": key})
        return job

    # -- approval ------------------------------------------------------------------
    def decide_job(self, session: Session, audit: AuditSink, caller: Caller, job_id: str, *,
                   approve: bool, reason: str) -> Job:
        """Approve (and run, for aggregates) or reject a pending job. Needs a reason."""
        if not reason.strip():
            raise InvalidQuery("a reason is required")
        job = jobs.get_for(session, job_id, caller)
        ds = self.catalog.get(session, job.dataset)
        grant = self._decide(audit, caller, "approve", ds, job.purpose,
                             audit_action="exchange.approve", accept=("allow",))
        if job.status != "pending_approval":
            raise JobStateError(f"job {job_id} is {job.status}, not pending_approval")
        if job.consumer_id == caller.id:
            exc = Refused("a job cannot be approved or rejected by its own submitter")
            raise self._refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc)
        now = self.clock.now()
        ttl = self._ttl(job, self.defaults)
        created = jobs.aware(job.created_at) or now
        if approve and now - created > ttl:
            raise self._expired(session, audit, caller, job, ds, "the request")
        if job.kind != "psi" and job.request_digest is not None \
                and jobs.request_digest(job.query, job.purpose) != job.request_digest:
            exc = Refused(f"job {job_id}: the stored request no longer matches its digest")
            raise self._refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc)
        action = "exchange.approve" if approve else "exchange.reject"
        audit.record(actor=caller, action=action, dataset=ds.name, grade=ds.grade,
                     purpose=job.purpose, grant=grant, rows=job.request_size,
                     labels={"job": job_id, "reason": reason, "request_digest": job.request_digest,
                             "epsilon": job.query.get("epsilon")})
        if not approve:
            return jobs.update(session, job_id, status="rejected", reason=reason,
                               decided_by=caller.id, finished_at=now)
        jobs.update(session, job_id, status="approved", reason=reason, decided_by=caller.id,
                    expires_at=now + ttl)
        if job.kind != "aggregate":
            return jobs.get(session, job_id)  # the consumer runs exactly the stored request
        consumer = Caller(job.consumer_id, "consumer", job.consumer_org)
        try:
            with session.begin_nested():
                return self._run_aggregate(session, audit, consumer, ds,
                                           AggregateQuery.from_json(dict(job.query)), job.purpose,
                                           grant_of(job.decision), job_id=job_id, existing=True)
        except BudgetExhausted as exc:
            return jobs.update(session, job_id, status="failed", reason=f"{reason}; {exc.reason}",
                               finished_at=now)

    # -- reads -------------------------------------------------------------------
    def job(self, session: Session, audit: AuditSink, caller: Caller, job_id: str) -> Job:
        """A job the caller may see. Asking for another tenant's job (or a missing one) is
        recorded as a failed read — the caller commits it — and raised as JobNotFound."""
        try:
            job = jobs.get_for(session, job_id, caller)
        except JobNotFound:
            audit.record(actor=caller, action="exchange.result", outcome="denied",
                         labels={"job": job_id, "reason": "no such job for this caller"})
            raise
        audit.record(actor=caller, action="exchange.result", dataset=job.dataset,
                     labels={"job": job.id, "status": job.status})
        return job

    def budget_state(self, session: Session, audit: AuditSink, caller: Caller, *,
                     dataset: str) -> budget.BudgetState:
        ds = self.catalog.get(session, dataset)
        grant = self._decide(audit, caller, "aggregate", ds, None, audit_action="exchange.budget")
        lim = limits_of(grant.obligations, self.defaults)
        st = budget.state(session, caller.org, self._budget_key(ds, lim),
                          epsilon_cap=lim.epsilon_cap, delta_cap=lim.delta_cap)
        return budget.BudgetState(st.consumer, ds.name, st.epsilon_spent, st.delta_spent,
                                  st.epsilon_cap, st.delta_cap, family=st.dataset)

    def set_consent(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                    subjects: Iterable[str], purpose: str, state: str) -> int:
        """Provider (owner org) or admin records granted/withdrawn purposes of subjects."""
        ds = self.catalog.get(session, dataset)
        if caller.role != "admin" and (caller.role != "provider" or caller.org != ds.owner_org):
            exc = Refused("only the dataset's provider records consent")
            raise self._refuse(audit, caller, "exchange.consent", ds, purpose, None, exc)
        n = consent.set_consent(session, dataset=ds.name, hash_key=self.master.subject_hasher(ds.name),
                                subjects=subjects, purpose=purpose, state=state, now=self.clock.now())
        audit.record(actor=caller, action="exchange.consent", dataset=ds.name, rows=n,
                     purpose=purpose, labels={"state": state})
        return n
