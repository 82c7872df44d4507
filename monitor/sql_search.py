"""The SQL search backend (SQLite or PostgreSQL) over ``audit_events``.

Implements the semantics documented in ``monitor.search``. Histograms are grouped by
UTC hour in SQL and folded into ``tz`` hours/days in Python (exact for zones whose offset
is a whole number of hours, such as Asia/Shanghai).

Keeping it interactive on a large trail (bench/audit_search.py, 10,000,000 events):

* Case-insensitive filters (``lower(org) = lower(:v)``) cannot use the ``(column, ...)``
  indexes. ``expand_spellings`` first walks the distinct stored values of the column
  through its index (one probe per distinct value, a "loose index scan") and lets the
  database pick the ones that match ``v`` with that very expression; the search then
  filters ``org IN (those values)``, which the indexes of ``monitor.store`` and migration
  0017 serve. Same rows, same database-side case folding. A column with more than
  ``MAX_SPELLINGS`` distinct values keeps the ``lower()`` form. (Under READ COMMITTED a
  spelling first written between the walk and the search is missed by that one search,
  as an event written between the total and the page already was.)
* ``total`` stays exact but is not counted twice: without any condition it is the span
  of the contiguous ``seq`` range (the trail has no gaps: retention removes a prefix and
  ``audit verify`` reports any hole as a deletion); with a histogram, or a terms
  aggregation over a column that is never NULL, it is the sum of the buckets.
* The page is read only when the total reaches it; with few matches (``FEW_MATCHES``)
  they are selected first and sorted, so the planner cannot bet on finding them early
  along the time index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.events import AuditEvent
from monitor.search import (
    SUM_ROWS,
    Bucket,
    SearchQuery,
    SearchResult,
    cidr_values,
    fold_buckets,
    order_terms,
    parse_network,
    select_cidr,
)
from monitor.store import EVENTS, from_us, to_us

_MINUTE_US = 60 * 1_000_000
_HOUR_US = 3600 * 1_000_000
SQLITE_MMAP = 1 << 30
SQLITE_CACHE_KIB = 32 * 1024
_COLUMNS = {
    "actor": EVENTS.c.actor,
    "role": EVENTS.c.role,
    "org": EVENTS.c.org,
    "action": EVENTS.c.action,
    "dataset": EVENTS.c.dataset,
    "grade": EVENTS.c.grade,
    "effect": EVENTS.c.effect,
    "outcome": EVENTS.c.outcome,
    "source_ip": EVENTS.c.source_ip,
    "rows": EVENTS.c.rows,
    "ts": EVENTS.c.ts,
    "seq": EVENTS.c.seq,
}


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _lower(col: Any) -> Any:
    return sa.func.lower(col)


# Filters matched case-insensitively through lower(); see expand_spellings.
FOLDED = ("role", "org", "action", "dataset", "grade")
MAX_SPELLINGS = 1000  # distinct stored values walked per filter before keeping lower()
Spellings = Mapping[tuple[str, str], Sequence[str]]
FEW_MATCHES = 2000  # up to this many matches, a page is sorted from all of them


def _folded(name: str, expr: Any, value: str) -> Any:
    """``expr`` matches the filter value (through the database's ``lower()``)."""
    if name == "action":
        suffix = "%." + _like_escape(value)
        return sa.or_(_lower(expr) == _lower(sa.literal(value)),
                      _lower(expr).like(_lower(sa.literal(suffix)), escape="\\"))
    return _lower(expr) == _lower(sa.literal(value))


def _match(name: str, value: str, cidr: Mapping[str, Sequence[str]],
           spellings: Spellings | None = None) -> Any:
    """The condition of one filter (see monitor.search for the semantics).

    Both sides go through the database's ``lower()``, so a value always matches itself
    whatever the letters (SQLite folds ASCII letters only). With the stored spellings
    of the value (``expand_spellings``) the column is compared to them instead: the
    same rows, through the column's index."""
    if name == "actor":
        # "actor_name IS NOT NULL" lets SQLite use the partial index of migration 0014 too.
        return sa.or_(EVENTS.c.actor == value,
                      sa.and_(EVENTS.c.actor_name.is_not(None),
                              _lower(EVENTS.c.actor_name) == _lower(sa.literal(value))))
    if name == "source_ip":
        if parse_network(value) is None:
            return EVENTS.c.source_ip == value
        return EVENTS.c.source_ip.in_(list(cidr.get(value, ())))
    col = _COLUMNS[name]
    if name in ("effect", "outcome"):
        return col == value  # normalised to the known lower-case values
    stored = (spellings or {}).get((name, value))
    if stored is None:
        return _folded(name, col, value)
    if not stored:
        return sa.false()
    return col == stored[0] if len(stored) == 1 else col.in_(list(stored))


def where_clause(query: SearchQuery, cidr: Mapping[str, Sequence[str]] | None = None,
                 spellings: Spellings | None = None) -> list[Any]:
    """The SQL conditions of a query (shared with alert evaluation and the console).

    ``cidr`` maps each CIDR ``source_ip`` value of the query to the stored addresses
    inside it (``expand_cidr``); without it a CIDR filter matches nothing.
    ``spellings`` (``expand_spellings``, optional) maps ``(filter, value)`` to the stored
    values it matches; filters without it are compared through ``lower()``.
    """
    cidr = cidr or {}
    conds: list[Any] = [_match(n, v, cidr, spellings) for n, v in query.filters().items()]
    for name, value in query.exclude:
        # An event without the field is never excluded (NULL -> not matched -> kept).
        conds.append(sa.not_(sa.func.coalesce(_match(name, value, cidr, spellings), False)))
    if query.since is not None:
        conds.append(EVENTS.c.ts >= to_us(query.since))
    if query.until is not None:
        conds.append(EVENTS.c.ts < to_us(query.until))
    for term in query.terms:
        pattern = f"%{_like_escape(term)}%"
        conds.append(
            sa.or_(
                sa.func.lower(EVENTS.c.purpose).like(pattern, escape="\\"),
                sa.func.lower(EVENTS.c.reason).like(pattern, escape="\\"),
            )
        )
    return conds


def expand_cidr(session: Session, query: SearchQuery) -> dict[str, list[str]]:
    """Stored addresses inside each CIDR ``source_ip`` value of the query.

    SQL has no portable network type, so the distinct stored addresses are listed and
    tested here; addresses that do not parse are never inside a network.
    """
    values = cidr_values(query)
    if not values:
        return {}
    return select_cidr(values, (str(v) for (v,) in session.execute(
        sa.select(EVENTS.c.source_ip).where(EVENTS.c.source_ip.is_not(None)).distinct())))


def expand_spellings(session: Session, query: SearchQuery,
                     limit: int = MAX_SPELLINGS) -> dict[tuple[str, str], list[str]]:
    """The stored values each case-insensitive filter (and exclusion) of the query matches.

    The distinct values of the column are walked in index order, one probe each
    (``WITH RECURSIVE``: the next value is the smallest one above the last), and the
    database itself tells which of them match, with the very condition of ``_match``.
    A column with more than ``limit`` distinct values is left out (compared through
    ``lower()`` as before).
    """
    wanted = [(n, v) for n, v in (*query.filters().items(), *query.exclude) if n in FOLDED]
    out: dict[tuple[str, str], list[str]] = {}
    for name, value in dict.fromkeys(wanted):
        col = _COLUMNS[name]
        first = (sa.select(col).where(col.is_not(None)).order_by(col).limit(1)
                 .scalar_subquery())
        walk = sa.select(first.label("v"), sa.literal(1, sa.Integer).label("n")).cte(
            "walk", recursive=True)
        step = (sa.select(col).where(col > walk.c.v).order_by(col).limit(1)
                .correlate(walk).scalar_subquery())
        walk = walk.union_all(sa.select(step, walk.c.n + 1)
                              .where(walk.c.v.is_not(None), walk.c.n <= limit))
        rows = session.execute(sa.select(
            walk.c.v, sa.case((_folded(name, walk.c.v, value), 1), else_=0))
            .where(walk.c.v.is_not(None))).all()
        if len(rows) <= limit:
            out[(name, value)] = [str(v) for v, hit in rows if hit]
    return out


class SqlSearchBackend:
    """``SearchBackend`` over the system-of-record tables."""

    name = "sql"

    def __init__(self, session_factory: Callable[[], Session]):
        self._session_factory = session_factory

    def search(self, query: SearchQuery) -> SearchResult:
        with self._session_factory() as session:
            conn = session.connection()
            if conn.dialect.name == "sqlite":
                # Searches read wide rows across a large file: map it and keep a bigger
                # page cache on this connection (halves the time of filtered counts).
                conn.exec_driver_sql(f"PRAGMA mmap_size={SQLITE_MMAP}")
                conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            return search_in(session, query)


def _order(session: Session, query: SearchQuery, cols: Any = EVENTS.c) -> list[Any]:
    key: Any = cols[query.sort_field]
    if key.type.python_type is str and session.get_bind().dialect.name == "postgresql":
        key = key.collate("C")  # code point order, as SQLite's BINARY and ES keywords
    if query.sort_field in ("ts", "seq"):
        first = key.desc() if query.descending else key.asc()
    else:
        first = (key.desc() if query.descending else key.asc()).nulls_last()
    tie = cols.seq.desc() if query.descending else cols.seq.asc()
    return [first] if query.sort_field == "seq" else [first, tie]


def search_in(session: Session, query: SearchQuery) -> SearchResult:
    conds = where_clause(query, expand_cidr(session, query), expand_spellings(session, query))
    total: int | None = None
    aggs: dict[str, tuple[Bucket, ...]] = {}
    for name in query.aggs:
        if name == SUM_ROWS:
            total_rows = session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(EVENTS.c.rows), 0)).where(*conds)).scalar_one()
            aggs[name] = (Bucket("rows", int(total_rows)),)
        elif name.startswith("by_"):
            col = _COLUMNS[name[3:]]
            stmt = sa.select(col, sa.func.count()).where(*conds, col.is_not(None)).group_by(col)
            counts = {str(k): int(c) for k, c in session.execute(stmt)}
            if not col.nullable:  # every matching event is in one bucket
                total = sum(counts.values())
            aggs[name] = order_terms(counts)
        else:
            aggs[name], total = _histogram(session, conds, query.tz, name[4:])
    if total is None:
        total = _count(session, conds)
    hits: tuple[AuditEvent, ...] = ()
    if query.size and total > query.offset:
        if total <= FEW_MATCHES:
            # Few matches: select them all first, then sort. Left to itself, PostgreSQL
            # may walk the ts index backwards from the newest event looking for the page
            # (it expects matches all along): 36 s at 10,000,000 events for an actor
            # with no event at all.
            found = sa.select(*dict.fromkeys((EVENTS.c.body, EVENTS.c.seq, _COLUMNS[query.sort_field]))
                              ).where(*conds).cte("found").prefix_with("MATERIALIZED")
            stmt = sa.select(found.c.body).order_by(*_order(session, query, found.c))
        else:
            stmt = sa.select(EVENTS.c.body).where(*conds).order_by(*_order(session, query))
        rows = session.execute(stmt.offset(query.offset).limit(query.size)).all()
        hits = tuple(AuditEvent.from_json(body) for (body,) in rows)
    return SearchResult(total=int(total), hits=hits, aggs=aggs)


