"""The search model shared by every backend (SQL here, Elasticsearch in ``monitor.es``).

Semantics every backend must implement identically (parity tests hold them to it):

* Filters match the fields ``actor`` (user.id, or user.name case-insensitively),
  ``role`` (user.roles), ``org`` (organization.name), ``action`` (event.action),
  ``dataset``, ``grade``, ``effect`` (audit.effect), ``outcome`` (event.outcome) and
  ``source_ip`` (source.ip). Matching is exact but case-insensitive (ASCII letters);
  ``effect`` and ``outcome`` must be one of their known values (``DENY`` is ``deny``; an
  unknown value is an error, never a silent zero). ``action`` also matches an action
  whose last dotted part it is (``aggregate`` finds ``exchange.aggregate``).
  ``source_ip`` is an address or a CIDR network (``10.1.0.0/16``, ``2001:db8::/32``);
  an address compares by its canonical text form.
  ``exclude`` holds (filter, value) pairs with the same matching, negated; an event
  without that field is never excluded.
  ``since`` is inclusive, ``until`` exclusive, both on ``@timestamp``.
* ``q`` is free text over ``purpose`` and ``reason``: split on whitespace; every term
  must occur, case-insensitively, as a substring of purpose or of reason (a term may
  match in either field). ES: ``wildcard`` with ``case_insensitive`` on keyword fields.
* Sort keys: ``ts`` / ``seq`` and every keyword column in ``SORT_FIELDS``, ascending or
  with ``-`` descending. Events without the field come last in either direction.
  Strings compare by code point. Ties are broken by ``seq`` in the same direction, so
  the order is total and identical everywhere.
* Paging: ``page`` is 1-based, ``size`` <= MAX_SIZE, ``page * size`` <= MAX_WINDOW.
* ``total`` is exact.
* Aggregations (over all matching events, not only the page):
  ``by_<field>`` for each field in ``FACETS``: buckets ordered by count desc, then key
  asc, at most TERMS_SIZE; events without the field are not counted. ``by_ip`` is
  ``by_source_ip``.
  ``sum(rows)``: one bucket ``Bucket("rows", total)``, the sum of ``audit.rows`` over the
  matching events (events without rows count 0).
  ``per_minute`` / ``per_hour`` / ``per_day`` / ``per_week``: non-empty buckets in
  ascending key order; the key is the bucket start as ISO 8601 with the offset of ``tz``
  (e.g. ``2026-11-26T00:00:00+08:00``); days are calendar days in ``tz``, weeks start on
  Monday. ``per_minute`` needs a range (``since`` and ``until``) of at most two days.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import InvalidQuery
from monitor.events import EFFECTS, OUTCOMES, AuditEvent

FILTERS = ("actor", "role", "org", "action", "dataset", "grade", "effect", "outcome",
           "source_ip")
FACETS = ("actor", "org", "dataset", "action", "effect", "source_ip", "role", "grade",
          "outcome")
SORT_FIELDS = ("ts", "seq", "actor", "role", "org", "action", "dataset", "grade", "effect",
               "outcome", "source_ip", "rows")
SORTS = tuple(k for f in SORT_FIELDS for k in (f, f"-{f}"))
HISTOGRAMS = ("per_minute", "per_hour", "per_day", "per_week")
SUM_ROWS = "sum(rows)"
AGGREGATIONS = tuple(f"by_{f}" for f in FACETS) + HISTOGRAMS + (SUM_ROWS,)
# Short names accepted for an aggregation; the result carries the full name.
AGG_ALIASES = {"by_ip": "by_source_ip"}
MAX_SIZE = 1000
MAX_WINDOW = 10_000
TERMS_SIZE = 50
FACET_SIZE = 10
MAX_MINUTE_RANGE = timedelta(days=2)
MAX_VALUE = 500  # longest filter value accepted
MAX_CIDR_ADDRESSES = 1000  # distinct recorded addresses one CIDR filter may cover


def parse_network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network of a CIDR ``source_ip`` filter, or None for a single address.
    Raises InvalidQuery for anything else."""
    try:
        if "/" in value:
            return ipaddress.ip_network(value, strict=False)
        ipaddress.ip_address(value)
        return None
    except ValueError as exc:
        raise InvalidQuery(f"source_ip {value[:60]!r} is not an IP address or a CIDR "
                           "network (e.g. 10.1.0.0/16)") from exc


def cidr_values(query: SearchQuery) -> list[str]:
    """The CIDR ``source_ip`` values of a query's filters and exclusions."""
    return [v for n, v in (*query.filters().items(), *query.exclude)
            if n == "source_ip" and parse_network(v) is not None]


