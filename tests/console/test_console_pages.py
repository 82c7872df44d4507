"""The console's pages end to end in headless Chromium: search, chart, paging, alerts,
trail status — against a live service (SQL, and Elasticsearch through the shipper)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from monitor.search import SearchQuery
from monitor.sql_search import SqlSearchBackend
from tests.console.conftest import LiveService
from tests.es_fixture import EsServer

pytestmark = pytest.mark.browser

TZ = "Asia/Shanghai"


def _sql(live: LiveService, **kw: Any) -> Any:
    return SqlSearchBackend(live.container.session).search(SearchQuery(tz=TZ, **kw))


def _search(page: Any, **fields: str) -> None:
    for name, value in fields.items():
        if name in ("effect", "sort", "role", "action", "grade", "outcome", "org", "range"):
            page.select_option(f"select[name={name}]", value)
        else:
            page.fill(f"input[name={name}]", value)
    page.click("#search")


def _chart(page: Any) -> list[tuple[str, int]]:
    bars = page.query_selector_all("#histogram g.bar")
    return [(b.get_attribute("data-day"), int(b.get_attribute("data-count"))) for b in bars]


def test_search_filters_chart_and_paging(page: Any, make_live: Callable[..., LiveService],
                                         sign_in: Any) -> None:
    live = make_live(seed=320)
    sign_in_to(page, live, "auditor")
    _search(page, role="consumer", effect="allow")
    want = _sql(live, role="consumer", effect="allow", aggs=("per_day",), size=50)
    assert want.total > 50  # enough for a second page
    assert int(page.inner_text("#total")) == want.total
    rows = page.query_selector_all("#hits tbody tr")
    assert [int(r.get_attribute("data-seq")) for r in rows] == [h.seq for h in want.hits]
    # One bar per local day, counts as the backend counted them.
    assert _chart(page) == [(b.key[:10], b.count) for b in want.aggs["per_day"]]
    assert sum(c for _, c in _chart(page)) == want.total
    # Page 2 keeps the filters.
    page.click("#next")
    assert "page=2" in page.url and "role=consumer" in page.url
    second = _sql(live, role="consumer", effect="allow", size=50, page=2)
    rows = page.query_selector_all("#hits tbody tr")
    assert [int(r.get_attribute("data-seq")) for r in rows] == [h.seq for h in second.hits]
    assert page.query_selector("#prev") is not None


def test_free_text_and_time_range(page: Any, make_live: Callable[..., LiveService],
                                  sign_in: Any) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    live = make_live(seed=150)
    sign_in_to(page, live, "manager")
    _search(page, q="report", since="2026-03-02T00:00", until="2026-03-06T12:00", sort="ts")
    zone = ZoneInfo(TZ)
    want = _sql(live, q="report", since=datetime(2026, 3, 2, tzinfo=zone),
                until=datetime(2026, 3, 6, 12, tzinfo=zone), sort="ts", size=50)
    assert want.total > 0
    assert int(page.inner_text("#total")) == want.total
    rows = page.query_selector_all("#hits tbody tr")
    assert [int(r.get_attribute("data-seq")) for r in rows] == [h.seq for h in want.hits]


def test_every_console_search_is_an_audit_event(page: Any, make_live: Callable[..., LiveService],
                                                sign_in: Any) -> None:
    live = make_live(seed=30)
    sign_in_to(page, live, "auditor")
    _search(page, actor="u3", q="审批")
    me = live.keys["auditor"][1]
    recorded = _sql(live, action="audit_search", actor=me.id, size=10)
    assert recorded.total == 1
    event = recorded.hits[0]
    assert event.labels["actor"] == "u3"
    assert "审批" in (event.reason or "")  # search terms: redacted free text, not a label
    assert event.rows == int(page.inner_text("#total"))
    assert event.actor.role == "auditor"
    # Signing in was recorded too; the key appears in no stored event.
    logins = _sql(live, action="login", actor=me.id, size=10)
    assert logins.total == 1
    key = live.key("auditor")
    everything = _sql(live, size=1000)
    assert all(key not in h.canonical_bytes().decode() for h in everything.hits)


def test_bad_filter_shows_a_message(page: Any, live: LiveService, sign_in: Any) -> None:
    sign_in("auditor")
    _search(page, since="2026-03-06T00:00", until="2026-03-01T00:00")
    assert "since must be before until" in page.inner_text("#search-error")


def test_alerts_acknowledge_then_close(page: Any, make_live: Callable[..., LiveService],
                                       sign_in: Any) -> None:
    from quanguard.usecases import audit as usecase

    live = make_live(seed=200)  # generated trail trips first-L4 and off-hours rules
    me = live.keys["manager"][1]
    open_alerts = usecase.list_alerts(live.container, me, status="open")
    assert open_alerts
    sign_in_to(page, live, "manager")
    page.click("text=告警 Alerts")
    rows = page.query_selector_all("#alerts tbody tr")
    assert {r.get_attribute("data-alert") for r in rows} == {a.id for a in open_alerts}
    target = rows[0].get_attribute("data-alert")
    row = page.locator(f'tr[data-alert="{target}"]')
    row.locator("input[name=note]").fill("已联系数据使用方核实")
    row.locator("button.ack").click()
    assert "status=acknowledged" in page.url
    assert f"alert {target} acknowledged" in page.inner_text("#flash")
    row = page.locator(f'tr[data-alert="{target}"]')
    assert row.get_attribute("data-status") == "acknowledged"
    row.locator("input[name=note]").fill("核实为正常业务，关闭")
    row.locator("button.close").click()
    assert "status=closed" in page.url
    row = page.locator(f'tr[data-alert="{target}"]')
    assert row.get_attribute("data-status") == "closed"
    assert "核实为正常业务" in row.inner_text()
    (closed,) = [a for a in usecase.list_alerts(live.container, me, status="closed")
                 if a.id == target]
    assert closed.note == "核实为正常业务，关闭"
    # Both changes are in the trail, by this manager.
    changes = _sql(live, action="alert_update", actor=me.id, sort="seq", size=10)
    assert [h.labels["status"] for h in changes.hits] == ["acknowledged", "closed"]


def test_trail_status_page(page: Any, make_live: Callable[..., LiveService], sign_in: Any) -> None:
    live = make_live(seed=25)
    sign_in_to(page, live, "auditor")
    page.click("text=留痕状态 Trail")
    head = page.inner_text('[data-section="Trail 留痕"]')
    assert "seq" in head
    seq = int(page.inner_text('[data-section="Trail 留痕"] dd[data-key="seq"]'))
    assert seq >= 25
    assert "Last checkpoint" in page.content() and "Last verification" in page.content()
    assert "off (QUANGUARD_ES_URL not set)" in page.inner_text('[data-section="Elasticsearch"]')


@pytest.mark.es
def test_console_over_elasticsearch(page: Any, make_live: Callable[..., LiveService],
                                    es_server: EsServer, es_prefix: str) -> None:
    live = make_live(seed=120, es_url=es_server.url, es_prefix=es_prefix)
    from quanguard.services.shipper import get_es

    service = get_es(live.container)
    assert service is not None
    deadline = time.monotonic() + 20
    while service.shipper.status().lag > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    service.sink.refresh()
    sign_in_to(page, live, "auditor")
    _search(page, action="export")
    assert "from elasticsearch" in page.inner_text("#summary")
    want = _sql(live, action="export", size=50, aggs=("per_day",))
    assert int(page.inner_text("#total")) == want.total
    rows = page.query_selector_all("#hits tbody tr")
    assert [int(r.get_attribute("data-seq")) for r in rows] == [h.seq for h in want.hits]
    assert _chart(page) == [(b.key[:10], b.count) for b in want.aggs["per_day"]]
    page.click("text=留痕状态 Trail")
    es = page.inner_text('[data-section="Elasticsearch"]')
    assert service.info is not None and service.info.version in es
    assert "lag" in es


def sign_in_to(page: Any, live: LiveService, role: str) -> None:
    page.goto(f"{live.url}/console")
    page.fill("#key", live.key(role))
    page.click("#signin")
    assert page.url.endswith("/console/search"), page.content()[:500]
