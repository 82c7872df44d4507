"""Wiring of the privacy exchange: the real objects behind ``exchange.ports``.

``build_exchange(container)`` builds one :class:`exchange.Exchange` per container with
the policy engine as its decider, the scan service as its scanner, and the mask and
watermark services (when this build has them) for extracts. Keys live in
``settings.key_dir``; encrypted datasets under ``settings.data_dir / "exchange"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from exchange import Caller, Catalog, Exchange, Grading, Grant, MasterKey, ReceiptSigner
from quanguard.auth import Principal

__all__ = ["AuditAdapter", "build_exchange", "caller_of"]

_SCAN_SAMPLE = 20_000
_OUTCOMES = {"success": "success", "denied": "failure", "pending": "unknown", "failure": "failure"}


def caller_of(principal: Principal) -> Caller:
    return Caller(principal.id, principal.role, principal.org)


def _principal(caller: Caller, known: Principal | None = None) -> Principal:
    if known is not None and known.id == caller.id:
        return known
    return Principal(id=caller.id, name=caller.id, role=caller.role, org=caller.org)


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class _PolicyDecider:
    def __init__(self, container: Any) -> None:
        self._container = container

    def decide(self, caller: Caller, action: str, *, grade: str | None, dataset: str | None,
               owner_org: str | None, purpose: str | None = None) -> Grant:
        from quanguard.policy import Resource

        d = self._container.policy.decide(
            _principal(caller), action,
            Resource(grade=grade, dataset=dataset, owner_org=owner_org, purpose=purpose))
        return Grant(effect=str(d.effect), rule_id=d.rule_id, policy_version=str(d.policy_version),
                     reason=str(d.reason), obligations=dict(d.obligations or {}), raw=d)


class _ScanAdapter:
    """Scan and grade a table with the scan service; entity columns are identifiers."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def grade_table(self, table: pa.Table) -> Grading:
        svc = self._container.scanner
        if table.num_rows > _SCAN_SAMPLE:  # an evenly spread sample, first and last rows included
            step = table.num_rows / _SCAN_SAMPLE
            table = table.take(pa.array(sorted({int(i * step) for i in range(_SCAN_SAMPLE)}
                                               | {table.num_rows - 1})))
        strings = pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})
        report = svc.grade(svc.table_scanner().scan(strings.to_batches(max_chunksize=10_000)))
        order = list(self._container.policy.grade_order)
        grade = report.dataset_grade or (order[0] if order else "L1")
        columns = {c.name: c.grade for c in report.columns if c.grade}
        identifiers = frozenset(c.name for c in report.columns if c.entity or c.contains)
        return Grading(grade=grade, columns=columns, identifiers=identifiers)


class _MaskAdapter:
    """Mask with the mask service: scan + grade the table, plan by profile, apply."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def mask_table(self, table: pa.Table, profile: str) -> pa.Table:
        from desensitize.masker import mask_table

        service = self._container.masker
        strings = pa.table({n: table.column(n).cast(pa.string()) for n in table.column_names})
        scanner = self._container.scanner
        report = scanner.grade(scanner.table_scanner().scan(
            strings.slice(0, 10_000).to_batches(), sampled=True))
        plan = service.plan(report, profile)
        finder = service.span_finder() if any(c.op == "spans" for c in plan.columns) else None
        masked, _stats = mask_table(strings, plan, keyring=service.keyring(), span_finder=finder)
        return masked


class _WatermarkAdapter:
    def __init__(self, container: Any) -> None:
        self._container = container

    def embed_table(self, table: pa.Table, recipient: str, *, dataset: str) -> pa.Table:
        out = self._container.watermarker.embed_table(table, recipient, dataset=dataset)
        return out  # type: ignore[no-any-return]


def _available(container: Any, name: str, method: str) -> bool:
    try:
        return callable(getattr(getattr(container, name), method, None))
    except ImportError:  # the area is not wired in this build
        return False


class AuditAdapter:
    """``exchange.ports.AuditSink`` bound to one session and request."""

    def __init__(self, container: Any, session: Session, principal: Principal, *,
                 source_ip: str | None = None, request_id: str | None = None) -> None:
        self._container, self._session, self._principal = container, session, principal
        self._source_ip, self._request_id = source_ip, request_id

    def record(self, *, actor: Caller, action: str, dataset: str | None = None,
               grade: str | None = None, fields: tuple[str, ...] = (), rows: int | None = None,
               purpose: str | None = None, grant: Grant | None = None, outcome: str = "success",
               result_digest: str | None = None, labels: Mapping[str, Any] | None = None) -> None:
        try:
            audit = self._container.audit
        except ImportError:  # the audit trail is not wired in this build
            return
        lab = {k: v for k, v in (labels or {}).items()}
        if outcome not in ("success",):
            lab["status"] = outcome
        audit.record(
            self._session, actor=_principal(actor, self._principal), action=action,
            dataset=dataset, fields=tuple(fields), grade=grade, rows=rows, purpose=purpose,
            decision=grant.raw if grant is not None else None,
            outcome=_OUTCOMES.get(outcome, "unknown"), source_ip=self._source_ip,
            request_id=self._request_id, result_digest=result_digest, labels=lab or None,
        )


def build_exchange(container: Any) -> Exchange:
    settings = container.settings
    master = MasterKey.from_dir(settings.key_dir, settings.suite)
    return Exchange(
        catalog=Catalog(settings.data_dir / "exchange", master), master=master,
        signer=ReceiptSigner.from_dir(settings.key_dir, settings.suite),
        decider=_PolicyDecider(container),
        scanner=_ScanAdapter(container), clock=_SystemClock(),
        masker=_MaskAdapter(container) if _available(container, "masker", "plan") else None,
        watermarker=(_WatermarkAdapter(container)
                     if _available(container, "watermarker", "embed_table") else None),
    )
