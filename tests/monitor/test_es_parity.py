"""Parity: the same events in the SQL store and in Elasticsearch answer every query alike.

The events take the real path: appended to the SQL store (SQLite and PostgreSQL), then
copied by the shipper into Elasticsearch. For each query, both backends must return the
same total, the same hits (ids and seqs, in order) and the same aggregation buckets — and
both must equal the reference reading of the semantics (tests.es_fixture).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.es import EsSink, make_client
from monitor.es_search import EsSearchBackend
from monitor.events import AuditEvent
from monitor.search import SearchQuery
from monitor.shipper import Shipper, SqlSpool
from monitor.sql_search import SqlSearchBackend
from monitor.store import AuditStore, create_schema
from quanguard.db import make_engine
from tests.conftest import PG_URL, PgSchema, _pg_available
from tests.es_fixture import ACTORS, START, EsServer, make_events, reference_search

pytestmark = pytest.mark.es

N_EVENTS = 500
# Zones with whole-hour offsets: the SQL backend folds UTC hours into local buckets.
ZONES = ["UTC", "Asia/Shanghai", "America/New_York"]


@dataclass
class Pair:
    sql: SqlSearchBackend
    es: EsSearchBackend
    events: list[AuditEvent]  # as stored (seq, ingested set)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(request: pytest.FixtureRequest, es_server: EsServer,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    schema = None
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('parity') / 'trail.db'}")
    else:
        if not _pg_available():
            pytest.skip("PostgreSQL not reachable")
        schema = PgSchema()
        engine = make_engine(PG_URL, schema=schema.name)
    create_schema(engine)
    from sqlalchemy.orm import sessionmaker

    session = sessionmaker(engine, expire_on_commit=False)
    fresh = [replace(e, seq=None, ingested=None) for e in make_events(N_EVENTS, seed=21)]
    with session() as s, s.begin():
        stored = AuditStore().append(s, fresh)
    prefix = f"qgtest-{uuid.uuid4().hex[:10]}"
    client = make_client(es_server.url)
    sink = EsSink(client, prefix=prefix)
    sink.ensure_template()
    assert Shipper(SqlSpool(session), sink, batch_size=200).drain() == N_EVENTS
    sink.refresh()
    try:
        yield Pair(SqlSearchBackend(session), EsSearchBackend(client, prefix=prefix), stored)
    finally:
        for name in client.indices.get(index=f"{prefix}-*"):
            client.indices.delete(index=name)
        client.indices.delete_index_template(name=prefix)
        client.close()
        engine.dispose()
        if schema is not None:
            schema.drop()


def assert_parity(pair: Pair, query: SearchQuery) -> None:
    sql, es = pair.sql.search(query), pair.es.search(query)
    want = reference_search(pair.events, query)
    for got in (sql, es):
        assert got.total == want.total
        assert [h.id for h in got.hits] == [h.id for h in want.hits]
        assert [h.seq for h in got.hits] == [h.seq for h in want.hits]
        assert dict(got.aggs) == dict(want.aggs)
    # And the hits are the very events that were stored, field for field.
    assert [h.canonical_bytes() for h in es.hits] == [h.canonical_bytes() for h in sql.hits]


T0 = START
QUERIES = [
    SearchQuery(),
    SearchQuery(sort="ts", size=40, aggs=("by_actor", "by_action", "by_effect")),
    SearchQuery(sort="seq", page=4, size=30),
    SearchQuery(sort="-seq", size=0, aggs=("per_day", "per_hour"), tz="Asia/Shanghai"),
    SearchQuery(actor="u2", aggs=("per_day",), tz="Asia/Shanghai"),
    SearchQuery(role="consumer", org="市人社局", aggs=("by_actor", "per_hour"), tz="UTC"),
    SearchQuery(action="export", effect="deny", sort="ts"),
    SearchQuery(dataset="户籍人口", grade="L4", aggs=("by_effect",)),
    SearchQuery(since=T0 + timedelta(hours=30), until=T0 + timedelta(days=4), sort="ts",
                aggs=("per_day",), tz="America/New_York"),
    SearchQuery(q="report"),
    SearchQuery(q="年报 ANNUAL", aggs=("by_action",)),
    SearchQuery(q="审批", sort="-seq", aggs=("per_day",), tz="Asia/Shanghai"),
    SearchQuery(q="psi match", effect="allow"),
    SearchQuery(q="no-such-text"),
    SearchQuery(actor="nobody", aggs=("by_actor", "per_day")),
    SearchQuery(size=5, aggs=("by_org", "by_dataset", "by_grade", "by_ip", "sum(rows)")),
    SearchQuery(actor="nobody", aggs=("by_ip", "sum(rows)")),
    SearchQuery(page=2, size=200, sort="ts"),
    # Case-insensitive filters, names, dotted actions, addresses, exclusions, facets.
    SearchQuery(effect="DENY", role="CONSUMER", aggs=("by_org", "by_dataset")),
    SearchQuery(actor="social-insurance-app", aggs=("by_actor", "by_source_ip")),
    SearchQuery(action="aggregate", sort="ts", aggs=("by_action",)),
    SearchQuery(action="EXCHANGE.AGGREGATE"),
    SearchQuery(source_ip="10.0.0.0/16", aggs=("by_source_ip",), sort="source_ip"),
    SearchQuery(source_ip="2001:DB8::7"),
    SearchQuery(source_ip="2001:db8::/32", effect="allow"),
    SearchQuery(source_ip="10.1.2.3", outcome="FAILURE"),
    SearchQuery(exclude=(("org", "市人社局"), ("effect", "deny")),
                aggs=("by_org", "by_effect", "by_outcome", "by_grade", "by_role")),
    SearchQuery(exclude=(("dataset", "户籍人口"),), sort="-dataset", size=100),
    SearchQuery(exclude=(("source_ip", "10.0.0.0/8"),), aggs=("by_source_ip",)),
    SearchQuery(sort="actor", size=120), SearchQuery(sort="-org", size=120),
    SearchQuery(sort="grade", size=200, page=2), SearchQuery(sort="-grade", size=200),
    SearchQuery(sort="rows", size=50), SearchQuery(sort="-source_ip", size=150),
    SearchQuery(sort="effect", size=200), SearchQuery(sort="-action", size=100, page=3),
    SearchQuery(since=T0, until=T0 + timedelta(hours=2), aggs=("per_minute",),
                tz="Asia/Shanghai"),
    SearchQuery(aggs=("per_week",), tz="Asia/Shanghai"),
    SearchQuery(aggs=("per_week", "per_day"), tz="America/New_York", size=0),
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_same_hits_and_aggs(pair: Pair, query: SearchQuery) -> None:
    assert_parity(pair, query)


def test_microsecond_bounds(pair: Pair) -> None:
    stamps = sorted({e.ts for e in pair.events})
    # Two stored events less than a millisecond apart: a bound between them must split them.
    a, b = next((x, y) for x, y in pairwise(stamps)
                if y - x < timedelta(milliseconds=1))
    assert a < b
    for query in (SearchQuery(since=b, sort="ts"), SearchQuery(until=b, sort="-ts"),
                  SearchQuery(since=a, until=b)):
        assert_parity(pair, query)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    actor=st.sampled_from([None] + [a.id for a in ACTORS]),
    role=st.sampled_from([None, "consumer", "provider"]),
    action=st.sampled_from([None, "export", "query", "read_masked"]),
    effect=st.sampled_from([None, "allow", "deny", "approval_required"]),
    dataset=st.sampled_from([None, "社保缴纳", "医疗机构"]),
    start_h=st.one_of(st.none(), st.integers(0, 300)),
    span_h=st.integers(1, 400),
    q=st.one_of(st.none(), st.sampled_from(["report", "REPORT", "统计", "check", "审核 qual",
                                            "e", "export audit", "%", "_x"])),
    sort=st.sampled_from(["ts", "-ts", "seq", "-seq", "actor", "-dataset", "grade",
                          "-rows", "source_ip", "-effect"]),
    page=st.integers(1, 5),
    size=st.sampled_from([0, 1, 10, 100]),
    aggs=st.lists(st.sampled_from(["by_actor", "by_action", "by_effect", "per_hour", "per_day",
                                   "by_org", "by_source_ip", "per_week", "by_dataset",
                                   "by_grade", "sum(rows)"]), max_size=5),
    tz=st.sampled_from(ZONES),
)
def test_same_hits_and_aggs_generated(pair: Pair, actor: Any, role: Any, action: Any,
                                      effect: Any, dataset: Any, start_h: Any, span_h: int,
                                      q: Any, sort: str, page: int, size: int,
                                      aggs: list[str], tz: str) -> None:
    since = T0 + timedelta(hours=start_h, microseconds=start_h * 311) if start_h is not None else None
    until = since + timedelta(hours=span_h) if since is not None else None
    query = SearchQuery(actor=actor, role=role, action=action, effect=effect, dataset=dataset,
                        since=since, until=until, q=q, sort=sort, page=page, size=size,
                        aggs=tuple(aggs), tz=tz)
    assert_parity(pair, query)


