"""The exchange's use of its parts: decide → guard → compute → charge → sign → record.

:class:`Exchange` methods take the caller's session (they never commit) and an
:class:`~exchange.ports.AuditSink` bound to that session. A refusal is recorded before
it is raised; the caller commits the refusal's audit event and then re-raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import budget, consent, jobs
from exchange.aggregate import AggregateQuery, run_aggregate, validate
from exchange.catalog import Catalog, Dataset
from exchange.crypto import MasterKey
from exchange.errors import BudgetExhausted, InvalidQuery, JobStateError, Refused
from exchange.extract import ExtractOutput, make_extract
from exchange.jobs import Job
from exchange.ports import AuditSink, Caller, Clock, Decider, Grant, Masker, Scanner, Watermarker
from exchange.psi import REVEALS, PsiAnswer, request_size, serve
from exchange.receipts import ReceiptSigner, result_digest


@dataclass(frozen=True)
class Defaults:
    """Used where the policy decision carries no obligation of that name."""

    epsilon_cap: float = 1.0
    delta_cap: float = 1e-6
    min_group_size: int = 10
    psi_max_ids: int = 100_000
    psi_reveal: str = "count"


@dataclass(frozen=True)
class Limits:
    epsilon_cap: float
    delta_cap: float
    min_group_size: int
    row_limit: int | None
    psi_reveal: str
    mask_profile: str | None
    watermark: bool

    @property
    def query_delta(self) -> float:
        return self.delta_cap / 100.0


def limits_of(obligations: Mapping[str, Any], d: Defaults) -> Limits:
    ob = dict(obligations or {})
    reveal = str(ob.get("psi_reveal") or d.psi_reveal)
    return Limits(
        epsilon_cap=float(ob.get("epsilon_cap", d.epsilon_cap)),
        delta_cap=float(ob.get("delta_cap", d.delta_cap)),
        min_group_size=int(ob.get("min_group_size", d.min_group_size)),
        row_limit=int(ob["row_limit"]) if ob.get("row_limit") is not None else None,
        psi_reveal=reveal if reveal in REVEALS else "count",
        mask_profile=ob.get("mask_profile"), watermark=bool(ob.get("watermark", True)),
    )


class Exchange:
    def __init__(self, *, catalog: Catalog, master: MasterKey, signer: ReceiptSigner,
                 decider: Decider, scanner: Scanner, clock: Clock, masker: Masker | None = None,
                 watermarker: Watermarker | None = None, defaults: Defaults = Defaults()) -> None:
        self.catalog, self.master, self.signer = catalog, master, signer
        self.decider, self.scanner, self.clock = decider, scanner, clock
        self.masker, self.watermarker, self.defaults = masker, watermarker, defaults

    # -- helpers ---------------------------------------------------------------
    def _decide(self, audit: AuditSink, caller: Caller, action: str, ds: Dataset,
                purpose: str | None, *, audit_action: str) -> Grant:
        grant = self.decider.decide(caller, action, grade=ds.grade, dataset=ds.name,
                                    owner_org=ds.owner_org, purpose=purpose)
        if grant.effect == "deny":
            audit.record(actor=caller, action=audit_action, dataset=ds.name, grade=ds.grade,
                         purpose=purpose, grant=grant, outcome="denied")
            raise Refused(grant.reason or f"policy denies {action} on {ds.grade}", rule_id=grant.rule_id)
        return grant

    def _refuse(self, audit: AuditSink, caller: Caller, action: str, ds: Dataset,
                purpose: str | None, grant: Grant | None, exc: Refused) -> Refused:
        audit.record(actor=caller, action=action, dataset=ds.name, grade=ds.grade,
                     purpose=purpose, grant=grant, outcome="denied",
                     labels={"reason": exc.reason})
        return exc

    def _pending(self, session: Session, audit: AuditSink, caller: Caller, kind: str,
                 ds: Dataset, query: Mapping[str, Any], purpose: str | None, grant: Grant) -> Job:
        job = jobs.insert(session, job_id=jobs.new_id(), kind=kind, dataset=ds.name,
                          owner_org=ds.owner_org, caller=caller, status="pending_approval",
                          query=query, purpose=purpose, grant=grant, now=self.clock.now())
        audit.record(actor=caller, action=f"exchange.{kind}", dataset=ds.name, grade=ds.grade,
                     purpose=purpose, grant=grant, outcome="pending",
                     labels={"job": job.id, "status": job.status})
        return job

    def _receipt(self, *, job_id: str, kind: str, ds: Dataset, query: Mapping[str, Any],
                 eps: float, dlt: float, digest: str) -> dict[str, Any]:
        return self.signer.sign(job=job_id, kind=kind, dataset=ds.name, dataset_digest=ds.digest,
                                query=dict(query), epsilon_spent=eps, delta_spent=dlt,
                                result_digest=digest, issued_at=self.clock.now().isoformat())

    def _table(self, session: Session, ds: Dataset, purpose: str | None) -> pa.Table:
        table = self.catalog.load_table(session, ds.name)
        withdrawn = consent.withdrawn_hashes(session, dataset=ds.name, purpose=purpose)
        key = ds.key_columns[0] if ds.key_columns else None
        return consent.exclude_withdrawn(table, key_column=key,
                                         hash_key=self.master.subject_key(ds.name), withdrawn=withdrawn)

    # -- catalog -----------------------------------------------------------------
    def register(self, session: Session, audit: AuditSink, caller: Caller, *, name: str,
                 table: pa.Table, key_columns: Iterable[str] = (),
                 bounds: Mapping[str, tuple[float, float]] | None = None,
                 computations: Iterable[str] | None = None,
                 group_columns: Iterable[str] | None = None) -> Dataset:
        """Scan, grade, decide ``dataset_register`` on the grade, encrypt and store."""
        grading = self.scanner.grade_table(table)
        grant = self.decider.decide(caller, "dataset_register", grade=grading.grade, dataset=name,
                                    owner_org=caller.org)
        if grant.effect != "allow":
            audit.record(actor=caller, action="exchange.register", dataset=name,
                         grade=grading.grade, grant=grant, outcome="denied")
            raise Refused(grant.reason or "policy does not allow registering this dataset",
                          rule_id=grant.rule_id)
        ds = self.catalog.register(session, name=name, table=table, owner=caller, grading=grading,
                                   now=self.clock.now(), key_columns=key_columns, bounds=bounds,
                                   computations=computations, group_columns=group_columns)
        audit.record(actor=caller, action="exchange.register", dataset=ds.name, grade=ds.grade,
                     fields=tuple(c.name for c in ds.columns), rows=ds.rows, grant=grant,
                     result_digest=ds.digest)
        return ds

    # -- aggregate ---------------------------------------------------------------
    def aggregate(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                  query: AggregateQuery, purpose: str | None = None) -> Job:
        ds = self.catalog.get(session, dataset)
        grant = self._decide(audit, caller, "aggregate", ds, purpose, audit_action="exchange.aggregate")
        lim = limits_of(grant.obligations, self.defaults)
        try:
            validate(ds, query, epsilon_cap=lim.epsilon_cap)
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
        budget.precheck(session, consumer=consumer.org, dataset=ds.name, epsilon=query.epsilon,
                        epsilon_cap=lim.epsilon_cap, delta_cap=lim.delta_cap)
        table = self._table(session, ds, purpose)
        res = run_aggregate(table, ds, query, min_group_size=lim.min_group_size,
                            delta=lim.query_delta)
        eps = max(res.epsilon_spent, query.epsilon)
        now = self.clock.now()
        left = budget.charge(session, consumer=consumer.org, dataset=ds.name, job_id=job_id,
                             epsilon=eps, delta=res.delta_spent, epsilon_cap=lim.epsilon_cap,
                             delta_cap=lim.delta_cap, now=now)
        result = {"result": res.rows, "suppressed_groups": res.suppressed_groups,
                  "epsilon_spent": eps, "delta_spent": res.delta_spent,
                  "noise_scale": res.noise_scale, "threshold": res.threshold,
                  "budget_left": left.epsilon_left}
        digest = result_digest(res.rows)
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
                             "suppressed_groups": res.suppressed_groups})
        return job

    # -- PSI -----------------------------------------------------------------------
    def psi_terms(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                  purpose: str | None = None) -> dict[str, Any]:
        """What a PSI on ``dataset`` would be allowed: effect, reveal mode, id limit."""
        ds = self.catalog.get(session, dataset)
        grant = self._decide(audit, caller, "psi", ds, purpose, audit_action="exchange.psi")
        lim = limits_of(grant.obligations, self.defaults)
        return {"dataset": ds.name, "effect": grant.effect, "reveal": lim.psi_reveal,
                "max_ids": lim.row_limit or self.defaults.psi_max_ids}

    def psi(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
            request: bytes, purpose: str | None = None,
            job_id: str | None = None) -> tuple[Job, PsiAnswer | None]:
        ds = self.catalog.get(session, dataset)
        if "psi" not in ds.computations or not ds.key_columns:
            exc = Refused(f"dataset {ds.name!r} does not offer PSI (needs a key column and 'psi')")
            raise self._refuse(audit, caller, "exchange.psi", ds, purpose, None, exc)
        query = {"client_items": request_size(request), "key_column": ds.key_columns[0]}
        if job_id is not None:
            job = jobs.get_for(session, job_id, caller)
            if job.kind != "psi" or job.status != "approved" or job.consumer_id != caller.id \
                    or job.dataset != ds.name:
                raise JobStateError(f"job {job_id} is not an approved PSI job of yours on {ds.name}")
            grant = _grant_of(job.decision)
        else:
            grant = self._decide(audit, caller, "psi", ds, purpose, audit_action="exchange.psi")
            if grant.effect == "approval_required":
                job = self._pending(session, audit, caller, "psi", ds, query, purpose, grant)
                return job, None
        lim = limits_of(grant.obligations, self.defaults)
        table = self._table(session, ds, purpose)
        col = table.column(ds.key_columns[0]).drop_null().cast(pa.string())
        items = list(dict.fromkeys(str(v).strip() for v in col.to_pylist()))
        try:
            answer = serve(items, request, reveal=lim.psi_reveal,
                           max_client_items=lim.row_limit or self.defaults.psi_max_ids)
        except Refused as exc:
            raise self._refuse(audit, caller, "exchange.psi", ds, purpose, grant, exc) from None
        now = self.clock.now()
        jid = job_id or jobs.new_id()
        result = {"reveal": answer.reveal, "client_items": query["client_items"]}
        receipt = self._receipt(job_id=jid, kind="psi", ds=ds, query=query, eps=0.0, dlt=0.0,
                                digest=answer.digest)
        if job_id is not None:
            job = jobs.update(session, jid, status="done", result=result, receipt=receipt,
                              finished_at=now)
        else:
            job = jobs.insert(session, job_id=jid, kind="psi", dataset=ds.name,
                              owner_org=ds.owner_org, caller=caller, status="done", query=query,
                              purpose=purpose, grant=grant, now=now, result=result, receipt=receipt)
        audit.record(actor=caller, action="exchange.psi", dataset=ds.name, grade=ds.grade,
                     fields=(ds.key_columns[0],), rows=query["client_items"], purpose=purpose,
                     grant=grant, result_digest=answer.digest,
                     labels={"job": jid, "reveal": answer.reveal})
        return job, answer

    # -- extract ---------------------------------------------------------------
    def extract(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                fmt: str = "csv", purpose: str | None = None,
                job_id: str | None = None) -> tuple[Job, ExtractOutput | None]:
        ds = self.catalog.get(session, dataset)
        if job_id is not None:
            job = jobs.get_for(session, job_id, caller)
            if job.kind != "extract" or job.status != "approved" or job.consumer_id != caller.id:
                raise JobStateError(f"job {job_id} is not an approved extract job of yours")
            grant = _grant_of(job.decision)
        else:
            grant = self._decide(audit, caller, "extract", ds, purpose, audit_action="exchange.extract")
            if grant.effect == "approval_required":
                job = self._pending(session, audit, caller, "extract", ds, {"format": fmt},
                                    purpose, grant)
                return job, None
        lim = limits_of(grant.obligations, self.defaults)
        try:
            if "extract" not in ds.computations:
                raise Refused(f"dataset {ds.name!r} does not offer extracts")
            out = make_extract(self._table(session, ds, purpose), masker=self.masker,
                               watermarker=self.watermarker, profile=lim.mask_profile,
                               recipient=caller.id, watermark=lim.watermark, fmt=fmt,
                               row_limit=lim.row_limit)
        except Refused as exc:
            raise self._refuse(audit, caller, "exchange.extract", ds, purpose, grant, exc) from None
        now, jid = self.clock.now(), job_id or jobs.new_id()
        digest = result_digest(out.data)
        result = {"rows": out.rows, "columns": list(out.columns), "format": out.fmt,
                  "mask_profile": lim.mask_profile, "watermarked": out.watermarked}
        receipt = self._receipt(job_id=jid, kind="extract", ds=ds, query={"format": fmt},
                                eps=0.0, dlt=0.0, digest=digest)
        if job_id is not None:
            job = jobs.update(session, jid, status="done", result={"extract": result},
                              receipt=receipt, finished_at=now)
        else:
            job = jobs.insert(session, job_id=jid, kind="extract", dataset=ds.name,
                              owner_org=ds.owner_org, caller=caller, status="done",
                              query={"format": fmt}, purpose=purpose, grant=grant, now=now,
                              result={"extract": result}, receipt=receipt)
        audit.record(actor=caller, action="exchange.extract", dataset=ds.name, grade=ds.grade,
                     fields=out.columns, rows=out.rows, purpose=purpose, grant=grant,
                     result_digest=digest, labels={"job": jid, "mask_profile": lim.mask_profile})
        return job, out

    # -- approval ------------------------------------------------------------------
    def decide_job(self, session: Session, audit: AuditSink, caller: Caller, job_id: str, *,
                   approve: bool, reason: str) -> Job:
        """Approve (and run, for aggregates) or reject a pending job. Needs a reason."""
        if not reason.strip():
            raise InvalidQuery("a reason is required")
        job = jobs.get_for(session, job_id, caller)
        ds = self.catalog.get(session, job.dataset)
        grant = self._decide(audit, caller, "approve", ds, job.purpose, audit_action="exchange.approve")
        if grant.effect != "allow":
            exc = Refused("approving needs an unconditional allow for the approver")
            raise self._refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc)
        if job.status != "pending_approval":
            raise JobStateError(f"job {job_id} is {job.status}, not pending_approval")
        if job.consumer_id == caller.id:
            exc = Refused("a job cannot be approved or rejected by its own submitter")
            raise self._refuse(audit, caller, "exchange.approve", ds, job.purpose, grant, exc)
        now = self.clock.now()
        action = "exchange.approve" if approve else "exchange.reject"
        audit.record(actor=caller, action=action, dataset=ds.name, grade=ds.grade,
                     purpose=job.purpose, grant=grant, labels={"job": job_id, "reason": reason})
        if not approve:
            return jobs.update(session, job_id, status="rejected", reason=reason,
                               decided_by=caller.id, finished_at=now)
        jobs.update(session, job_id, status="approved", reason=reason, decided_by=caller.id)
        if job.kind != "aggregate":
            return jobs.get(session, job_id)  # the consumer re-sends PSI / fetches the extract
        consumer = Caller(job.consumer_id, "consumer", job.consumer_org)
        try:
            with session.begin_nested():
                return self._run_aggregate(session, audit, consumer, ds,
                                           AggregateQuery.from_json(dict(job.query)), job.purpose,
                                           _grant_of(job.decision), job_id=job_id, existing=True)
        except BudgetExhausted as exc:
            return jobs.update(session, job_id, status="failed", reason=f"{reason}; {exc.reason}",
                               finished_at=now)

    # -- reads -------------------------------------------------------------------
    def job(self, session: Session, audit: AuditSink, caller: Caller, job_id: str) -> Job:
        job = jobs.get_for(session, job_id, caller)
        audit.record(actor=caller, action="exchange.result", dataset=job.dataset,
                     labels={"job": job.id, "status": job.status})
        return job

    def budget_state(self, session: Session, audit: AuditSink, caller: Caller, *,
                     dataset: str) -> budget.BudgetState:
        ds = self.catalog.get(session, dataset)
        grant = self._decide(audit, caller, "aggregate", ds, None, audit_action="exchange.budget")
        lim = limits_of(grant.obligations, self.defaults)
        return budget.state(session, caller.org, ds.name, epsilon_cap=lim.epsilon_cap,
                            delta_cap=lim.delta_cap)

    def set_consent(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                    subjects: Iterable[str], purpose: str, state: str) -> int:
        """Provider (owner org) or admin records granted/withdrawn purposes of subjects."""
        ds = self.catalog.get(session, dataset)
        if caller.role != "admin" and (caller.role != "provider" or caller.org != ds.owner_org):
            exc = Refused("only the dataset's provider records consent")
            raise self._refuse(audit, caller, "exchange.consent", ds, purpose, None, exc)
        n = consent.set_consent(session, dataset=ds.name, hash_key=self.master.subject_key(ds.name),
                                subjects=subjects, purpose=purpose, state=state, now=self.clock.now())
        audit.record(actor=caller, action="exchange.consent", dataset=ds.name, rows=n,
                     purpose=purpose, labels={"state": state})
        return n


def _grant_of(decision: Mapping[str, Any]) -> Grant:
    return Grant(effect="allow", rule_id=decision.get("rule_id"),
                 policy_version=str(decision.get("policy_version", "")),
                 reason=str(decision.get("reason", "")),
                 obligations=dict(decision.get("obligations") or {}))
