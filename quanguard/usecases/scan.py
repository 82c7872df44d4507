"""Scan use cases: authorize by policy -> scan (table, text file, text) -> inventory
-> audit -> commit.

Every scan is decided by the one gate (:func:`quanguard.gate.authorize`, action
``scan``) and recorded in the audit trail with column names, grades and counts only —
never the values.  A denied scan is recorded by the gate.  The local operator of the CLI
is a role like any other (``operator`` in ``policies/roles.yaml``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desensitize import DatasetReport, ScanInputError, ScanTooLarge
from desensitize.findings import Finding
from quanguard.auth import Principal
from quanguard.errors import InvalidInput
from quanguard.gate import authorize
from quanguard.policy.model import Resource
from quanguard.services.scan import Asset, get_asset, list_assets, save_asset

if TYPE_CHECKING:
    from quanguard.container import Container
    from quanguard.gate import AuditOrigin, RequestContext
    from quanguard.policy.model import Decision

__all__ = [
    "TEXT_SUFFIXES",
    "LineFinding",
    "TextFileResult",
    "asset",
    "assets",
    "is_text_path",
    "scan_table",
    "scan_text",
    "scan_text_file",
    "scan_texts",
]

TEXT_SUFFIXES = (".txt", ".text", ".log", ".md")
MAX_LINE = 1_000_000


def is_text_path(path: str) -> bool:
    return "://" not in path and Path(path).suffix.lower() in TEXT_SUFFIXES


@dataclass(frozen=True)
class LineFinding:
    line: int
    finding: Finding

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, **self.finding.to_dict()}


@dataclass(frozen=True)
class TextFileResult:
    findings: tuple[LineFinding, ...]
    lines: int
    dataset_grade: str | None

    def to_dict(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for lf in self.findings:
            counts[lf.finding.entity] = counts.get(lf.finding.entity, 0) + 1
        return {"findings": [f.to_dict() for f in self.findings], "lines": self.lines,
                "entities": counts, "dataset_grade": self.dataset_grade}


# -- policy and audit ---------------------------------------------------------------------

def _authorize(container: Container, principal: Principal, dataset: str, owner_org: str | None,
               ctx: RequestContext | None) -> Decision:
    return authorize(container, principal, "scan",
                     Resource(dataset=dataset, owner_org=owner_org or principal.org), ctx)


def _ctx_kw(ctx: RequestContext | None) -> AuditOrigin:
    return {"source_ip": getattr(ctx, "source_ip", None), "request_id": getattr(ctx, "request_id", None)}


# -- tables -----------------------------------------------------------------------------

def _fingerprint(path: str, report: DatasetReport) -> str:
    if "://" not in path and os.path.isfile(path):
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    return hashlib.sha256(path.encode() + str([c.name for c in report.columns]).encode()).hexdigest()


def scan_table(
    container: Container, principal: Principal, path: str, *, sample: int = 10_000, full: bool = False,
    dataset: str | None = None, owner_org: str | None = None, ctx: RequestContext | None = None,
    progress: Callable[[int], None] | None = None, source_name: str | None = None,
) -> tuple[DatasetReport, Asset]:
    """Scan a table file or SQL URL, grade it, store it in the inventory, audit it."""
    from desensitize.tableio import detect_format, open_table

    if sample <= 0:
        raise InvalidInput("--sample must be a positive number of rows")
    name = dataset or Path(source_name or path.split("#")[-1]).stem or "dataset"
    decision = _authorize(container, principal, name, owner_org, ctx)
    fmt = detect_format(path)
    source = open_table(path)
    # smaller batches keep the reader's working set down on multi-GB files
    batches = source.iter_batches(16_384) if full else source.sample_batches(sample)
    raw = container.scanner.table_scanner().scan(batches, sampled=not full, progress=progress)
    report = container.scanner.grade(raw)
    with container.unit_of_work() as session:
        stored = save_asset(
            session, dataset=name, fingerprint=_fingerprint(path, report),
            source=source_name or path, fmt=fmt, report=report,
            owner_org=owner_org or principal.org, scanned_by=principal.name,
        )
        container.audit.record(
            session, actor=principal, action="scan", dataset=name,
            fields=tuple(c.name for c in report.columns if c.entity or c.contains),
            grade=report.dataset_grade, rows=report.rows_scanned, decision=decision,
            labels={"asset_id": stored.id, "version": str(stored.version),
                    "mode": "sample" if report.sampled else "full"}, **_ctx_kw(ctx))
    return report, stored


# -- text -------------------------------------------------------------------------------

def _open_text(path: str) -> Iterator[str]:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"{p}: no such file")
    with p.open("rb") as fh:
        head = fh.read(65536)
    if not head:
        raise ScanInputError(f"{p.name}: the file is empty")
    if b"\x00" in head:
        raise ScanInputError(f"{p.name}: looks binary (NUL bytes); give a UTF-8 or GB18030 text file")
    encoding = "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:
            encoding = "gb18030"
    try:
        with p.open("r", encoding=encoding, newline=None) as fh:
            while True:
                line = fh.readline(MAX_LINE + 1)
                if not line:
                    return
                if len(line) > MAX_LINE and not line.endswith("\n"):
                    raise ScanTooLarge(f"{p.name}: a line is longer than {MAX_LINE} characters",
                                       size=len(line), limit=MAX_LINE)
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ScanInputError(f"{p.name}: cannot be decoded as {encoding} (mixed or unknown encoding)") from exc


def scan_text_file(
    container: Container, principal: Principal, path: str, *, dataset: str | None = None,
    owner_org: str | None = None, ctx: RequestContext | None = None, progress: Callable[[int], None] | None = None,
) -> TextFileResult:
    """Scan a text file line by line (each line one record); offsets are per line."""
    name = dataset or Path(path).stem or "text"
    decision = _authorize(container, principal, name, owner_org, ctx)
    scanner = container.scanner.text
    found: list[LineFinding] = []
    lines = 0
    for lines, line in enumerate(_open_text(path), start=1):
        if line.strip():
            found.extend(LineFinding(lines, f) for f in scanner.scan(line))
        if progress is not None and lines % 200 == 0:
            progress(lines)
    grades = [container.scanner.entity_grade(lf.finding.entity) for lf in found]
    grade = container.policy.max_grade(grades) if grades else None
    with container.unit_of_work() as session:
        container.audit.record(
            session, actor=principal, action="scan", dataset=name,
            fields=tuple(sorted({lf.finding.entity for lf in found})), grade=grade, rows=lines,
            decision=decision, labels={"mode": "text"}, **_ctx_kw(ctx))
    return TextFileResult(tuple(found), lines, grade)


def scan_text(
    container: Container, principal: Principal, text: str, *, ctx: RequestContext | None = None,
) -> tuple[list[Finding], str | None]:
    """Scan one free text; returns the findings and their highest grade."""
    batch, grade = scan_texts(container, principal, [text], ctx=ctx)
    return batch[0], grade


def scan_texts(
    container: Container, principal: Principal, texts: list[str], *, ctx: RequestContext | None = None,
) -> tuple[list[list[Finding]], str | None]:
    """Scan a batch of free texts (one decision, one audit event for the batch)."""
    decision = _authorize(container, principal, "text", None, ctx)
    batch = list(container.scanner.text.scan_many(texts))
    findings = [f for fs in batch for f in fs]
    grades = [container.scanner.entity_grade(f.entity) for f in findings]
    grade = container.policy.max_grade(grades) if grades else None
    with container.unit_of_work() as session:
        container.audit.record(
            session, actor=principal, action="scan", dataset=None,
            fields=tuple(sorted({f.entity for f in findings})), grade=grade, rows=len(texts),
            decision=decision, labels={"mode": "text"}, **_ctx_kw(ctx))
    return batch, grade


# -- inventory --------------------------------------------------------------------------

def _may_see(principal: Principal) -> str | None:
    """The org filter of the inventory: providers see their own org, others all."""
    return principal.org if principal.role in ("provider", "consumer") else None


def assets(container: Container, principal: Principal, *, dataset: str | None = None,
           limit: int = 100, offset: int = 0) -> list[Asset]:
    with container.session() as session:
        return list_assets(session, dataset=dataset, owner_org=_may_see(principal),
                           limit=limit, offset=offset)


def asset(container: Container, principal: Principal, asset_id: str) -> Asset:
    from quanguard.errors import NotFound

    with container.session() as session:
        found = get_asset(session, asset_id)
    org = _may_see(principal)
    if found is None or (org is not None and found.owner_org != org):
        raise NotFound(f"no asset {asset_id!r}")
    return found
