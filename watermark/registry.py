"""Registry of issued copies (SQLAlchemy Core): the list the detector tests against.

The store takes a ``Session`` and never commits; the caller owns the transaction.
Only metadata is kept — recipient, dataset, time, columns, plan, codeword, output digest —
never the data itself. The plan is JSON: version-2 plans add carriers, levels and the
quasi-identifier sets rows are found by (column names and forms only); records written
before carry no version and are read back as version-1 plans, so no migration is needed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.orm import Session

from watermark.models import EmbedReport, IssuedCopy, Plan

METADATA = MetaData()

COPIES = Table(
    "watermark_copies",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("dataset", String(200), nullable=False, index=True),
    Column("recipient", String(200), nullable=False, index=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("issued_by", String(200), nullable=False),
    Column("columns", JSON, nullable=False),
    Column("plan", JSON, nullable=False),
    Column("codeword", String(1024), nullable=False),
    Column("key_fingerprint", String(64), nullable=False),
    Column("output_digest", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("marked_cells", Integer, nullable=False),
    Column("canary_keys", JSON, nullable=False),
)


@dataclass(frozen=True)
class CopyRecord:
    """A registry row as read back."""

    id: str
    dataset: str
    recipient: str
    issued_at: dt.datetime
    issued_by: str
    columns: tuple[str, ...]
    rows: int
    marked_cells: int
    output_digest: str
    copy: IssuedCopy

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "dataset": self.dataset, "recipient": self.recipient,
            "issued_at": self.issued_at.isoformat(), "issued_by": self.issued_by,
            "columns": list(self.columns), "rows": self.rows,
            "marked_cells": self.marked_cells, "output_digest": self.output_digest,
            "plan": self.copy.plan.to_dict(), "key_fingerprint": self.copy.key_fingerprint,
        }


def add_copy(session: Session, *, dataset: str, report: EmbedReport, columns: list[str],
             output_digest: str, issued_by: str,
             issued_at: dt.datetime | None = None) -> str:
    """Insert one issued copy; returns its id."""
    copy_id = str(uuid.uuid4())
    session.execute(COPIES.insert().values(
        id=copy_id, dataset=dataset, recipient=report.recipient,
        issued_at=issued_at or dt.datetime.now(dt.UTC), issued_by=issued_by,
        columns=list(columns), plan=report.plan.to_dict(), codeword=report.codeword,
        key_fingerprint=report.key_fingerprint, output_digest=output_digest,
        rows=report.rows, marked_cells=report.marked_cells,
        canary_keys=list(report.canary_keys)))
    return copy_id


def _record(row: Any) -> CopyRecord:
    issued = row.issued_at
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=dt.UTC)
    copy = IssuedCopy(recipient=row.recipient, dataset=row.dataset,
                      plan=Plan.from_dict(row.plan), codeword=row.codeword,
                      key_fingerprint=row.key_fingerprint,
                      canary_keys=tuple(row.canary_keys or ()), copy_id=row.id,
                      rows=int(row.rows or 0))
    return CopyRecord(row.id, row.dataset, row.recipient, issued, row.issued_by,
                      tuple(row.columns), row.rows, row.marked_cells, row.output_digest, copy)


def list_copies(session: Session, dataset: str | None = None) -> list[CopyRecord]:
    """Issued copies, oldest first, of one dataset or of all."""
    q = select(COPIES).order_by(COPIES.c.issued_at, COPIES.c.id)
    if dataset is not None:
        q = q.where(COPIES.c.dataset == dataset)
    return [_record(r) for r in session.execute(q)]


def datasets(session: Session) -> list[str]:
    """Names of datasets with at least one issued copy."""
    q = select(COPIES.c.dataset).distinct().order_by(COPIES.c.dataset)
    return [r[0] for r in session.execute(q)]
