"""The search model shared by every backend (SQL here, Elasticsearch in ``monitor.es``).

Semantics every backend must implement identically (parity tests hold them to it):

* Filters are exact matches on the keyword fields ``actor`` (user.id), ``role``
  (user.roles), ``org`` (organization.name), ``action`` (event.action), ``dataset``,
  ``grade``, ``effect`` (audit.effect); ``since`` is inclusive, ``until`` exclusive,
  both on ``@timestamp``.
* ``q`` is free text over ``purpose`` and ``reason``: split on whitespace; every term
  must occur, case-insensitively, as a substring of purpose or of reason (a term may
  match in either field). ES: ``wildcard`` with ``case_insensitive`` on keyword
  sub-fields of purpose/reason.
* Sort keys: ``ts`` / ``-ts`` (by @timestamp) and ``seq`` / ``-seq``. Ties are broken
  by ``seq`` in the same direction, so the order is total and identical everywhere.
* Paging: ``page`` is 1-based, ``size`` <= MAX_SIZE, ``page * size`` <= MAX_WINDOW.
* ``total`` is exact.
* Aggregations (over all matching events, not only the page):
  ``by_actor`` / ``by_action`` / ``by_effect`` / ``by_org`` (organization.name) /
  ``by_dataset`` / ``by_grade`` / ``by_ip`` (source.ip): buckets ordered by count desc,
  then key asc, at most TERMS_SIZE; events without the field (no effect, no dataset, no
  grade, no source ip) are not counted.
  ``sum(rows)``: one bucket ``Bucket("rows", total)``, the sum of ``audit.rows`` over the
  matching events (events without rows count 0).
  ``per_hour`` / ``per_day``: non-empty buckets in ascending key order; the key is the
  bucket start as ISO 8601 with the offset of ``tz`` (e.g. ``2026-11-26T00:00:00+08:00``);
  days are calendar days in ``tz``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import InvalidQuery
from monitor.events import AuditEvent

SORTS = ("ts", "-ts", "seq", "-seq")
TERMS_AGGREGATIONS = ("by_actor", "by_action", "by_effect", "by_org", "by_dataset", "by_grade",
                      "by_ip")
SUM_ROWS = "sum(rows)"
AGGREGATIONS = (*TERMS_AGGREGATIONS, "per_hour", "per_day", SUM_ROWS)
FILTERS = ("actor", "role", "org", "action", "dataset", "grade", "effect")
MAX_SIZE = 1000
MAX_WINDOW = 10_000
TERMS_SIZE = 50


@dataclass(frozen=True)
class SearchQuery:
    """One search. Build it with keywords; ``validate`` runs in ``__post_init__``."""

    actor: str | None = None
    role: str | None = None
    org: str | None = None
    action: str | None = None
    dataset: str | None = None
    grade: str | None = None
    effect: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    sort: str = "-ts"
    page: int = 1
    size: int = 50
    aggs: tuple[str, ...] = ()
    tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "aggs", tuple(dict.fromkeys(self.aggs)))
        if self.sort not in SORTS:
            raise InvalidQuery(f"sort {self.sort!r} is not one of {', '.join(SORTS)}")
        for agg in self.aggs:
            if agg not in AGGREGATIONS:
                raise InvalidQuery(
                    f"aggregation {agg!r} is not one of {', '.join(AGGREGATIONS)}"
                )
        if not 0 <= self.size <= MAX_SIZE:
            raise InvalidQuery(f"size must be between 0 and {MAX_SIZE}")
        if self.page < 1:
            raise InvalidQuery("page starts at 1")
        if self.page * self.size > MAX_WINDOW:
            raise InvalidQuery(
                f"page * size may not exceed {MAX_WINDOW}; narrow the time range instead"
            )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidQuery(f"{name} needs a time zone")
        if self.since and self.until and self.since >= self.until:
            raise InvalidQuery("since must be before until")
        try:
            if len(self.tz) > 64:  # the longest IANA name is about 32 characters
                raise ValueError(self.tz)
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise InvalidQuery(f"unknown time zone {self.tz[:64]!r} (e.g. Asia/Shanghai)") from exc

    @property
    def terms(self) -> tuple[str, ...]:
        """The free-text terms of ``q`` (lower-cased)."""
        return tuple(t.lower() for t in (self.q or "").split())

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def filters(self) -> dict[str, str]:
        """The exact-match filters that are set."""
        return {
            name: value for name in FILTERS if (value := getattr(self, name)) is not None
        }


@dataclass(frozen=True)
class Bucket:
    key: str
    count: int


@dataclass(frozen=True)
class SearchResult:
    """``hits`` carry their ``seq``; ``aggs`` maps an aggregation name to its buckets."""

    total: int
    hits: tuple[AuditEvent, ...]
    aggs: Mapping[str, tuple[Bucket, ...]] = field(default_factory=dict)


@runtime_checkable
class SearchBackend(Protocol):
    """Anything that answers a SearchQuery with the semantics above."""

    name: str

    def search(self, query: SearchQuery) -> SearchResult: ...


def order_terms(counts: Mapping[str, int]) -> tuple[Bucket, ...]:
    """Terms buckets in the shared order: count desc, key asc, at most TERMS_SIZE."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Bucket(k, c) for k, c in ranked[:TERMS_SIZE])
