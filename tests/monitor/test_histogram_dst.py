"""Local-time histograms across a daylight-saving change: both search backends count the
repeated wall-clock hour of the autumn change as two hours, as a person reading the chart
expects (02:00+02:00, then 02:00+01:00), and agree bucket for bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from monitor.es_search import parse_response
from monitor.events import Actor, AuditEvent
from monitor.search import SearchQuery
from monitor.sql_search import SqlSearchBackend
from monitor.store import AuditStore

# Europe/Berlin leaves summer time at 01:00 UTC on 2026-10-25: 02:00-03:00 local happens twice.
CHANGE = datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
INSTANTS = [CHANGE - timedelta(minutes=90), CHANGE - timedelta(minutes=30),
            CHANGE + timedelta(minutes=30), CHANGE + timedelta(minutes=31),
            CHANGE + timedelta(minutes=90)]
WANT = [("2026-10-25T01:00:00+02:00", 1), ("2026-10-25T02:00:00+02:00", 1),
        ("2026-10-25T02:00:00+01:00", 2), ("2026-10-25T03:00:00+01:00", 1)]


def _events() -> list[AuditEvent]:
    return [AuditEvent(ts=ts, actor=Actor("alice", "consumer", "市局"), action="query",
                       reporter="quanguard") for ts in INSTANTS]


def test_sql_histogram_keeps_the_repeated_hour_apart(engine: sa.Engine, store: AuditStore) -> None:
    with Session(engine) as s, s.begin():
        store.append(s, _events())
    backend = SqlSearchBackend(lambda: Session(engine))
    got = backend.search(SearchQuery(aggs=("per_hour",), tz="Europe/Berlin", size=0))
    assert [(b.key, b.count) for b in got.aggs["per_hour"]] == WANT


def test_es_histogram_gives_the_same_buckets() -> None:
    # the UTC hour buckets Elasticsearch answers with (the stand-in ignores time_zone)
    slots: dict[int, int] = {}
    for ts in INSTANTS:
        hour = ts.replace(minute=0, second=0, microsecond=0)
        key = int(hour.timestamp() * 1000)
        slots[key] = slots.get(key, 0) + 1
    resp = {"hits": {"total": {"value": len(INSTANTS)}, "hits": []},
            "aggregations": {"per_hour": {"buckets": [
                {"key": k, "doc_count": n} for k, n in sorted(slots.items())]}}}
    got = parse_response(SearchQuery(aggs=("per_hour",), tz="Europe/Berlin", size=0), resp)
    assert [(b.key, b.count) for b in got.aggs["per_hour"]] == WANT
