"""What the console pages show: form -> SearchQuery, hits -> rows, buckets -> bars, pages.

Plain functions over plain values (no request objects), so each is testable alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from monitor.events import EFFECTS, AuditEvent
from monitor.search import MAX_WINDOW, Bucket, SearchQuery

__all__ = [
    "FILTER_FIELDS",
    "PAGE_SIZE",
    "SORTS",
    "Bar",
    "Chart",
    "build_chart",
    "hit_rows",
    "page_urls",
    "parse_search_form",
    "templates",
]

PAGE_SIZE = 50
FILTER_FIELDS = (("actor", "Actor id"), ("role", "Role"), ("org", "Org 单位"),
                 ("action", "Action"), ("dataset", "Dataset 数据集"), ("grade", "Grade 分级"))
SORTS = (("-ts", "newest first"), ("ts", "oldest first"), ("-seq", "seq desc"), ("seq", "seq asc"))
FORM_KEYS = tuple(n for n, _ in FILTER_FIELDS) + ("effect", "since", "until", "q", "sort")
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


def parse_search_form(form: Mapping[str, str], *, tz: str) -> tuple[dict[str, str], SearchQuery]:
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
    if clean.get("effect") and clean["effect"] not in EFFECTS:
        raise ValueError(f"effect must be one of {', '.join(EFFECTS)}")
    since = _local_dt(clean["since"], zone, "from") if "since" in clean else None
    until = _local_dt(clean["until"], zone, "to") if "until" in clean else None
    query = SearchQuery(
        **{n: clean.get(n) for n, _ in FILTER_FIELDS}, effect=clean.get("effect"),
        since=since, until=until, q=clean.get("q"), sort=clean.get("sort", "-ts"),
        page=min(page, MAX_WINDOW // PAGE_SIZE), size=PAGE_SIZE, aggs=("per_day",), tz=tz)
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

    @property
    def show_labels(self) -> bool:
        return len(self.bars) <= 31


def build_chart(buckets: Sequence[Bucket]) -> Chart:
    """Bars of an SVG chart, one per day bucket, heights proportional to the counts."""
    if not buckets:
        return Chart(())
    top = max(b.count for b in buckets) or 1
    slot = _CHART_W / len(buckets)
    bars = []
    for i, bucket in enumerate(buckets):
        h = round(_CHART_H * bucket.count / top, 2)
        label = bucket.key[:10]
        bars.append(Bar(label=label, short=label[5:], count=bucket.count,
                        x=round(i * slot + slot * 0.1, 2), y=round(_CHART_H - h, 2),
                        w=round(slot * 0.8, 2), h=h))
    return Chart(tuple(bars))


def hit_rows(hits: Sequence[AuditEvent], *, tz: str) -> list[dict[str, Any]]:
    zone = ZoneInfo(tz)
    return [{
        "seq": e.seq, "time": e.ts.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        "actor": e.actor.id, "role": e.actor.role, "org": e.actor.org, "action": e.action,
        "dataset": e.dataset, "grade": e.grade, "effect": e.effect, "rows": e.rows,
        "purpose": e.purpose,
    } for e in hits]


def page_urls(base: str, clean: Mapping[str, str], *, page: int, total: int
              ) -> tuple[str | None, str | None, int]:
    """(previous page URL, next page URL, number of pages) for the current filters."""
    pages = min(math.ceil(total / PAGE_SIZE), MAX_WINDOW // PAGE_SIZE)

    def url(n: int) -> str:
        return f"{base}?{urlencode({**clean, 'page': n})}"

    return (url(page - 1) if page > 1 else None,
            url(page + 1) if page < pages else None, pages)