def select_cidr(values: Sequence[str], stored: Iterable[str]) -> dict[str, list[str]]:
    """The stored addresses inside each CIDR value; addresses that do not parse are in
    none. Backends without a network type list their distinct addresses and ask this."""
    addresses = []
    for text in stored:
        try:
            addresses.append((text, ipaddress.ip_address(text)))
        except ValueError:
            continue
    out: dict[str, list[str]] = {}
    for value in values:
        net = parse_network(value)
        inside = [t for t, a in addresses if a.version == net.version and a in net]  # type: ignore[union-attr,operator]
        if len(inside) > MAX_CIDR_ADDRESSES:
            raise InvalidQuery(f"source_ip {value} covers more than {MAX_CIDR_ADDRESSES} "
                               "distinct recorded addresses; use a narrower network")
        out[value] = inside
    return out


def canonical_ip(value: str) -> str:
    """The canonical text of an address (``2001:DB8::1`` -> ``2001:db8::1``)."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value


def _normalise(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidQuery(f"{name} is empty")
    if len(value) > MAX_VALUE:
        raise InvalidQuery(f"{name} is longer than {MAX_VALUE} characters")
    if name in ("effect", "outcome"):
        known = EFFECTS if name == "effect" else OUTCOMES
        if value.lower() not in known:
            raise InvalidQuery(f"{name} {value[:40]!r} is not one of {', '.join(known)}")
        return value.lower()
    if name == "source_ip":
        net = parse_network(value)
        return str(net) if net is not None else canonical_ip(value)
    return value


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
    outcome: str | None = None
    source_ip: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    sort: str = "-ts"
    page: int = 1
    size: int = 50
    aggs: tuple[str, ...] = ()
    tz: str = "UTC"
    exclude: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "aggs", tuple(dict.fromkeys(AGG_ALIASES.get(a, a) for a in self.aggs)))
        for name in FILTERS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _normalise(name, str(value)))
        excluded = []
        for pair in self.exclude:
            if len(pair) != 2 or pair[0] not in FILTERS:
                raise InvalidQuery(f"exclude: {pair[0] if pair else ''!r} is not one of "
                                   f"{', '.join(FILTERS)}")
            excluded.append((pair[0], _normalise(pair[0], str(pair[1]))))
        object.__setattr__(self, "exclude", tuple(dict.fromkeys(excluded)))
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
        if "per_minute" in self.aggs and not (
                self.since and self.until and self.until - self.since <= MAX_MINUTE_RANGE):
            raise InvalidQuery("per_minute needs since and until at most two days apart; "
                               "use per_hour or per_day for longer ranges")
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
        """The filters that are set (normalised values)."""
        return {
            name: value for name in FILTERS if (value := getattr(self, name)) is not None
        }

    @property
    def sort_field(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def histogram_for(since: datetime | None, until: datetime | None) -> str:
    """The histogram whose buckets suit a time range: minutes up to 2 h, hours up to
    3 days, days up to 90 days, weeks beyond (and days when the range is open)."""
    if since is None or until is None:
        return "per_day"
    span = until - since
    if span <= timedelta(hours=2):
        return "per_minute"
    if span <= timedelta(days=3):
        return "per_hour"
    if span <= timedelta(days=90):
        return "per_day"
    return "per_week"


def local_bucket_start(ts: datetime, zone: ZoneInfo, unit: str) -> datetime:
    """The start of the ``minute``/``hour``/``day``/``week`` bucket of ``ts`` in ``zone``."""
    local = ts.astimezone(zone)
    if unit == "minute":
        return local.replace(second=0, microsecond=0)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = datetime(local.year, local.month, local.day, tzinfo=zone)
    if unit == "week":
        monday = day.date() - timedelta(days=day.weekday())
        return datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    return day


@dataclass(frozen=True)
class Bucket:
    key: str
    count: int


def fold_buckets(slots: Iterable[tuple[datetime, int]], zone: ZoneInfo, unit: str
                 ) -> tuple[Bucket, ...]:
    """Fold counts of UTC slots (each slot's start instant and its count) into the local
    ``unit`` buckets of ``zone``, in time order, keyed by ISO 8601 with the offset.

    The key text, not the local datetime, tells buckets apart: at the autumn change the
    repeated wall-clock hour (02:00+02:00, then 02:00+01:00) is two hours, although two
    datetimes of one zone with the same wall-clock time compare equal."""
    counts: dict[str, int] = {}
    first: dict[str, datetime] = {}
    for start, count in slots:
        if not count:
            continue
        key = local_bucket_start(start, zone, unit).isoformat()
        counts[key] = counts.get(key, 0) + count
        first[key] = min(first.get(key, start), start)
    return tuple(Bucket(k, counts[k]) for k in sorted(counts, key=first.__getitem__))


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
