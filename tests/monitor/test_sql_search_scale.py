"""The large-trail paths of the SQL search backend return exactly what the plain ones do.

``expand_spellings`` replaces ``lower(col) = lower(:v)`` by ``col IN (stored spellings)``,
``total`` is taken from the seq span or the buckets when it can be, and a page of few
matches is sorted from all of them; each is checked against the plain path (no
expansion, ``count(*)``, the page straight from the table) on awkward data: several
spellings of one value, LIKE metacharacters, dotted actions, NULL columns, a purged
prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor import sql_search
from monitor.events import Actor, AuditEvent, EventDecision
from monitor.search import SearchQuery, SearchResult
from monitor.sql_search import SqlSearchBackend, expand_spellings
from monitor.store import EVENTS, AuditStore

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
ORGS = ["Acme", "ACME", "acme", "Acmex", "%", "a_me"]
ACTIONS = ["export", "EXPORT", "Exchange.Export", "reexport", "a.b.export", "x.%", "_xport",
           "exchange.aggregate"]
DATASETS = ["d_1", "d%1", "dx1", "D_1", None]
GRADES = ["L4", "l4", "L3", None]


def events(n: int = 96) -> list[AuditEvent]:
    return [AuditEvent(
        ts=T0 + timedelta(minutes=17 * i), actor=Actor(f"u{i % 5}", "consumer", ORGS[i % 6]),
        action=ACTIONS[(i * 5) % 8], reporter="quanguard", dataset=DATASETS[i % 5],
        grade=GRADES[(i * 3) % 4], rows=i,
        decision=None if i % 7 == 0 else EventDecision(["allow", "deny"][i % 2], "r", "v"),
    ) for i in range(n)]


@pytest.fixture
def backend(engine: sa.Engine, store: AuditStore) -> SqlSearchBackend:
    with Session(engine) as s, s.begin():
        store.append(s, events())
    return SqlSearchBackend(lambda: Session(engine))


def plain(backend: SqlSearchBackend, q: SearchQuery, monkeypatch: pytest.MonkeyPatch) -> SearchResult:
    """The search through ``lower()`` everywhere, totals by ``count(*)``, the page
    straight from the filtered table (never from the few-matches path)."""
    with monkeypatch.context() as m:
        m.setattr(sql_search, "FEW_MATCHES", -1)
        m.setattr(sql_search, "expand_spellings", lambda session, query: {})
        m.setattr(sql_search, "_count", _count_all)
        m.setattr(sql_search, "search_in", _plain_search_in)
        return backend.search(q)


def _count_all(session: Session, conds: list[sa.ColumnElement[bool]]) -> int:
    return int(session.execute(
        sa.select(sa.func.count()).select_from(EVENTS).where(*conds)).scalar_one())


_search_in = sql_search.search_in


def _plain_search_in(session: Session, query: SearchQuery) -> SearchResult:
    got = _search_in(session, query)
    conds = sql_search.where_clause(query, sql_search.expand_cidr(session, query))
    return type(got)(total=_count_all(session, conds), hits=got.hits, aggs=got.aggs)


QUERIES = [
    {"org": "aCmE"}, {"org": "%"}, {"org": "a_me"}, {"org": "ACMEX", "sort": "seq"},
    {"action": "export"}, {"action": "Export", "sort": "-seq"}, {"action": "%"},
    {"action": "_xport"}, {"action": "exchange.export"}, {"action": "b.EXPORT"},
    {"action": "aggregate"}, {"action": "x.%"},
    {"dataset": "d_1"}, {"dataset": "D%1"}, {"dataset": "d_1", "action": "export", "page": 2,
                                             "size": 5},
    {"grade": "L4", "org": "acme", "sort": "seq", "size": 7},
    {"grade": "l3", "aggs": ("by_grade", "by_org")},
    {"exclude": (("org", "ACME"),)}, {"exclude": (("dataset", "d_1"), ("grade", "L4"))},
    {"exclude": (("action", "export"),), "action": "EXPORT"},
    {"org": "nobody"}, {"exclude": (("org", "nobody"),)},
    {}, {"size": 0}, {"aggs": ("by_effect",), "size": 0}, {"aggs": ("by_actor",)},
    {"aggs": ("per_hour",), "size": 0, "tz": "Asia/Shanghai"},
    {"since": T0 + timedelta(hours=5), "aggs": ("per_day", "sum(rows)")},
    {"effect": "deny", "aggs": ("by_action", "by_dataset")},
    {"sort": "-dataset", "page": 2, "size": 10}, {"sort": "grade", "org": "acme"},
    {"sort": "-rows", "size": 5}, {"sort": "-seq", "action": "export"},
    {"page": 20, "size": 10}, {"org": "acme", "page": 5, "size": 10},
]


@pytest.mark.parametrize("kw", QUERIES, ids=[str(q) for q in QUERIES])
def test_same_result_as_the_plain_path(backend: SqlSearchBackend, kw: dict[str, object],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    q = SearchQuery(**kw)  # type: ignore[arg-type]
    got, want = backend.search(q), plain(backend, q, monkeypatch)
    assert got.total == want.total
    assert [e.seq for e in got.hits] == [e.seq for e in want.hits]
    assert got.aggs == want.aggs


def test_spellings_are_the_stored_variants(engine: sa.Engine, backend: SqlSearchBackend) -> None:
    with Session(engine) as s:
        got = expand_spellings(s, SearchQuery(org="ACME", action="export", dataset="%",
                                              exclude=(("grade", "l4"),)))
    assert sorted(got[("org", "ACME")]) == ["ACME", "Acme", "acme"]
    # the dotted suffix matches too; LIKE metacharacters in the value are literal
    assert sorted(got[("action", "export")]) == ["EXPORT", "Exchange.Export", "a.b.export",
                                                  "export"]
    assert got[("dataset", "%")] == []
    assert sorted(got[("grade", "l4")]) == ["L4", "l4"]
    assert backend.search(SearchQuery(org="acme")).total == 48  # 3 of the 6 orgs


def test_too_many_spellings_keep_lower(engine: sa.Engine, backend: SqlSearchBackend,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    q = SearchQuery(org="acme", action="export", sort="seq")
    with Session(engine) as s:
        # 6 distinct orgs, 8 distinct actions
        assert expand_spellings(s, q, limit=6) == {("org", "acme"): ["ACME", "Acme", "acme"]}
        assert set(expand_spellings(s, q, limit=8)) == {("org", "acme"), ("action", "export")}
    want = backend.search(q)
    monkeypatch.setattr(sql_search, "MAX_SPELLINGS", 2)
    monkeypatch.setattr(sql_search.expand_spellings, "__defaults__", (2,))
    got = backend.search(q)
    assert (got.total, got.hits) == (want.total, want.hits)


def test_total_without_filters_after_a_purged_prefix(engine: sa.Engine, store: AuditStore,
                                                     backend: SqlSearchBackend) -> None:
    with Session(engine) as s, s.begin():
        s.execute(sa.delete(EVENTS).where(EVENTS.c.seq <= 10))
    for kw in ({}, {"size": 0}, {"aggs": ("by_effect",)}):
        assert backend.search(SearchQuery(**kw)).total == 86


def test_empty_trail(engine: sa.Engine) -> None:
    backend = SqlSearchBackend(lambda: Session(engine))
    for kw in ({}, {"org": "acme"}, {"aggs": ("by_actor", "per_day")}):
        res = backend.search(SearchQuery(**kw))
        assert (res.total, res.hits) == (0, ())
