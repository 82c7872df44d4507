"""Searching the Elasticsearch copy with the semantics of ``monitor.search``.

A :class:`SearchQuery` becomes one ``search`` request: ``term`` filters on keyword fields,
a ``range`` on the integer-microsecond timestamp (exact bounds), ``wildcard``
(``case_insensitive``) on the keyword sub-fields of purpose/reason for the free-text terms,
``sort`` with ``event.sequence`` as the tie-breaker, ``from``/``size``, exact totals,
``terms`` aggregations ordered count desc / key asc, and ``date_histogram`` in UTC steps
regrouped here into local hours and days of the query's zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.es import DEFAULT_PREFIX, call_es, index_pattern, ts_us
from monitor.events import AuditEvent
from monitor.search import (
    SUM_ROWS,
    TERMS_SIZE,
    Bucket,
    SearchQuery,
    SearchResult,
    cidr_values,
    fold_buckets,
    order_terms,
    parse_network,
    select_cidr,
)

_TERMS_SHARD_SIZE = 10_000  # exact terms counts across monthly indices
_MAX_DISTINCT_IPS = 65_536

# SearchQuery filter name -> indexed field.
FILTER_FIELDS: Mapping[str, str] = {
    "actor": "user.id", "role": "user.roles", "org": "organization.name",
    "action": "event.action", "dataset": "audit.dataset", "grade": "audit.grade",
    "effect": "audit.effect", "outcome": "event.outcome", "source_ip": "source.ip",
}
SORT_FIELDS: Mapping[str, str] = {
    **FILTER_FIELDS, "ts": "quanguard.ts_us", "seq": "event.sequence", "rows": "audit.rows",
}
TERMS_AGG_FIELDS: Mapping[str, str] = {f"by_{k}": v for k, v in FILTER_FIELDS.items()}
_SUM_ROWS_NAME = "sum_rows"  # ES aggregation names are kept to [a-z_]
TEXT_FIELDS = ("event.reason", "audit.purpose.kw")
_HISTOGRAM_UNITS = {"per_minute": "minute", "per_hour": "hour", "per_day": "day",
                    "per_week": "week"}


def _wildcard_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _term(field: str, value: str) -> dict[str, Any]:
    return {"term": {field: {"value": value, "case_insensitive": True}}}


def _address(field: str, value: str) -> dict[str, Any]:
    # An exact address as a one-point range: the same as a ``term`` on an ``ip`` field,
    # and it also works on the ES-compatible stand-in used in tests, whose ``term`` finds
    # no IPv6 address.
    return {"range": {field: {"gte": value, "lte": value}}}


def _match(name: str, value: str, cidr: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The query of one filter (see monitor.search for the semantics)."""
    field = FILTER_FIELDS[name]
    if name == "actor":
        return {"bool": {"minimum_should_match": 1, "should": [
            {"term": {"user.id": value}}, _term("user.name", value)]}}
    if name == "source_ip":
        if parse_network(value) is None:
            return _address(field, value)
        inside = cidr.get(value, ())
        return {"bool": {"minimum_should_match": 1,
                         "should": [_address(field, ip) for ip in inside]}} if inside else {
            "bool": {"must_not": [{"match_all": {}}]}}
    if name == "action":
        return {"bool": {"minimum_should_match": 1, "should": [
            _term(field, value),
            {"wildcard": {field: {"value": f"*.{_wildcard_escape(value)}",
                                  "case_insensitive": True}}}]}}
    if name in ("effect", "outcome"):
        return {"term": {field: value}}
    return _term(field, value)


def build_request(query: SearchQuery, cidr: Mapping[str, Sequence[str]] | None = None
                  ) -> dict[str, Any]:
    """The ``search`` keyword arguments for a query (no index); see monitor.search.

    ``cidr`` maps each CIDR ``source_ip`` value to the recorded addresses inside it
    (``select_cidr``). A CIDR ``term`` query would do on Elasticsearch itself, but the
    ES-compatible stand-in used in tests compares ``ip`` ranges as text and finds
    nothing with a CIDR ``term``; listing the addresses works on both and matches the
    SQL backend exactly.
    """
    cidr = cidr or {}
    filters: list[dict[str, Any]] = [_match(n, v, cidr) for n, v in query.filters().items()]
    must_not = [_match(n, v, cidr) for n, v in query.exclude]
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
    order = "desc" if query.descending else "asc"
    key = SORT_FIELDS[query.sort_field]
    numeric = query.sort_field in ("ts", "seq", "rows")
    sort = [{key: {"order": order, "missing": "_last",
                   "unmapped_type": "long" if numeric else "keyword"}}]
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
            step = "1m" if name == "per_minute" else _utc_step(query.tz)
            aggs[name] = {"date_histogram": {"field": "@timestamp", "min_doc_count": 1,
                                             "fixed_interval": step}}
    if filters or must_not:
        body: dict[str, Any] = {"bool": {"filter": filters}}
        if must_not:
            body["bool"]["must_not"] = must_not
    else:
        body = {"match_all": {}}
    return {
        "query": body,
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


def _histogram(buckets: Iterable[Mapping[str, Any]], zone: ZoneInfo,
               unit: str) -> tuple[Bucket, ...]:
    return fold_buckets(((datetime.fromtimestamp(int(b["key"]) / 1000, UTC), int(b["doc_count"]))
                         for b in buckets), zone, unit)


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
            aggs[name] = _histogram(buckets, zone, _HISTOGRAM_UNITS[name])
    return SearchResult(total=total, hits=hits, aggs=aggs)


class EsSearchBackend:
    """SearchBackend over the shipped copy; same semantics as the SQL backend."""

    name = "elasticsearch"

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    def search(self, query: SearchQuery) -> SearchResult:
        values = cidr_values(query)
        cidr = select_cidr(values, self._addresses()) if values else {}
        request = build_request(query, cidr)
        resp = call_es("searching", self.client.search, index=index_pattern(self.prefix),
                     ignore_unavailable=True, allow_no_indices=True, **request)
        return parse_response(query, resp)

    def _addresses(self) -> list[str]:
        resp = call_es("listing source addresses", self.client.search,
                       index=index_pattern(self.prefix), ignore_unavailable=True,
                       allow_no_indices=True, size=0,
                       aggs={"ips": {"terms": {"field": "source.ip",
                                               "size": _MAX_DISTINCT_IPS}}})
        buckets = (resp.get("aggregations") or {}).get("ips", {}).get("buckets", [])
        return [str(b["key"]) for b in buckets]
