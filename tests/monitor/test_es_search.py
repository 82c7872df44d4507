"""The Elasticsearch backend: cluster check, index layout, search semantics.

Hits (ids in order), totals and aggregation buckets must equal the reference reading of
``monitor.search`` (tests.es_fixture.reference_search) for many query shapes; the SQL
parity is in test_es_parity.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.errors import MonitorError
from monitor.es import (
    EsIncompatible,
    EsSink,
    EsUnavailable,
    check_cluster,
    client_major,
    index_for,
    make_client,
)
from monitor.es_search import EsSearchBackend
from monitor.events import AuditEvent
from monitor.search import SearchQuery
from tests.es_fixture import ACTORS, START, make_events, reference_search

pytestmark = pytest.mark.es

N_EVENTS = 400


@pytest.fixture(scope="module")
def loaded(es_server: Any) -> Any:
    """One index prefix loaded with the generated events for the whole module."""
    import uuid

    prefix = f"qgtest-{uuid.uuid4().hex[:10]}"
    client = make_client(es_server.url)
    sink = EsSink(client, prefix=prefix)
    sink.ensure_template()
    events = make_events(N_EVENTS)
    for i in range(0, len(events), 150):
        sink.write(events[i:i + 150])
    sink.refresh()
    yield EsSearchBackend(client, prefix=prefix), events
    for name in client.indices.get(index=f"{prefix}-*"):
        client.indices.delete(index=name)
    client.indices.delete_index_template(name=prefix)
    client.close()


def ids(result: Any) -> list[str]:
    return [h.id for h in result.hits]


def assert_same(backend: Any, events: list[AuditEvent], query: SearchQuery) -> None:
    got = backend.search(query)
    want = reference_search(events, query)
    assert got.total == want.total
    assert ids(got) == ids(want)
    assert [h.seq for h in got.hits] == [h.seq for h in want.hits]
    assert dict(got.aggs) == dict(want.aggs)


T0 = START
QUERIES = [
    SearchQuery(),
    SearchQuery(sort="ts", size=30),
    SearchQuery(sort="seq", page=3, size=25),
    SearchQuery(sort="-seq", size=0, aggs=("by_actor", "by_action", "by_effect")),
    SearchQuery(actor="u1", aggs=("per_day",), tz="Asia/Shanghai"),
    SearchQuery(role="consumer", org="市人社局", sort="ts", aggs=("per_hour",), tz="Asia/Shanghai"),
    SearchQuery(action="export", effect="deny"),
    SearchQuery(dataset="社保缴纳", grade="L3", aggs=("by_actor",)),
    SearchQuery(effect="approval_required", aggs=("per_day",), tz="UTC"),
    SearchQuery(since=T0 + timedelta(hours=20), until=T0 + timedelta(days=3), sort="ts"),
    SearchQuery(q="report", aggs=("by_action", "per_day"), tz="Asia/Kolkata"),
    SearchQuery(q="REPORT 年报"),
    SearchQuery(q="统计", sort="seq"),
    SearchQuery(q="grade high", effect="deny"),
    SearchQuery(q="nothing-matches-this"),
    SearchQuery(actor="nobody", aggs=("by_actor", "per_hour")),
    SearchQuery(page=2, size=1000 // 4, aggs=("per_hour",), tz="America/New_York"),
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_search_matches_reference(loaded: Any, query: SearchQuery) -> None:
    backend, events = loaded
    assert_same(backend, events, query)


def test_since_until_are_exact_to_the_microsecond(loaded: Any) -> None:
    backend, events = loaded
    # Events that share a millisecond but differ in microseconds must split exactly.
    by_ms: dict[int, list[AuditEvent]] = {}
    for e in events:
        by_ms.setdefault(int(e.ts.timestamp() * 1000), []).append(e)
    close = next(v for v in by_ms.values() if len({e.ts for e in v}) > 1)
    cut = sorted({e.ts for e in close})[1]
    for query in (SearchQuery(since=cut, sort="ts"), SearchQuery(until=cut, sort="-ts")):
        assert_same(backend, events, query)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actor=st.sampled_from([None] + [a.id for a in ACTORS]),
    action=st.sampled_from([None, "export", "query", "psi"]),
    effect=st.sampled_from([None, "allow", "deny"]),
    grade=st.sampled_from([None, "L1", "L4"]),
    start_h=st.one_of(st.none(), st.integers(0, 240)),
    span_h=st.integers(1, 300),
    q=st.sampled_from([None, "report", "Report 年", "核查", "a", "审批 approved", "x y"]),
    sort=st.sampled_from(["ts", "-ts", "seq", "-seq"]),
    page=st.integers(1, 4),
    size=st.sampled_from([0, 1, 7, 50]),
    aggs=st.lists(st.sampled_from(["by_actor", "by_action", "by_effect", "per_hour", "per_day"]),
                  max_size=3),
    tz=st.sampled_from(["UTC", "Asia/Shanghai", "Asia/Kathmandu"]),
)
def test_search_matches_reference_generated(loaded: Any, actor: Any, action: Any, effect: Any,
                                            grade: Any, start_h: Any, span_h: int, q: Any,
                                            sort: str, page: int, size: int, aggs: list[str],
                                            tz: str) -> None:
    backend, events = loaded
    since = T0 + timedelta(hours=start_h, microseconds=start_h * 37) if start_h is not None else None
    until = since + timedelta(hours=span_h) if since is not None else None
    query = SearchQuery(actor=actor, action=action, effect=effect, grade=grade, since=since,
                        until=until, q=q, sort=sort, page=page, size=size, aggs=tuple(aggs), tz=tz)
    assert_same(backend, events, query)


def test_hits_round_trip_the_event(loaded: Any) -> None:
    backend, events = loaded
    by_id = {e.id: e for e in events}
    result = backend.search(SearchQuery(size=100))
    assert result.hits
    for hit in result.hits:
        assert hit == by_id[hit.id]
        assert hit.canonical_bytes() == by_id[hit.id].canonical_bytes()


def test_cluster_check_reports_version_and_health(es_server: Any) -> None:
    client = make_client(es_server.url)
    info = check_cluster(client, es_server.url)
    assert int(info.version.split(".")[0]) == client_major()
    assert info.health in ("green", "yellow")
    assert info.as_dict()["client_version"].startswith(f"{client_major()}.")
    client.close()


class _FakeClient:
    """Answers ``info`` like a cluster of another major version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.health_calls = 0

    def info(self) -> dict[str, Any]:
        return {"cluster_name": "c", "version": {"number": self.version}}

    class cluster:
        @staticmethod
        def health() -> dict[str, Any]:
            raise AssertionError("a mismatched cluster must be refused before anything else")


