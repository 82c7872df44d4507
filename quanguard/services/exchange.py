"""Wiring of the privacy exchange: the real objects behind ``exchange.ports``.

``build_exchange(container)`` builds one :class:`exchange.Exchange` per container with
the scan service as its scanner and the mask and watermark services for extracts; every
part is required (a missing one is a startup error, never a skipped check). Decisions go
through the one gate: :class:`GateDecider` binds :func:`quanguard.gate.authorize` to the
request, and the use cases hand it to the exchange with ``Exchange.with_decider``.
Keys live in ``settings.key_dir``; encrypted datasets under ``settings.data_dir / "exchange"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import (
    Caller,
    Catalog,
    Exchange,
    Grading,
    Grant,
    MaskedTable,
    MasterKey,
    ReceiptSigner,
)
from quanguard.auth import Principal
from quanguard.errors import Forbidden
from quanguard.gate import RequestContext, authorize, record_denial
from quanguard.policy import Resource

if TYPE_CHECKING:
    from quanguard.container import Container
    from quanguard.policy.model import Decision

__all__ = ["AuditAdapter", "GateDecider", "GateRefusal", "build_exchange", "caller_of"]

_EFFECTS = ("allow", "deny", "approval_required")  # the gate returns every decision to GateDecider

_SCAN_SAMPLE = 20_000  # rows graded at registration (evenly spread, first and last included)
_MASK_SAMPLE = 10_000  # rows a masking plan is made from
# masking operators whose output still looks like the entity by design (format-preserving
# or kept): a re-scan finding the entity in such a column is not a leak
_FORMAT_KEEPING = frozenset({"keep", "fpe", "fake", "encrypt", "generalize", "noise"})
# masking operators that make values up (fakes, keyed pseudonyms): the watermark may
# mark them by a keyed choice of their free character
_MADE_UP = frozenset({"fake", "hash"})


def caller_of(principal: Principal) -> Caller:
    return Caller(principal.id, principal.role, principal.org)


def _principal(caller: Caller, known: Principal | None = None) -> Principal:
    if known is not None and known.id == caller.id:
        return known
    return Principal(id=caller.id, name=caller.id, role=caller.role, org=caller.org)


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class GateRefusal(Exception):
    """A refusal of the gate, raised out of the request's transaction to be recorded
    after it (on SQLite the open transaction holds the write lock the record needs)."""

    def __init__(self, decision: Decision, action: str, audit_action: str, resource: Resource) -> None:
        super().__init__(decision.reason)
        self.decision, self.action, self.audit_action = decision, action, audit_action
        self.resource = resource

    def record_and_raise(self, container: Container, principal: Principal,
                         ctx: RequestContext | None) -> None:
        """Commit the ``deny`` event with the gate's ``record_denial``; raise Forbidden."""
        d, res = self.decision, self.resource
        reason = d.reason
        if d.effect == "approval_required":
            reason = f"{self.action} needs an unconditional allow ({d.reason})"
        record_denial(container, principal, self.audit_action, ctx, decision=d,
                      dataset=res.dataset, grade=res.grade, purpose=res.purpose, reason=reason)
        what = f" on {res.dataset!r}" if res.dataset else ""
        raise Forbidden(f"policy does not allow {self.action}{what}: {reason}",
                        rule_id=d.rule_id, policy_version=d.policy_version)


class GateDecider:
    """``exchange.ports.Decider`` through the one gate, bound to one request.

    The gate decides; an effect the exchange does not accept is raised as
    :class:`GateRefusal`, which the use case records with the gate's ``record_denial``
    once its transaction is closed, and turns into ``Forbidden``."""

    def __init__(self, container: Container, principal: Principal, ctx: RequestContext | None) -> None:
        self._container, self._principal, self._ctx = container, principal, ctx

    def decide(self, caller: Caller, action: str, *, grade: str | None, dataset: str | None,
               owner_org: str | None, purpose: str | None = None, audit_action: str | None = None,
               accept: tuple[str, ...] = ("allow", "approval_required")) -> Grant:
        resource = Resource(grade=grade, dataset=dataset, owner_org=owner_org, purpose=purpose)
        d = authorize(self._container, _principal(caller, self._principal), action, resource,
                      self._ctx, accept=_EFFECTS, audit_action=audit_action)
        if d.effect not in accept:
            raise GateRefusal(d, action, audit_action or f"exchange.{action}", resource)
        return Grant(effect=str(d.effect), rule_id=d.rule_id, policy_version=str(d.policy_version),
                     reason=str(d.reason), obligations=dict(d.obligations or {}), raw=d)


