"""Scan service: the shared scanners, the asset inventory store, and the redactor.

``build_scanner(container)`` returns one :class:`ScanService` per container (the
Presidio engine is built once, lazily).  The inventory (数据资产中心) keeps one row
per dataset version: a new content fingerprint makes a new version, rescanning the
same content replaces that version's report.  Stores take a session and never commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from desensitize.classify import GRADING_LABELS, DatasetReport, grade_dataset
from desensitize.suspects import redact as redact_suspects
from desensitize.text_scan import TextScanner
from quanguard.inventory import ASSETS

if TYPE_CHECKING:
    import pyarrow as pa

    from desensitize.table_scan import TableScanner
    from quanguard.container import Container


@dataclass(frozen=True)
class Asset:
    """One inventory row: a dataset version and its scan report."""

    id: str
    dataset: str
    version: int
    fingerprint: str
    source: str
    format: str
    rows_scanned: int
    sampled: bool
    dataset_grade: str | None
    k_anonymity: int | None
    report: dict[str, object]
    owner_org: str | None
    scanned_by: str
    scanned_at: datetime

    def summary(self) -> dict[str, object]:
        return {
            "id": self.id, "dataset": self.dataset, "version": self.version,
            "format": self.format, "rows_scanned": self.rows_scanned, "sampled": self.sampled,
            "dataset_grade": self.dataset_grade, "k_anonymity": self.k_anonymity,
            "owner_org": self.owner_org, "scanned_by": self.scanned_by,
            "scanned_at": self.scanned_at.isoformat(),
        }

    def to_dict(self) -> dict[str, object]:
        return {**self.summary(), "fingerprint": self.fingerprint, "source": self.source,
                "report": self.report}


def _asset(row: Any) -> Asset:
    m = row._mapping
    return Asset(**{**dict(m), "report": json.loads(m["report"])})


def save_asset(
    session: Session, *, dataset: str, fingerprint: str, source: str, fmt: str,
    report: DatasetReport, owner_org: str | None, scanned_by: str,
) -> Asset:
    """Insert a new version, or replace the report of the version with this fingerprint."""
    now = datetime.now(UTC)
    payload = json.dumps(report.to_dict(), ensure_ascii=False)
    values = {
        "source": source[:500], "format": fmt, "rows_scanned": report.rows_scanned,
        "sampled": report.sampled, "dataset_grade": report.dataset_grade,
        "k_anonymity": report.k_anonymity, "report": payload, "owner_org": owner_org,
        "scanned_by": scanned_by, "scanned_at": now,
    }
    existing = session.execute(
        sa.select(ASSETS.c.id).where(ASSETS.c.dataset == dataset, ASSETS.c.fingerprint == fingerprint)
    ).first()
    if existing is not None:
        session.execute(ASSETS.update().where(ASSETS.c.id == existing.id).values(**values))
        asset_id = existing.id
    else:
        latest = session.execute(
            sa.select(sa.func.max(ASSETS.c.version)).where(ASSETS.c.dataset == dataset)
        ).scalar()
        asset_id = str(uuid.uuid4())
        session.execute(ASSETS.insert().values(
            id=asset_id, dataset=dataset, version=(latest or 0) + 1, fingerprint=fingerprint, **values,
        ))
    found = get_asset(session, asset_id)
    assert found is not None
    return found


def get_asset(session: Session, asset_id: str) -> Asset | None:
    row = session.execute(sa.select(ASSETS).where(ASSETS.c.id == asset_id)).first()
    return _asset(row) if row is not None else None


def list_assets(session: Session, *, dataset: str | None = None, owner_org: str | None = None,
                limit: int = 100, offset: int = 0) -> list[Asset]:
    q = sa.select(ASSETS).order_by(ASSETS.c.dataset, ASSETS.c.version.desc())
    if dataset is not None:
        q = q.where(ASSETS.c.dataset == dataset)
    if owner_org is not None:
        q = q.where(ASSETS.c.owner_org == owner_org)
    return [_asset(r) for r in session.execute(q.limit(limit).offset(offset))]


class ScanService:
    """Scanners shared by one container, graded by its policy."""

    def __init__(self, container: Container) -> None:
        self._container = container
        self.text = TextScanner()
        # the grades of the active policy version, kept while that version is active
        self._grades: tuple[object, dict[str, str], list[str]] | None = None

    def table_scanner(self) -> TableScanner:
        # pyarrow and the recognizers load with the first table scan, not with the service
        # (the audit trail's redactor needs the text scanner only)
        from desensitize.table_scan import TableScanner

        return TableScanner(text_scanner=self.text)

    def grade_batches(self, batches: Iterable[pa.RecordBatch], *, sampled: bool = True,
                      progress: Callable[[int], None] | None = None) -> DatasetReport:
        """Scan ``batches`` (string columns) and grade the report by the active policy: the
        first step of every mask, shared by files, records and the exchange."""
        return self.grade(self.table_scanner().scan(batches, sampled=sampled, progress=progress))

    def grade(self, report: DatasetReport) -> DatasetReport:
        """Attach the policy's grades (entity -> grade, grade order) to a report."""
        active = self._container.policy.active  # one policy version throughout
        cached = self._grades
        if cached is None or cached[0] is not active:
            from desensitize.findings import ENTITIES

            # entities and the labels of columns without personal information (unknown
            # is never public: policies/grading.yaml grades UNRECOGNISED, KEY_LIKE, ...)
            grades = {e: active.entity_grade(e) for e in (*ENTITIES, *GRADING_LABELS)}
            cached = self._grades = (active, grades, list(active.grade_order))
        return grade_dataset(report, dict(cached[1]), list(cached[2]))

    def entity_grade(self, entity: str) -> str:
        return str(self._container.policy.entity_grade(entity))


def build_scanner(container: Container) -> ScanService:
    return ScanService(container)


def make_redactor(container: Container) -> Callable[[str], str]:
    """A function that replaces every finding in a free text by ``<ENTITY>``.

    Conservative: ID- and card-shaped digit runs are replaced too when their check
    character fails (a mistyped ID is still a person's ID)."""
    scanner: TextScanner = container.scanner.text

    def redact(text: str) -> str:
        if not text:
            return text
        found = [(f.start, f.end, f.entity) for f in scanner.scan(text)]
        return redact_suspects(text, found)

    return redact
