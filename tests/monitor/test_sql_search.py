"""The SQL backend against a literal Python reading of the semantics in monitor.search."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from monitor.errors import InvalidQuery
from monitor.events import Actor, AuditEvent, EventDecision
from monitor.search import SearchBackend, SearchQuery, SearchResult, order_terms
from monitor.sql_search import SqlSearchBackend
from monitor.store import AuditStore

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)
ACTORS = ["alice", "bob", "carol", "dave"]
PURPOSES = ["月度 统计 报表", "Fraud check", "fraud REVIEW 100%", "户籍核验", None]


def corpus(n: int = 120) -> list[AuditEvent]:
    out = []
    for i in range(n):
        out.append(AuditEvent(
            # several events share a timestamp so that ties must be broken by seq
            ts=T0 + timedelta(minutes=37 * (i // 2)),
            actor=Actor(ACTORS[i % 4], ["consumer", "provider"][i % 2], ["市局", "区局", "省厅"][i % 3]),
            action=["read_masked", "export", "query", "psi"][(i * 7) % 4],
            reporter="quanguard",
            dataset=f"ds{i % 5}",
            grade=["L1", "L2", "L3", "L4"][(i * 3) % 4],
            rows=i,
            purpose=PURPOSES[i % 5],
            reason="Denied_by rule" if i % 6 == 0 else None,
            decision=None if i % 7 == 0 else EventDecision(["allow", "deny"][i % 2], "r", "v"),
        ))
    return out


def oracle(events: list[AuditEvent], q: SearchQuery) -> SearchResult:
    def keep(e: AuditEvent) -> bool:
        cols = {"actor": e.actor.id, "role": e.actor.role, "org": e.actor.org,
                "action": e.action, "dataset": e.dataset, "grade": e.grade, "effect": e.effect}
        if any(cols[k] != v for k, v in q.filters().items()):
            return False
        if q.since and e.ts < q.since or q.until and e.ts >= q.until:
            return False
        text = [(e.purpose or "").lower(), (e.reason or "").lower()]
        return all(any(t in f for f in text) for t in q.terms)

    found = [e for e in events if keep(e)]
    key = (lambda e: (e.ts, e.seq)) if q.sort.lstrip("-") == "ts" else (lambda e: (e.seq, 0))
    found.sort(key=key, reverse=q.sort.startswith("-"))
    aggs = {}
    zone = ZoneInfo(q.tz)
    for name in q.aggs:
        if name.startswith("by_"):
            attr: Callable[[AuditEvent], str | None] = {"by_actor": lambda e: e.actor.id, "by_action": lambda e: e.action,
                    "by_effect": lambda e: e.effect}[name]
            aggs[name] = order_terms(Counter(v for e in found if (v := attr(e)) is not None))
        else:
            c: Counter[datetime] = Counter()
            for e in found:
                loc = e.ts.astimezone(zone)
                if name == "per_day":
                    c[datetime(loc.year, loc.month, loc.day, tzinfo=zone)] += 1
                else:
                    c[loc.replace(minute=0, second=0, microsecond=0)] += 1
            from monitor.search import Bucket
            aggs[name] = tuple(Bucket(k.isoformat(), c[k]) for k in sorted(c))
    return SearchResult(len(found), tuple(found[q.offset:q.offset + q.size]), aggs)


@pytest.fixture
def loaded(engine: sa.Engine, store: AuditStore) -> tuple[SqlSearchBackend, list[AuditEvent]]:
    with Session(engine) as s, s.begin():
        stored = store.append(s, corpus())
    return SqlSearchBackend(lambda: Session(engine)), stored


queries = st.builds(
    SearchQuery,
    actor=st.none() | st.sampled_from(ACTORS + ["nobody"]),
    role=st.none() | st.sampled_from(["consumer", "provider"]),
    org=st.none() | st.sampled_from(["市局", "区局"]),
    action=st.none() | st.sampled_from(["read_masked", "export", "query", "psi"]),
    dataset=st.none() | st.sampled_from(["ds0", "ds3"]),
    grade=st.none() | st.sampled_from(["L3", "L4"]),
    effect=st.none() | st.sampled_from(["allow", "deny"]),
    since=st.none() | st.sampled_from([T0 + timedelta(hours=h) for h in (0, 5, 20)]),
    until=st.none() | st.sampled_from([T0 + timedelta(hours=h) for h in (30, 40)]),
    q=st.none() | st.sampled_from(["fraud", "FRAUD review", "统计", "100%", "_by", "zzz"]),
    sort=st.sampled_from(["ts", "-ts", "seq", "-seq"]),
    page=st.integers(1, 4),
    size=st.integers(0, 25),
    aggs=st.lists(st.sampled_from(["by_actor", "by_action", "by_effect", "per_hour", "per_day"]),
                  max_size=3).map(tuple),
    tz=st.sampled_from(["UTC", "Asia/Shanghai"]),
)


def test_backend_satisfies_protocol(loaded: tuple[SqlSearchBackend, list[AuditEvent]]) -> None:
    assert isinstance(loaded[0], SearchBackend)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(q=queries)
def test_matches_oracle(loaded: tuple[SqlSearchBackend, list[AuditEvent]], q: SearchQuery) -> None:
    backend, events = loaded
    got = backend.search(q)
    want = oracle(events, q)
    assert got.total == want.total
    assert [e.seq for e in got.hits] == [e.seq for e in want.hits]
    assert got.hits == want.hits
    assert dict(got.aggs) == dict(want.aggs)


def test_day_buckets_in_local_time(loaded: tuple[SqlSearchBackend, list[AuditEvent]]) -> None:
    backend, events = loaded
    res = backend.search(SearchQuery(aggs=("per_day",), tz="Asia/Shanghai", size=0))
    assert all(b.key.endswith("T00:00:00+08:00") for b in res.aggs["per_day"])
    assert sum(b.count for b in res.aggs["per_day"]) == len(events)


@pytest.mark.parametrize("kwargs", [
    {"sort": "purpose"}, {"aggs": ("by_purpose",)}, {"size": 1001}, {"page": 0},
    {"effect": "DENIED"}, {"outcome": "ok"}, {"source_ip": "10.0.0.0/33"},
    {"source_ip": "not-an-ip"}, {"exclude": (("purpose", "x"),)}, {"actor": " "},
    {"aggs": ("per_minute",)},
    {"since": T0, "until": T0 + timedelta(days=3), "aggs": ("per_minute",)},
    {"page": 200, "size": 100}, {"tz": "Mars/Base"},
    {"since": datetime(2026, 1, 1)},
    {"since": T0, "until": T0},
])
def test_bad_queries(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidQuery):
        SearchQuery(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["ÄBC-Amt", "äbc-amt", "ÄBC-AMT"])
def test_a_value_always_matches_itself_whatever_its_letters(
        engine: sa.Engine, store: AuditStore, value: str) -> None:
    """Case-insensitive filters must never lose an exact match (SQLite's lower() folds
    ASCII only): the stored org is found by its own spelling."""
    from monitor.events import Actor, EventDecision

    event = AuditEvent(ts=T0, actor=Actor("x", "consumer", value), action="query",
                       reporter="r", dataset="ÜBER", decision=EventDecision("allow"))
    with Session(engine) as s, s.begin():
        store.append(s, [event])
    backend = SqlSearchBackend(lambda: Session(engine))
    assert backend.search(SearchQuery(org=value)).total == 1
    assert backend.search(SearchQuery(dataset="ÜBER")).total == 1
    assert backend.search(SearchQuery(org=value, exclude=(("org", value),))).total == 0