class _RefusingDecider:
    """The decider an exchange has before a request binds the gate: it refuses all."""

    def decide(self, caller: Caller, action: str, **_: object) -> Grant:
        return Grant(effect="deny", rule_id=None, policy_version="",
                     reason="no request-bound decider (use Exchange.with_decider)")


class _ScanAdapter:
    """Scan and grade a table with the scan service; entity columns are identifiers."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def grade_table(self, table: pa.Table) -> Grading:
        svc = self._container.scanner
        if table.num_rows > _SCAN_SAMPLE:  # an evenly spread sample, first and last rows included
            step = table.num_rows / _SCAN_SAMPLE
            table = table.take(pa.array(sorted({int(i * step) for i in range(_SCAN_SAMPLE)}
                                               | {table.num_rows - 1})))
        strings = pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})
        report = svc.grade_batches(strings.to_batches(max_chunksize=10_000))
        # Unknown means sensitive: a table with nothing graded (no rows, say) takes the
        # grade of unrecognised data, never the lowest one.
        grade = report.dataset_grade or self._container.policy.entity_grade("UNRECOGNISED")
        columns = {c.name: c.grade for c in report.columns if c.grade}
        identifiers = frozenset(c.name for c in report.columns if c.entity or c.contains)
        # the columns that name a person: a table holding one must say whose each row is
        # (an unknown entity counts: fail closed)
        people = frozenset(c.name for c in report.columns
                           if c.entity and c.entity not in _NOT_PEOPLE)
        return Grading(grade=grade, columns=columns, identifiers=identifiers, people=people)


# entities that name no person: an organisation's code, a place
_NOT_PEOPLE = frozenset({"CN_USCC", "LOCATION", "ORGANIZATION"})


class _MaskAdapter:
    """Mask with the mask service: scan + grade the table, plan by profile, apply; and
    re-scan the whole copy on its way out."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def mask_table(self, table: pa.Table, profile: str) -> MaskedTable:
        """The masked copy and the columns the plan made up (``fake``/``hash``): those
        carry watermarks by a keyed choice of their free character."""
        service = self._container.masker
        strings = _strings(table)
        scanner = self._container.scanner
        report = scanner.grade_batches(strings.slice(0, _MASK_SAMPLE).to_batches(),
                                       sampled=table.num_rows > _MASK_SAMPLE)
        plan = service.plan(report, profile)
        masked, _stats = service.mask_table(strings, plan)
        made_up = tuple(c.name for c in plan.columns
                        if c.op in _MADE_UP and c.name in masked.column_names)
        return MaskedTable(masked, made_up)

    def leaks(self, table: pa.Table, profile: str) -> list[str]:
        """Scan every row of the copy; a column holding an entity that the profile
        would hide (mask, redact, replace, suppress, hash, spans) is a leak.

        Two looks: the column classifier (entities that dominate a column, and those in
        free text), and — because a few identifiers among other values never dominate a
        column — every value against the structured recognizers (resident id, phone,
        bank card, ...), where one validated value is enough when at least half of the
        candidates of that column validate (random digits rarely pass a checksum)."""
        from desensitize.classify import ColumnReport, DatasetReport

        service, scanner = self._container.masker, self._container.scanner
        strings = _strings(table)
        report = scanner.grade_batches(strings.to_batches(max_chunksize=10_000))
        found: dict[str, list[str]] = {}
        for col in report.columns:
            for entity in (col.entity, *(name for name, _ in col.contains)):
                if entity:
                    found.setdefault(col.name, []).append(entity)
        for name in strings.column_names:
            for entity in _structured_hits(strings.column(name)):
                found.setdefault(name, []).append(entity)
        out = []
        for name, entities in found.items():
            for entity in dict.fromkeys(entities):
                probe = scanner.grade(DatasetReport(
                    columns=(ColumnReport(name, entity, 1.0, 1.0, non_empty=1),),
                    rows_scanned=1, sampled=False))
                op = service.plan(probe, profile).columns[0].op
                if op not in _FORMAT_KEEPING:
                    grade = probe.columns[0].grade or "ungraded"
                    out.append(f"column {name!r} holds {entity} ({grade}; profile {profile!r} "
                               f"would {op} it)")
        return out