def _count(session: Session, conds: list[Any]) -> int:
    if conds:
        return int(session.execute(
            sa.select(sa.func.count()).select_from(EVENTS).where(*conds)).scalar_one())
    # The whole trail: seq has no gaps (retention removes a prefix; verify reports any
    # hole), so the count is the span of seq — two index probes instead of a full scan.
    low, high = session.execute(sa.select(
        sa.select(sa.func.min(EVENTS.c.seq)).scalar_subquery(),
        sa.select(sa.func.max(EVENTS.c.seq)).scalar_subquery())).one()
    return 0 if low is None else int(high) - int(low) + 1


def _histogram(session: Session, conds: list[Any], tz: str, unit: str
               ) -> tuple[tuple[Bucket, ...], int]:
    """The buckets and the number of events they hold (every event has a ``ts``)."""
    # Grouped by UTC minute (per_minute) or hour in SQL, then folded into local buckets:
    # exact for zones whose offset is whole minutes/hours (such as Asia/Shanghai).
    # ts >= 0 always (µs since 1970), so integer division is floor division on both DBs.
    step = _MINUTE_US if unit == "minute" else _HOUR_US
    slot = EVENTS.c.ts // step
    stmt = sa.select(slot, sa.func.count()).where(*conds).group_by(slot)
    slots = [(from_us(int(h) * step), int(c)) for h, c in session.execute(stmt)]
    return fold_buckets(slots, ZoneInfo(tz), unit), sum(c for _, c in slots)
