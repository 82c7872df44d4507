"""What the console pages show: form -> SearchQuery, hits -> rows, buckets -> bars, pages,
facets -> links, matched text -> highlighted segments.

Plain functions over plain values (no request objects), so each is testable alone.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from monitor.events import AuditEvent, utc_now
from monitor.search import FACET_SIZE, FILTERS, MAX_WINDOW, Bucket, SearchQuery, histogram_for

__all__ = [
    "FACET_FIELDS",
    "FILTER_FIELDS",
    "PAGE_SIZE",
    "RANGES",
    "SORTS",
    "Bar",
    "Chart",
    "build_chart",
    "facet_links",
    "highlight",
    "hit_rows",
    "page_urls",
    "parse_search_form",
    "sort_links",
    "templates",
]

PAGE_SIZE = 50
FILTER_FIELDS = (("actor", "Actor 主体 (id or name)"), ("role", "Role 角色"), ("org", "Org 单位"),
                 ("action", "Action 操作"), ("dataset", "Dataset 数据集"),
                 ("grade", "Grade 分级"), ("effect", "Effect 决定"), ("outcome", "Outcome 结果"),
                 ("source_ip", "Source IP / CIDR"))
FACET_FIELDS = (("actor", "Actors 主体"), ("org", "Orgs 单位"), ("dataset", "Datasets 数据集"),
                ("action", "Actions 操作"), ("effect", "Effects 决定"),
                ("source_ip", "Source IPs 来源地址"))
SORTS = (("-ts", "newest first"), ("ts", "oldest first"), ("-seq", "seq desc"), ("seq", "seq asc"))
RANGES = (("", "any time"), ("15m", "last 15 min"), ("24h", "last 24 h"), ("7d", "last 7 d"),
          ("30d", "last 30 d"))
_RANGE = {"15m": timedelta(minutes=15), "24h": timedelta(hours=24), "7d": timedelta(days=7),
          "30d": timedelta(days=30)}
EXCLUDE_KEYS = tuple(f"not_{n}" for n in FILTERS)
FORM_KEYS = (tuple(n for n, _ in FILTER_FIELDS) + ("since", "until", "range", "q", "sort")
             + EXCLUDE_KEYS)
_CHART_W, _CHART_H = 1000, 140

_TEMPLATES = Path(__file__).parent / "templates"
_env: Environment | None = None


def templates() -> Environment:
    global _env
    if _env is None:
        _env = Environment(loader=FileSystemLoader(str(_TEMPLATES)),
                           autoescape=select_autoescape(["html"]), auto_reload=False)
    return _env


def _local_dt(text: str, zone: ZoneInfo, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name}: {text!r} is not a date and time") from exc
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def parse_search_form(form: Mapping[str, str], *, tz: str, now: datetime | None = None
                      ) -> tuple[dict[str, str], SearchQuery]:
    """The cleaned form (for re-display and paging links) and its query.

    Times without an offset are local times in ``tz``. Raises ValueError or InvalidQuery
    with a message for the page.
    """
    clean = {k: v.strip() for k in FORM_KEYS if (v := (form.get(k) or "")).strip()}
    zone = ZoneInfo(tz)
    try:
        page = max(1, int(form.get("page") or 1))
    except ValueError as exc:
        raise ValueError("page must be a number") from exc
    since = _local_dt(clean["since"], zone, "from") if "since" in clean else None
    until = _local_dt(clean["until"], zone, "to") if "until" in clean else None
    if clean.get("range") and since is None and until is None:
        if clean["range"] not in _RANGE:
            raise ValueError(f"range must be one of {', '.join(_RANGE)}")
        until = now or utc_now()
        since = until - _RANGE[clean["range"]]
    end = until if until is not None else ((now or utc_now()) if since is not None else None)
    histogram = histogram_for(since, end)
    if histogram == "per_minute" and until is None:
        histogram = "per_hour"  # minutes need a closed range
    exclude = tuple((k[4:], v) for k, v in clean.items() if k.startswith("not_"))
    query = SearchQuery(
        **{n: clean.get(n) for n, _ in FILTER_FIELDS}, since=since, until=until,
        q=clean.get("q"), sort=clean.get("sort", "-ts"),
        page=min(page, MAX_WINDOW // PAGE_SIZE), size=PAGE_SIZE,
        aggs=(histogram, *(f"by_{n}" for n, _ in FACET_FIELDS)), tz=tz, exclude=exclude)
    return clean, query


@dataclass(frozen=True)
class Bar:
    label: str
    short: str
    count: int
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    width: int = _CHART_W
    height: int = _CHART_H
    unit: str = "day"

    @property
    def show_labels(self) -> bool:
        return len(self.bars) <= 31


_LABEL = {"minute": (11, 16), "hour": (11, 16), "day": (0, 10), "week": (0, 10)}


def build_chart(buckets: Sequence[Bucket], unit: str = "day") -> Chart:
    """Bars of an SVG chart, one per bucket, heights proportional to the counts."""
    if not buckets:
        return Chart((), unit=unit)
    top = max(b.count for b in buckets) or 1
    slot = _CHART_W / len(buckets)
    bars = []
    for i, bucket in enumerate(buckets):
        h = round(_CHART_H * bucket.count / top, 2)
        label = bucket.key[:16] if unit in ("minute", "hour") else bucket.key[:10]
        a, b = _LABEL[unit]
        short = bucket.key[a:b] if unit in ("minute", "hour") else label[5:]
        bars.append(Bar(label=label, short=short, count=bucket.count,
                        x=round(i * slot + slot * 0.1, 2), y=round(_CHART_H - h, 2),
                        w=round(slot * 0.8, 2), h=h))
    return Chart(tuple(bars), unit=unit)


def highlight(text: str | None, terms: Sequence[str]) -> list[tuple[str, bool]]:
    """``text`` split into (segment, matched) pairs for the free-text ``terms``
    (case-insensitive); the template marks matched segments (autoescaped, no markup)."""
    if not text:
        return []
    wanted = [t for t in terms if t]
    if not wanted:
        return [(text, False)]
    pattern = re.compile("|".join(re.escape(t) for t in sorted(wanted, key=len, reverse=True)),
                         re.IGNORECASE)
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], False))
        out.append((m.group(0), True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def hit_rows(hits: Sequence[AuditEvent], *, tz: str, terms: Sequence[str] = (),
             names: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    zone = ZoneInfo(tz)
    names = names or {}
    return [{
        "seq": e.seq, "time": e.ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "actor": e.actor.id, "name": e.actor.name or names.get(e.actor.id),
        "role": e.actor.role, "org": e.actor.org, "action": e.action,
        "dataset": e.dataset, "grade": e.grade, "effect": e.effect, "outcome": e.outcome,
        "rows": e.rows, "source_ip": e.source_ip, "purpose": highlight(e.purpose, terms),
        "reason": highlight(e.reason, terms),
    } for e in hits]


@dataclass(frozen=True)
class FacetLink:
    key: str
    label: str
    count: int
    include: str
    exclude: str
    active: bool


def facet_links(base: str, clean: Mapping[str, str], aggs: Mapping[str, Sequence[Bucket]],
                names: Mapping[str, str] | None = None
                ) -> list[tuple[str, str, list[FacetLink]]]:
    """(field, title, links) of each facet: the top buckets with a link that adds the
    value as a filter and one that excludes it (paging restarts)."""
    names = names or {}
    out = []
    for field, title in FACET_FIELDS:
        links = []
        for b in list(aggs.get(f"by_{field}", ()))[:FACET_SIZE]:
            keep = {k: v for k, v in clean.items() if k != "page"}
            include = {**keep, field: b.key}
            exclude = {**keep, f"not_{field}": b.key}
            label = f"{names[b.key]} ({b.key[:8]})" if field == "actor" and b.key in names \
                else b.key
            links.append(FacetLink(b.key, label, b.count, f"{base}?{urlencode(include)}",
                                   f"{base}?{urlencode(exclude)}",
                                   clean.get(field) == b.key))
        out.append((field, title, links))
    return out


def sort_links(base: str, clean: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """For each sortable column: (URL that sorts by it, arrow shown now)."""
    current = clean.get("sort", "-ts")
    out = {}
    for col in ("ts", "seq", "actor", "role", "org", "action", "dataset", "grade", "effect",
                "outcome", "rows", "source_ip"):
        nxt = f"-{col}" if current == col else col
        arrow = "▲" if current == col else ("▼" if current == f"-{col}" else "")
        keep = {k: v for k, v in clean.items() if k not in ("page", "sort")}
        out[col] = (f"{base}?{urlencode({**keep, 'sort': nxt})}", arrow)
    return out


def page_urls(base: str, clean: Mapping[str, str], *, page: int, total: int
              ) -> tuple[str | None, str | None, int]:
    """(previous page URL, next page URL, number of pages) for the current filters."""
    pages = min(math.ceil(total / PAGE_SIZE), MAX_WINDOW // PAGE_SIZE)

    def url(n: int) -> str:
        return f"{base}?{urlencode({**clean, 'page': n})}"

    return (url(page - 1) if page > 1 else None,
            url(page + 1) if page < pages else None, pages)
