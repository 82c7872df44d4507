"""Generated audit events and a plain-Python reading of the search semantics.

The reference (``reference_search``) is written straight from ``monitor.search``'s
docstring, independently of both backends; the parity tests hold the SQL and the
Elasticsearch backends to it and to each other.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.events import Actor, AuditEvent, EventDecision
from monitor.search import Bucket, SearchQuery, SearchResult, order_terms

ACTORS = [Actor(f"u{i}", role, org) for i, (role, org) in enumerate([
    ("consumer", "市人社局"), ("provider", "市卫健委"), ("manager", "市大数据局"),
    ("consumer", "市公安局"), ("auditor", "市大数据局"), ("consumer", "市人社局")])]
ACTIONS = ["read_masked", "export", "aggregate", "psi", "query", "download"]
DATASETS = ["社保缴纳", "户籍人口", "医疗机构", None]
GRADES = ["L1", "L2", "L3", "L4", None]
PURPOSES = ["统计分析 Monthly report", "导出 export for audit", "核查 PSI match",
            "Annual REPORT 年报", None, "资格审核 qualification check"]
REASONS = ["rule allow-l2", "denied: grade too high", None, "审批通过 approved"]
START = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)


def make_events(n: int, *, seed: int = 7, start: datetime = START) -> list[AuditEvent]:
    """``n`` events with seq 1..n over ~10 days, several within the same millisecond."""
    rng = random.Random(seed)
    events = []
    ts = start
    for seq in range(1, n + 1):
        step = rng.choice([0, 0.0003, 0.7, 61, 3600 * 3, 3600 * 7])  # duplicates, sub-ms, hours
        ts = ts + timedelta(seconds=step)
        actor = rng.choice(ACTORS)
        effect = rng.choice(["allow", "allow", "deny", "approval_required", None])
        events.append(AuditEvent(
            ts=ts if rng.random() > 0.1 else start + timedelta(hours=rng.randint(0, 200)),
            actor=actor, action=rng.choice(ACTIONS), reporter="svc-test",
            id=f"{seed:04d}{seq:08d}{rng.getrandbits(32):08x}", seq=seq,
            dataset=rng.choice(DATASETS), fields=tuple(rng.sample(["name", "id_no", "phone"], 2)),
            grade=rng.choice(GRADES), rows=rng.randint(0, 5000), purpose=rng.choice(PURPOSES),
            reason=rng.choice(REASONS),
            decision=EventDecision(effect, "r-1", "v1") if effect else None,
            source_ip="10.0.0.1", labels={"k": "v"},
        ))
    return events


def _value(event: AuditEvent, name: str) -> str | None:
    return {
        "actor": event.actor.id, "role": event.actor.role, "org": event.actor.org,
        "action": event.action, "dataset": event.dataset, "grade": event.grade,
        "effect": event.effect,
    }[name]


def _bucket_key(ts: datetime, zone: ZoneInfo, unit: str) -> tuple[datetime, str]:
    local = ts.astimezone(zone)
    if unit == "day":
        start = datetime(local.year, local.month, local.day, tzinfo=zone)
    else:
        start = local.replace(minute=0, second=0, microsecond=0)
    return start, start.isoformat()


def reference_search(events: Sequence[AuditEvent], query: SearchQuery) -> SearchResult:
    matched = []
    for event in events:
        if any(_value(event, k) != v for k, v in query.filters().items()):
            continue
        if query.since is not None and event.ts < query.since:
            continue
        if query.until is not None and event.ts >= query.until:
            continue
        texts = [(event.purpose or "").lower(), (event.reason or "").lower()]
        if not all(any(term in t for t in texts) for term in query.terms):
            continue
        matched.append(event)
    desc = query.sort.startswith("-")
    if query.sort.lstrip("-") == "ts":
        matched.sort(key=lambda e: (e.ts, e.seq or 0), reverse=desc)
    else:
        matched.sort(key=lambda e: e.seq or 0, reverse=desc)
    aggs: dict[str, tuple[Bucket, ...]] = {}
    zone = ZoneInfo(query.tz)
    for name in query.aggs:
        if name.startswith("by_"):
            field = name[3:]
            counts = Counter(v for e in matched if (v := _value(e, field)) is not None)
            aggs[name] = order_terms(counts)
        else:
            unit = "hour" if name == "per_hour" else "day"
            keys = Counter(_bucket_key(e.ts, zone, unit) for e in matched)
            aggs[name] = tuple(Bucket(k[1], c) for k, c in sorted(keys.items()))
    page = matched[query.offset: query.offset + query.size]
    return SearchResult(total=len(matched), hits=tuple(page), aggs=aggs)
