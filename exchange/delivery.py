"""What leaves the exchange besides aggregates: PSI answers and extracts.

An extract runs in three phases so that masking and marking — which may write through
services with their own transactions (the watermark registry) — happen outside the
caller's transaction: :meth:`extract_prepare` (decide, check, decrypt, drop withdrawn
subjects) → :meth:`extract_render` (mask, mark, serialise; no session) →
:meth:`extract_finish` (job, receipt, audit). :meth:`extract` chains them in one session.

:class:`Delivery` is what :attr:`exchange.Exchange.delivery` returns: it works through
the exchange's parts and the steps it shares with aggregates (:class:`~exchange.steps.Steps`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import budget, jobs, psi_limits
from exchange.catalog import Dataset
from exchange.errors import InvalidQuery, JobStateError, Refused
from exchange.extract import ExtractOutput, make_extract
from exchange.jobs import Job
from exchange.limits import Limits, limits_of
from exchange.ports import AuditSink, Caller, Grant
from exchange.psi import PsiAnswer, request_size, serve
from exchange.receipts import result_digest
from exchange.steps import Steps

__all__ = ["Delivery", "ExtractTicket"]


@dataclass(frozen=True)
class ExtractTicket:
    """Everything phase 2 and 3 of an extract need; holds the decrypted rows in memory."""

    dataset: Dataset
    grant: Grant
    limits: Limits
    table: pa.Table
    fmt: str
    purpose: str | None
    job_id: str
    existing: bool
    approved_by: str | None = None  # the approver of an approved job that runs


class Delivery:
    """PSI answers and extracts of one exchange, through its parts and shared steps."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps

    def _approved(self, session: Session, audit: AuditSink, caller: Caller, job_id: str,
                  kind: str, ds: Dataset, *, digest: str | None,
                  purpose: str | None) -> tuple[Job, Grant]:
        """The approved job ``job_id`` and its grant, when the call asks exactly what was
        approved (same request digest, same purpose) before the approval expired, and the
        policy in force still allows it (``Steps.in_force``: its grant, its obligations).

        A call that differs, or comes late, is refused and recorded (the job stays
        approved, or becomes ``expired``)."""
        job = jobs.get_for(session, job_id, caller)
        if job.kind != kind or job.status != "approved" or job.consumer_id != caller.id \
                or job.dataset != ds.name:
            raise JobStateError(f"job {job_id} is not an approved {kind} job of yours on {ds.name}")
        expires = jobs.aware(job.expires_at)
        if expires is not None and self.steps.clock.now() > expires:
            raise self.steps.expired(session, audit, caller, job, ds, "the approval")
        differs = []
        if digest is not None and job.request_digest is not None and digest != job.request_digest:
            differs.append("request")
        if purpose is not None and purpose != job.purpose:
            differs.append("purpose")
        if differs:
            exc = Refused(f"job {job_id}: the {' and '.join(differs)} differ(s) from what was "
                          f"approved ({job.request_size or '-'} item(s), digest "
                          f"{(job.request_digest or '')[:16]}); an approval runs only the "
                          f"approved request")
            raise self.steps.refuse(audit, caller, f"exchange.{kind}", ds, job.purpose, None, exc,
                               labels={"job": job_id, "approved_digest": job.request_digest,
                                       "sent_digest": digest})
        return job, self.steps.in_force(audit, caller, job, ds, actor=caller,
                                        audit_action=f"exchange.{kind}")

    # -- PSI -----------------------------------------------------------------------
    def psi_terms(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                  purpose: str | None = None) -> dict[str, Any]:
        """What a PSI on ``dataset`` would be allowed: effect, reveal mode, id limit."""
        ds = self.steps.catalog.get(session, dataset)
        grant = self.steps.decide(audit, caller, "psi", ds, purpose, audit_action="exchange.psi_terms")
        lim = limits_of(grant.obligations, self.steps.defaults)
        return {"dataset": ds.name, "effect": grant.effect, "reveal": lim.psi_reveal,
                "max_ids": lim.row_limit or self.steps.defaults.psi_max_ids,
                "min_ids": lim.psi_min_set_size, "max_requests": lim.psi_max_requests,
                "max_items": lim.psi_max_items, "period_days": lim.psi_period_days,
                "count_epsilon": lim.psi_count_epsilon if lim.psi_reveal == "count" else None,
                "approval_ttl_days": lim.approval_ttl_days}

    def psi(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
            request: bytes | None, purpose: str | None = None,
            job_id: str | None = None) -> tuple[Job, PsiAnswer | None]:
        """Answer a blinded request; pending (no answer) when approval is required.

        With ``job_id`` the approved request runs: ``request`` may be omitted (the stored
        one runs) and must otherwise be byte for byte the one approved."""
        ds = self.steps.catalog.get(session, dataset)
        if "psi" not in ds.computations or not ds.key_columns:
            exc = Refused(f"dataset {ds.name!r} does not offer PSI (needs a key column and 'psi')")
            raise self.steps.refuse(audit, caller, "exchange.psi", ds, purpose, None, exc)
        if job_id is not None:
            sent = hashlib.sha256(request).hexdigest() if request is not None else None
            job, grant = self._approved(session, audit, caller, job_id, "psi", ds,
                                        digest=sent, purpose=purpose)
            approver = job.decided_by
            request = jobs.request_body(session, job_id) if request is None else request
            if request is None:
                raise JobStateError(f"job {job_id} has no stored request; submit it again")
            purpose = job.purpose
        elif request is None:
            raise InvalidQuery("a PSI request is required (or --job for an approved one)")
        else:
            approver = None
        n_items = request_size(request)
        digest = hashlib.sha256(request).hexdigest()
        query = {"client_items": n_items, "key_column": ds.key_columns[0], "request_digest": digest}
        if job_id is None:
            grant = self.steps.decide(audit, caller, "psi", ds, purpose, audit_action="exchange.psi")
            lim = limits_of(grant.obligations, self.steps.defaults)
            try:
                self._psi_guard(session, ds, caller, lim, n_items)
            except Refused as exc:
                raise self.steps.refuse(audit, caller, "exchange.psi", ds, purpose, grant, exc,
                                   labels={"client_items": n_items}) from None
            if grant.effect == "approval_required":
                return self.steps.pending(session, audit, caller, "psi", ds, query, purpose, grant,
                                     digest=digest, size=n_items, body=request), None
        lim = limits_of(grant.obligations, self.steps.defaults)
        table = self.steps.table(session, ds, purpose, [ds.key_columns[0]])
        col = table.column(ds.key_columns[0]).drop_null().cast(pa.string())
        items = list(dict.fromkeys(str(v).strip() for v in col.to_pylist()))
        noisy = lim.psi_count_epsilon if lim.psi_reveal == "count" else None
        now, jid = self.steps.clock.now(), job_id or jobs.new_id()
        try:
            if noisy is not None:  # the count's ε comes out of the same budget as aggregates
                budget.precheck(session, consumer=caller.org, dataset=self.steps.budget_key(ds, lim),
                                epsilon=noisy, epsilon_cap=lim.epsilon_cap, delta_cap=lim.delta_cap)
            answer = serve(items, request, reveal=lim.psi_reveal,
                           max_client_items=lim.row_limit or self.steps.defaults.psi_max_ids,
                           count_epsilon=noisy)
            if noisy is not None:
                budget.charge(session, consumer=caller.org, dataset=self.steps.budget_key(ds, lim),
                              job_id=jid, epsilon=noisy, delta=0.0, epsilon_cap=lim.epsilon_cap,
                              delta_cap=lim.delta_cap, now=now)
        except Refused as exc:
            raise self.steps.refuse(audit, caller, "exchange.psi", ds, purpose, grant, exc) from None
        result: dict[str, Any] = {"reveal": answer.reveal, "client_items": n_items}
        if answer.noise is not None:
            result["noise"] = answer.noise.to_json()
        receipt = self.steps.receipt(job_id=jid, kind="psi", ds=ds, query=query,
                                     eps=noisy or 0.0, dlt=0.0,
                                     digest=answer.digest_with(self.steps.signer.suite),
                                     consumer=caller, purpose=purpose, grant=grant,
                                     approved_by=approver)
        if job_id is not None:
            job = jobs.advance(session, jid, from_status="approved", status="done", result=result,
                               receipt=receipt, finished_at=now)
        else:
            job = jobs.insert(session, job_id=jid, kind="psi", dataset=ds.name,
                              owner_org=ds.owner_org, caller=caller, status="done", query=query,
                              purpose=purpose, grant=grant, now=now, result=result, receipt=receipt,
                              request_digest=digest, request_size=n_items)
        audit.record(actor=caller, action="exchange.psi", dataset=ds.name, grade=ds.grade,
                     fields=(ds.key_columns[0],), rows=n_items, purpose=purpose,
                     grant=grant, result_digest=answer.digest_with(self.steps.signer.suite),
                     labels={"job": jid, "reveal": answer.reveal, "epsilon": noisy})
        return job, answer

    def _psi_guard(self, session: Session, ds: Dataset, caller: Caller, lim: Limits,
                   n_items: int) -> None:
        """Size and rate limits of a new PSI request (see :mod:`exchange.psi_limits`)."""
        cap = lim.row_limit or self.steps.defaults.psi_max_ids
        if n_items > cap:
            raise Refused(f"PSI request holds {n_items} identifiers; the limit is {cap}")
        if lim.psi_max_requests is not None or lim.psi_max_items is not None:
            # one PSI request per family at a time counts and inserts (PostgreSQL row lock;
            # SQLite's writer lock already serialises them)
            psi_limits.lock_family(session, ds.budget_family)
        psi_limits.check(session, lim, consumer_org=caller.org,
                         datasets=self.steps.catalog.family_members(session, ds.budget_family),
                         n_items=n_items, now=self.steps.clock.now())

    # -- extract -------------------------------------------------------------------
    def extract_prepare(self, session: Session, audit: AuditSink, caller: Caller, *,
                        dataset: str, fmt: str = "csv", purpose: str | None = None,
                        job_id: str | None = None) -> ExtractTicket | Job:
        """Phase 1: decide and check; a pending Job when approval is required."""
        ds = self.steps.catalog.get(session, dataset)
        if job_id is not None:
            job = jobs.get_for(session, job_id, caller)
            sent = jobs.request_digest({"format": fmt}, job.purpose if purpose is None else purpose)
            job, grant = self._approved(session, audit, caller, job_id, "extract", ds,
                                        digest=sent, purpose=purpose)
            purpose, approver = job.purpose, job.decided_by
        else:
            approver = None
            grant = self.steps.decide(audit, caller, "extract", ds, purpose, audit_action="exchange.extract")
            if grant.effect == "approval_required":
                return self.steps.pending(session, audit, caller, "extract", ds, {"format": fmt},
                                     purpose, grant)
        if "extract" not in ds.computations:
            exc = Refused(f"dataset {ds.name!r} does not offer extracts")
            raise self.steps.refuse(audit, caller, "exchange.extract", ds, purpose, grant, exc)
        return ExtractTicket(ds, grant, limits_of(grant.obligations, self.steps.defaults),
                             self.steps.table(session, ds, purpose), fmt, purpose,
                             job_id or jobs.new_id(), job_id is not None, approver)

    def extract_render(self, ticket: ExtractTicket, caller: Caller) -> ExtractOutput:
        """Phase 2 (no session): mask by the policy's profile, mark for ``caller``."""
        lim = ticket.limits
        return make_extract(ticket.table, masker=self.steps.masker, watermarker=self.steps.watermarker,
                            profile=lim.mask_profile, recipient=caller.id,
                            watermark=lim.watermark, fmt=ticket.fmt, dataset=ticket.dataset.name,
                            row_limit=lim.row_limit, grade=ticket.dataset.grade)

    def extract_refused(self, audit: AuditSink, caller: Caller, ticket: ExtractTicket,
                        exc: Refused) -> Refused:
        """Record a phase-2 refusal (the caller commits it) and return it to raise."""
        return self.steps.refuse(audit, caller, "exchange.extract", ticket.dataset, ticket.purpose,
                            ticket.grant, exc)

    def extract_finish(self, session: Session, audit: AuditSink, caller: Caller,
                       ticket: ExtractTicket, out: ExtractOutput) -> Job:
        """Phase 3: job record, receipt over the delivered bytes, audit event."""
        ds, lim, jid = ticket.dataset, ticket.limits, ticket.job_id
        now, digest = self.steps.clock.now(), result_digest(out.data, self.steps.signer.suite)
        result = {"extract": {"rows": out.rows, "columns": list(out.columns), "format": out.fmt,
                              "mask_profile": lim.mask_profile, "watermarked": out.watermarked}}
        query = {"format": ticket.fmt}
        receipt = self.steps.receipt(job_id=jid, kind="extract", ds=ds, query=query,
                                     eps=0.0, dlt=0.0, digest=digest, consumer=caller,
                                     purpose=ticket.purpose, grant=ticket.grant,
                                     approved_by=ticket.approved_by)
        if ticket.existing:
            job = jobs.advance(session, jid, from_status="approved", status="done", result=result,
                               receipt=receipt, finished_at=now)
        else:
            job = jobs.insert(session, job_id=jid, kind="extract", dataset=ds.name,
                              owner_org=ds.owner_org, caller=caller, status="done", query=query,
                              purpose=ticket.purpose, grant=ticket.grant, now=now, result=result,
                              receipt=receipt)
        audit.record(actor=caller, action="exchange.extract", dataset=ds.name, grade=ds.grade,
                     fields=out.columns, rows=out.rows, purpose=ticket.purpose, grant=ticket.grant,
                     result_digest=digest, labels={"job": jid, "mask_profile": lim.mask_profile})
        return job

    def extract(self, session: Session, audit: AuditSink, caller: Caller, *, dataset: str,
                fmt: str = "csv", purpose: str | None = None,
                job_id: str | None = None) -> tuple[Job, ExtractOutput | None]:
        """All three phases in one session (for ports that do not open transactions)."""
        ticket = self.extract_prepare(session, audit, caller, dataset=dataset, fmt=fmt,
                                      purpose=purpose, job_id=job_id)
        if isinstance(ticket, Job):
            return ticket, None
        try:
            out = self.extract_render(ticket, caller)
        except Refused as exc:
            raise self.extract_refused(audit, caller, ticket, exc) from None
        return self.extract_finish(session, audit, caller, ticket, out), out
