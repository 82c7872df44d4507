"""Searching the Elasticsearch copy with the semantics of ``monitor.search``.

A :class:`SearchQuery` becomes one ``search`` request: ``term`` filters on keyword fields,
a ``range`` on the integer-microsecond timestamp (exact bounds), ``wildcard``
(``case_insensitive``) on the keyword sub-fields of purpose/reason for the free-text terms,
``sort`` with ``event.sequence`` as the tie-breaker, ``from``/``size``, exact totals,
``terms`` aggregations ordered count desc / key asc, and ``date_histogram`` in UTC steps
regrouped here into local hours and days of the query's zone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.es import DEFAULT_PREFIX, call_es, index_pattern, ts_us
from monitor.events import AuditEvent
from monitor.search import SUM_ROWS, TERMS_SIZE, Bucket, SearchQuery, SearchResult, order_terms

_TERMS_SHARD_SIZE = 10_000  # exact terms counts across monthly indices

# SearchQuery filter name -> indexed field.
FILTER_FIELDS: Mapping[str, str] = {
    "actor": "user.id", "role": "user.roles", "org": "organization.name",
    "action": "event.action", "dataset": "audit.dataset", "grade": "audit.grade",
    "effect": "audit.effect",
}
TERMS_AGG_FIELDS: Mapping[str, str] = {
    "by_actor": "user.id", "by_action": "event.action", "by_effect": "audit.effect",
    "by_org": "organization.name", "by_dataset": "audit.dataset", "by_grade": "audit.grade",
    "by_ip": "source.ip",
}
_SUM_ROWS_NAME = "sum_rows"  # ES aggregation names are kept to [a-z_]
TEXT_FIELDS = ("event.reason.kw", "audit.purpose.kw")


def _wildcard_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def build_request(query: SearchQuery) -> dict[str, Any]:
    """The ``search`` keyword arguments for a query (no index); see monitor.search."""
    filters: list[dict[str, Any]] = [
        {"term": {FILTER_FIELDS[name]: value}} for name, value in query.filters().items()]
    bounds: dict[str, int] = {}
    if query.since is not None:
        bounds["gte"] = ts_us(query.since)
    if query.until is not None:
        bounds["lt"] = ts_us(query.until)
    if bounds:
        filters.append({"range": {"quanguard.ts_us": bounds}})
    for term in query.terms:
        pattern = f"*{_wildcard_escape(term)}*"
        filters.append({"bool": {"minimum_should_match": 1, "should": [
            {"wildcard": {f: {"value": pattern, "case_insensitive": True}}}
            for f in TEXT_FIELDS]}})
    order = "desc" if query.sort.startswith("-") else "asc"
    key = "quanguard.ts_us" if query.sort.lstrip("-") == "ts" else "event.sequence"
    sort = [{key: {"order": order, "unmapped_type": "long"}}]
    if key != "event.sequence":
        sort.append({"event.sequence": {"order": order, "unmapped_type": "long"}})
    aggs: dict[str, Any] = {}
    for name in query.aggs:
        if name == SUM_ROWS:
            aggs[_SUM_ROWS_NAME] = {"sum": {"field": "audit.rows"}}
        elif name in TERMS_AGG_FIELDS:
            aggs[name] = {"terms": {"field": TERMS_AGG_FIELDS[name], "size": TERMS_SIZE,
                                    "shard_size": _TERMS_SHARD_SIZE,
                                    "order": [{"_count": "desc"}, {"_key": "asc"}]}}
        else:
            aggs[name] = {"date_histogram": {"field": "@timestamp", "min_doc_count": 1,
                                             "fixed_interval": _utc_step(query.tz)}}
    return {
        "query": {"bool": {"filter": filters}} if filters else {"match_all": {}},
        "sort": sort,
        "from_": query.offset,
        "size": query.size,
        "track_total_hits": True,
        "aggs": aggs or None,
    }


def _utc_step(tz: str) -> str:
    """UTC buckets fine enough to regroup exactly into local hours and days of ``tz``.

    Local days and hours are regrouped from UTC buckets on our side rather than with the
    histogram's ``time_zone`` parameter, which the stand-in ignores; an hour step is exact
    for zones whose offset is whole hours, a quarter hour for all others.
    """
    zone = ZoneInfo(tz)
    year = datetime.now(UTC).year
    for probe in (datetime(year, 1, 1, tzinfo=UTC), datetime(year, 7, 1, tzinfo=UTC)):
        offset = probe.astimezone(zone).utcoffset()
        if offset is not None and offset.total_seconds() % 3600:
            return "15m"
    return "1h"


def local_bucket(epoch_ms: int, zone: ZoneInfo, unit: str) -> str:
    """The local ``hour``/``day`` bucket key (ISO 8601 with offset) of an instant."""
    local = datetime.fromtimestamp(epoch_ms / 1000, UTC).astimezone(zone)
    if unit == "day":
        return datetime(local.year, local.month, local.day, tzinfo=zone).isoformat()
    return local.replace(minute=0, second=0, microsecond=0).isoformat()


def _histogram(buckets: Iterable[Mapping[str, Any]], zone: ZoneInfo,
               unit: str) -> tuple[Bucket, ...]:
    counts: Counter[str] = Counter()
    starts: dict[str, int] = {}
    for bucket in buckets:
        if not bucket["doc_count"]:
            continue
        key = local_bucket(int(bucket["key"]), zone, unit)
        counts[key] += int(bucket["doc_count"])
        starts.setdefault(key, int(bucket["key"]))
    return tuple(Bucket(k, counts[k]) for k in sorted(counts, key=lambda k: starts[k]))


def parse_response(query: SearchQuery, resp: Mapping[str, Any]) -> SearchResult:
    hits = tuple(AuditEvent.from_document(h["_source"]) for h in resp["hits"]["hits"])
    total = int(resp["hits"]["total"]["value"])
    aggs: dict[str, tuple[Bucket, ...]] = {}
    raw = resp.get("aggregations") or {}
    zone = ZoneInfo(query.tz)
    for name in query.aggs:
        if name == SUM_ROWS:
            aggs[name] = (Bucket("rows", int(raw.get(_SUM_ROWS_NAME, {}).get("value") or 0)),)
            continue
        buckets = raw.get(name, {}).get("buckets", [])
        if name in TERMS_AGG_FIELDS:
            aggs[name] = order_terms({str(b["key"]): int(b["doc_count"]) for b in buckets})
        else:
            aggs[name] = _histogram(buckets, zone, "hour" if name == "per_hour" else "day")
    return SearchResult(total=total, hits=hits, aggs=aggs)


class EsSearchBackend:
    """SearchBackend over the shipped copy; same semantics as the SQL backend."""

    name = "elasticsearch"

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    def search(self, query: SearchQuery) -> SearchResult:
        request = build_request(query)
        resp = call_es("searching", self.client.search, index=index_pattern(self.prefix),
                     ignore_unavailable=True, allow_no_indices=True, **request)
        return parse_response(query, resp)