def _structured_hits(column: pa.ChunkedArray, cap: int = 500) -> list[str]:
    """Structured entities with validated values in ``column`` (see ``leaks``)."""
    import pyarrow.compute as pc

    from desensitize.table_scan import kernels

    values = pc.utf8_trim_whitespace(column.combine_chunks()).drop_null()
    lengths = pc.utf8_length(values)
    hits = []
    for k in kernels():
        if k.entity in ("PERSON", "LOCATION"):
            continue  # weak validators: the column classifier judges these
        fits = pc.and_(pc.greater_equal(lengths, k.min_len), pc.less_equal(lengths, k.max_len))
        cands = values.filter(fits)
        if len(cands) == 0:
            continue
        cands = cands.filter(pc.match_substring_regex(cands, k.pattern))
        if len(cands) == 0:
            continue
        sample = cands.slice(0, cap).to_pylist()
        ok = sum(1 for v in sample if k.validate(v))
        if ok and ok * 2 >= len(sample):
            hits.append(k.entity)
    return hits


def _strings(table: pa.Table) -> pa.Table:
    return pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})


class _WatermarkAdapter:
    def __init__(self, container: Container) -> None:
        self._container = container

    def embed_table(self, table: pa.Table, recipient: str, *, dataset: str,
                    pseudonyms: tuple[str, ...] = (), grade: str | None = None) -> pa.Table:
        return self._container.watermarker.embed_table(table, recipient, dataset=dataset,
                                                       pseudonyms=pseudonyms, grade=grade)


class AuditAdapter:
    """``exchange.ports.AuditSink`` bound to one session and request."""

    def __init__(self, container: Container, session: Session, principal: Principal, *,
                 source_ip: str | None = None, request_id: str | None = None) -> None:
        self._container, self._session, self._principal = container, session, principal
        self._source_ip, self._request_id = source_ip, request_id
        self.failures = 0  # refusals recorded in this transaction

    def record(self, *, actor: Caller, action: str, dataset: str | None = None,
               grade: str | None = None, fields: tuple[str, ...] = (), rows: int | None = None,
               purpose: str | None = None, grant: Grant | None = None, outcome: str = "success",
               result_digest: str | None = None, labels: Mapping[str, object] | None = None) -> None:
        audit = self._container.audit
        lab = {k: v for k, v in (labels or {}).items()}
        if outcome not in ("success",):
            lab["status"] = outcome
        if outcome in ("denied", "failure"):
            self.failures += 1
        audit.record(
            self._session, actor=_principal(actor, self._principal), action=action,
            dataset=dataset, fields=tuple(fields), grade=grade, rows=rows, purpose=purpose,
            decision=cast("Decision", grant.raw) if grant is not None else None,  # GateDecider's
            outcome=outcome, source_ip=self._source_ip,  # normalized by the audit service
            request_id=self._request_id, result_digest=result_digest, labels=lab or None,
        )


def build_exchange(container: Container) -> Exchange:
    settings = container.settings
    for part in ("audit", "policy", "scanner", "masker", "watermarker"):
        getattr(container, part)  # a missing part fails here, not silently per request
    master = MasterKey.from_dir(settings.key_dir, settings.suite)
    return Exchange(
        catalog=Catalog(settings.data_dir / "exchange", master), master=master,
        signer=ReceiptSigner.from_dir(settings.key_dir, settings.suite),
        decider=_RefusingDecider(),
        scanner=_ScanAdapter(container), clock=_SystemClock(),
        masker=_MaskAdapter(container), watermarker=_WatermarkAdapter(container),
    )