@pytest.mark.parametrize("delta", [-1, 1])
def test_cluster_of_another_major_is_refused(delta: int) -> None:
    other = f"{client_major() + delta}.1.0"
    with pytest.raises(EsIncompatible, match=rf"version {other}.*supports only {client_major()}\.x"):
        check_cluster(_FakeClient(other), "http://es.example:9200")
    assert EsIncompatible.kind == "invalid"
    assert issubclass(EsIncompatible, MonitorError)


def test_unreachable_cluster_is_unavailable() -> None:
    from tests.serving import free_port

    client = make_client(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(EsUnavailable) as err:
        check_cluster(client)
    assert err.value.kind == "unavailable"
    with pytest.raises(EsUnavailable):
        EsSearchBackend(client, prefix="nothing").search(SearchQuery())


def test_template_maps_ids_as_keywords_and_text_fields(es_server: Any, es_prefix: str) -> None:
    client = make_client(es_server.url)
    sink = EsSink(client, prefix=es_prefix)
    sink.ensure_template()
    event = make_events(1)[0]
    sink.write([event], refresh=True)
    mapping = client.indices.get_mapping(index=index_for(es_prefix, event.ts))
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["event"]["properties"]["id"]["type"] == "keyword"
    assert props["@timestamp"]["type"] == "date"
    assert props["audit"]["properties"]["purpose"]["type"] == "text"
    assert props["user"]["properties"]["id"]["type"] == "keyword"
    client.close()


def test_create_never_duplicates(es_server: Any, es_prefix: str) -> None:
    client = make_client(es_server.url)
    sink = EsSink(client, prefix=es_prefix)
    sink.ensure_template()
    events = make_events(30, seed=3, start=datetime(2026, 1, 31, 23, 0, tzinfo=UTC))
    first = sink.write(events[:20])
    again = sink.write(events)  # a retry of the first batch plus new ones
    sink.refresh()
    assert (first.created, first.existing) == (20, 0)
    assert (again.created, again.existing) == (10, 20)
    assert sink.count() == 30
    # Events of two months went to two monthly indices.
    assert len(client.indices.get(index=f"{es_prefix}-events-*")) == 2
    client.close()
