"""The console's pure helpers: relative ranges and the histogram interval, highlighting,
facet links, sort links, and the CSV cell rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from monitor.errors import InvalidQuery
from monitor.search import Bucket, histogram_for
from quanguard.console.views import facet_links, highlight, parse_search_form, sort_links
from quanguard.usecases.audit_read import csv_safe

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


@pytest.mark.parametrize(("form", "interval", "span"), [
    ({"range": "15m"}, "per_minute", timedelta(minutes=15)),
    ({"range": "24h"}, "per_hour", timedelta(hours=24)),
    ({"range": "7d"}, "per_day", timedelta(days=7)),
    ({"range": "30d"}, "per_day", timedelta(days=30)),
    ({"since": "2026-01-01T00:00", "until": "2026-11-01T00:00"}, "per_week", None),
    ({"since": "2026-11-26T08:00", "until": "2026-11-26T09:00"}, "per_minute", None),
    ({"q": "x"}, "per_day", None),
])
def test_the_histogram_follows_the_range(form: dict[str, str], interval: str,
                                         span: timedelta | None) -> None:
    _, query = parse_search_form(form, tz=TZ, now=NOW)
    assert interval in query.aggs
    if span is not None:
        assert query.since is not None
        assert query.until == NOW and query.until - query.since == span


def test_an_absolute_range_wins_over_a_relative_one() -> None:
    _, query = parse_search_form({"range": "15m", "since": "2026-03-01T00:00"}, tz=TZ, now=NOW)
    assert query.since is not None and query.since.year == 2026 and query.since.month == 3
    assert query.until is None and "per_minute" not in query.aggs


@pytest.mark.parametrize("form", [{"range": "1y"}, {"effect": "DENIED"},
                                  {"source_ip": "10.0.0.0/99"}, {"not_purpose": "x"}])
def test_bad_forms_are_messages(form: dict[str, str]) -> None:
    clean, query = None, None
    try:
        clean, query = parse_search_form(form, tz=TZ, now=NOW)
    except (ValueError, InvalidQuery) as exc:
        assert str(exc)
        return
    # not_purpose is not a form key: ignored, never an unchecked filter
    assert form == {"not_purpose": "x"} and clean == {} and query is not None


def test_case_insensitive_form_values() -> None:
    _, query = parse_search_form({"effect": "DENY", "not_effect": "Allow"}, tz=TZ, now=NOW)
    assert query.effect == "deny" and query.exclude == (("effect", "allow"),)


def test_highlight_is_case_insensitive_and_keeps_the_text() -> None:
    parts = highlight("Annual REPORT 年报 report", ("report", "年报"))
    assert "".join(p for p, _ in parts) == "Annual REPORT 年报 report"
    assert [p for p, hit in parts if hit] == ["REPORT", "年报", "report"]
    assert highlight(None, ("x",)) == [] and highlight("<b>", ()) == [("<b>", False)]


def test_facet_links_add_or_exclude_and_restart_paging() -> None:
    clean = {"dataset": "社保", "page": "3", "sort": "-ts"}
    (actors, *_rest) = facet_links("/console/search", clean, {
        "by_actor": (Bucket("u1", 5), Bucket("u2", 2))}, {"u1": "张三"})
    field, _, links = actors
    assert field == "actor" and links[0].label.startswith("张三") and links[0].count == 5
    include = parse_qs(urlsplit(links[0].include).query)
    exclude = parse_qs(urlsplit(links[1].exclude).query)
    assert include == {"dataset": ["社保"], "sort": ["-ts"], "actor": ["u1"]}
    assert exclude == {"dataset": ["社保"], "sort": ["-ts"], "not_actor": ["u2"]}


def test_sort_links_toggle() -> None:
    links = sort_links("/console/search", {"sort": "org", "q": "x"})
    assert parse_qs(urlsplit(links["org"][0]).query)["sort"] == ["-org"]
    assert links["org"][1] == "▲" and links["actor"][1] == ""
    assert parse_qs(urlsplit(links["actor"][0]).query) == {"q": ["x"], "sort": ["actor"]}


@pytest.mark.parametrize(("value", "safe"), [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'), ("+1", "'+1"),
    ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("normal", "normal"), ("", ""), (None, ""), (42, "42"), ("中文=1", "中文=1"),
])
def test_csv_cells_never_start_a_formula(value: object, safe: str) -> None:
    assert csv_safe(value) == safe


def test_histogram_for_open_ranges() -> None:
    assert histogram_for(None, None) == "per_day"
    assert histogram_for(NOW - timedelta(days=200), NOW) == "per_week"
