"""What the exchange needs from the rest of the service, as Protocols.

The exchange never imports the masking, watermarking, scanning, audit or policy code;
``quanguard`` passes objects that satisfy these ports. Tests use small fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa


@dataclass(frozen=True)
class Caller:
    """Who asks: the principal of the request, reduced to what the exchange uses."""

    id: str
    role: str
    org: str


@dataclass(frozen=True)
class Grant:
    """A policy decision as the exchange sees it.

    ``effect`` is ``allow``, ``deny`` or ``approval_required``; ``obligations`` holds
    epsilon_cap, delta_cap, min_group_size, row_limit, psi_reveal, mask_profile,
    watermark. ``raw`` keeps the service's own decision object for the audit trail.
    """

    effect: str
    rule_id: str | None
    policy_version: str
    reason: str
    obligations: Mapping[str, Any] = field(default_factory=dict)
    raw: object = None


@dataclass(frozen=True)
class Grading:
    """Result of scanning a table on arrival: the table grade and per-column grades.

    ``identifiers`` names columns that hold personal identifiers (never groupable).
    ``people``: the columns among them that name a person (a resident ID, phone, name...,
    not an organisation's code, an address or an entity only mentioned in free text) —
    a table holding one needs a key column; None: every identifier column counts.
    """

    grade: str
    columns: Mapping[str, str] = field(default_factory=dict)
    identifiers: frozenset[str] = frozenset()
    people: frozenset[str] | None = None


class Decider(Protocol):
    """Policy. ``accept`` names the effects under which the exchange goes on (a request
    runs or is queued for approval); a decider may refuse anything else itself — the
    service's gate records the refusal and raises — or return the grant, which the
    exchange then records and refuses. ``audit_action`` names the event of a refusal."""

    def decide(
        self, caller: Caller, action: str, *, grade: str | None, dataset: str | None,
        owner_org: str | None, purpose: str | None = None, audit_action: str | None = None,
        accept: tuple[str, ...] = ("allow", "approval_required"),
    ) -> Grant: ...


class Scanner(Protocol):
    def grade_table(self, table: pa.Table) -> Grading: ...


@dataclass(frozen=True)
class MaskedTable:
    """A masked table and the columns its operators made up: ``pseudonyms`` names the
    columns written by ``fake`` (made-up phone numbers, ID numbers, bank cards, names) or
    ``hash`` (keyed pseudonyms); the watermark may carry marks in those."""

    table: pa.Table
    pseudonyms: tuple[str, ...] = ()


class Masker(Protocol):
    def mask_table(self, table: pa.Table, profile: str) -> pa.Table | MaskedTable:
        """The masked copy; a :class:`MaskedTable` when the masker can say which columns
        it made up (a plain table: none)."""
        ...

    def leaks(self, table: pa.Table, profile: str) -> list[str]:
        """Re-scan a copy about to leave (防泄漏): one line per column that still holds an
        entity ``profile`` does not let out in clear; empty when the copy is clean."""
        ...


class Watermarker(Protocol):
    """Marks a copy for ``recipient`` and registers it under ``dataset`` for leak tracing;
    ``pseudonyms``: columns the masking made up (fakes, keyed pseudonyms), which may carry
    marks too; ``grade``: the dataset's grade, which chooses the usability bound of the
    marks (a stricter one for more sensitive data)."""

    def embed_table(self, table: pa.Table, recipient: str, *, dataset: str,
                    pseudonyms: tuple[str, ...] = (), grade: str | None = None) -> pa.Table: ...


class AuditSink(Protocol):
    def record(
        self, *, actor: Caller, action: str, dataset: str | None = None,
        grade: str | None = None, fields: tuple[str, ...] = (), rows: int | None = None,
        purpose: str | None = None, grant: Grant | None = None, outcome: str = "success",
        result_digest: str | None = None, labels: Mapping[str, Any] | None = None,
    ) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
