"""The exchange's use of its parts: decide → guard → compute → charge → sign → record.

:class:`Exchange` is the entrance: the parts and the shared steps come from
:class:`~exchange.steps.Steps`, PSI answers and extracts from its
:attr:`~Exchange.delivery` (:class:`~exchange.delivery.Delivery`). Their methods take the
caller's session (they never commit) and an :class:`~exchange.ports.AuditSink` bound to
that session. A refusal is recorded before it is raised; the caller commits the
refusal's audit event and then re-raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import budget, consent, family, jobs
from exchange.aggregate import AggregateQuery, run_aggregate, validate
from exchange.catalog import Dataset
from exchange.delivery import Delivery
from exchange.errors import (
    BudgetExhausted,
    InvalidDataset,
    InvalidQuery,
    JobNotFound,
    JobStateError,
    Refused,
)
from exchange.jobs import Job
from exchange.limits import Defaults, limits_of
from exchange.ports import AuditSink, Caller, Grant
from exchange.receipts import result_digest
from exchange.steps import Steps
from gmcrypto import INTL

# who decides a job when its rule names no ``approval`` role
DEFAULT_APPROVER = "manager"


def approvers(job: Job) -> tuple[str, ...]:
    """The roles that may approve or reject ``job``: the ``approval`` obligation of the rule
    that queued it (a role, or a list of roles), else :data:`DEFAULT_APPROVER`."""
    named = (job.decision.get("obligations") or {}).get("approval")
    if isinstance(named, str) and named.strip():
        return (named.strip(),)
    if isinstance(named, (list, tuple)) and named:
        return tuple(str(r).strip() for r in named)
    return (DEFAULT_APPROVER,)


class Exchange(Steps):
    """Catalog, aggregates, approvals and reads; PSI answers and extracts are its
    :attr:`delivery`. The parts and shared steps are :class:`~exchange.steps.Steps`."""

    @property
    def delivery(self) -> Delivery:
        """PSI answers and extracts, through this exchange's parts (and its decider)."""
        return Delivery(self)

    # -- helpers ---------------------------------------------------------------
    @staticmethod
    def _ttl(job: Job, defaults: Defaults) -> timedelta:
        lim = limits_of(job.decision.get("obligations") or {}, defaults)
        return timedelta(days=lim.approval_ttl_days)

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
        grading = dataclasses.replace(grading, grade=grade)
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
        grant = self.decide(audit, caller, "aggregate", ds, purpose, audit_action="exchange.aggregate")
        lim = limits_of(grant.obligations, self.defaults)
        try:
            validate(ds, query, epsilon_cap=lim.epsilon_cap, epsilon_min=lim.epsilon_min)
        except Refused as exc:
            raise self.refuse(audit, caller, "exchange.aggregate", ds, purpose, grant, exc) from None
        if grant.effect == "approval_required":
            return self.pending(session, audit, caller, "aggregate", ds, query.to_json(),
                                 purpose, grant)
        try:
            return self._run_aggregate(session, audit, caller, ds, query, purpose, grant,
                                       job_id=jobs.new_id(), approved_by=None)
        except BudgetExhausted as exc:
            raise self.refuse(audit, caller, "exchange.aggregate", ds, purpose, grant, exc) from None

    def _run_aggregate(self, session: Session, audit: AuditSink, consumer: Caller, ds: Dataset,
                       query: AggregateQuery, purpose: str | None, grant: Grant, *, job_id: str,
                       approved_by: str | None) -> Job:
        """Run the aggregate; ``approved_by``: the approver of the queued job ``job_id``
        (None: a new job that needed no approval)."""
        lim = limits_of(grant.obligations, self.defaults)
        key = self.budget_key(ds, lim)
        budget.precheck(session, consumer=consumer.org, dataset=key, epsilon=query.epsilon,
                        epsilon_cap=lim.epsilon_cap, delta_cap=lim.delta_cap)
        table = self.table(session, ds, purpose,
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
        receipt = self.receipt(job_id=job_id, kind="aggregate", ds=ds, query=query.to_json(),
                               eps=eps, dlt=res.delta_spent, digest=digest, consumer=consumer,
                               purpose=purpose, grant=grant, approved_by=approved_by)
        if approved_by is not None:
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
        grant = self.decide(audit, caller, "approve", ds, job.purpose,
                             audit_action="exchange.approve", accept=("allow",))
        if job.status != "pending_approval":
            raise JobStateError(f"job {job_id} is {job.status}, not pending_approval")
        if job.consumer_id == caller.id:
            exc = Refused("a job cannot be approved or rejected by its own submitter")
            raise self.refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc)
        named = approvers(job)
        if caller.role not in named:
            exc = Refused(f"job {job_id} is decided by {' or '.join(named)} (the approval its rule "
                          f"{job.decision.get('rule_id')} names), not by {caller.role}")
            raise self.refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc,
                              labels={"job": job_id, "approval": ",".join(named)})
        now = self.clock.now()
        ttl = self._ttl(job, self.defaults)
        created = jobs.aware(job.created_at) or now
        if approve and now - created > ttl:
            raise self.expired(session, audit, caller, job, ds, "the request")
        if job.kind != "psi" and job.request_digest is not None \
                and jobs.request_digest(job.query, job.purpose) != job.request_digest:
            exc = Refused(f"job {job_id}: the stored request no longer matches its digest")
            raise self.refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc)
        consumer = Caller(job.consumer_id, str(job.decision.get("role") or "consumer"), job.consumer_org)
        # what is approved must be what the policy in force still allows (recorded and
        # refused otherwise, the job left pending: a manager may still reject it)
        current = self.in_force(audit, consumer, job, ds, actor=caller,
                                audit_action="exchange.approve") if approve else None
        action = "exchange.approve" if approve else "exchange.reject"
        audit.record(actor=caller, action=action, dataset=ds.name, grade=ds.grade,
                     purpose=job.purpose, grant=grant, rows=job.request_size,
                     labels={"job": job_id, "reason": reason, "request_digest": job.request_digest,
                             "epsilon": job.query.get("epsilon")})
        if not approve:
            return jobs.advance(session, job_id, from_status="pending_approval", status="rejected",
                                reason=reason, decided_by=caller.id, finished_at=now)
        jobs.advance(session, job_id, from_status="pending_approval", status="approved",
                     reason=reason, decided_by=caller.id, expires_at=now + ttl)
        if job.kind != "aggregate":
            return jobs.get(session, job_id)  # the consumer runs exactly the stored request
        assert current is not None
        try:
            with session.begin_nested():
                return self._run_aggregate(session, audit, consumer, ds,
                                           AggregateQuery.from_json(dict(job.query)), job.purpose,
                                           current, job_id=job_id, approved_by=caller.id)
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
        grant = self.decide(audit, caller, "aggregate", ds, None, audit_action="exchange.budget")
        lim = limits_of(grant.obligations, self.defaults)
        st = budget.state(session, caller.org, self.budget_key(ds, lim),
                          epsilon_cap=lim.epsilon_cap, delta_cap=lim.delta_cap)
        return budget.BudgetState(st.consumer, ds.name, st.epsilon_spent, st.delta_spent,
                                  st.epsilon_cap, st.delta_cap, family=st.dataset)

    def set_consent(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                    subjects: Iterable[str], purpose: str, state: str) -> int:
        """Provider (owner org) or admin records granted/withdrawn purposes of subjects."""
        ds = self.catalog.get(session, dataset)
        if caller.role != "admin" and (caller.role != "provider" or caller.org != ds.owner_org):
            exc = Refused("only the dataset's provider records consent")
            raise self.refuse(audit, caller, "exchange.consent", ds, purpose, None, exc)
        n = consent.set_consent(session, dataset=ds.name, hash_key=self.master.subject_hasher(ds.name),
                                subjects=subjects, purpose=purpose, state=state, now=self.clock.now())
        audit.record(actor=caller, action="exchange.consent", dataset=ds.name, rows=n,
                     purpose=purpose, labels={"state": state})
        return n
