"""The officers' monthly report: its numbers come from the trail, bad months are refused,
reading it is recorded (refusals too), and the CLI writes HTML and (with Chromium) PDF."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from monitor.search import SearchQuery
from monitor.sql_search import SqlSearchBackend
from quanguard.container import Container
from quanguard.errors import Forbidden, InvalidInput
from quanguard.gate import RequestContext
from quanguard.report import month_range
from quanguard.report_html import render_html
from quanguard.usecases.report import monthly_report
from tests.console.conftest import _ensure_monitor_schema, seed_trail

TZ = "Asia/Shanghai"
MARCH = (datetime(2026, 3, 1, tzinfo=ZoneInfo(TZ)), datetime(2026, 4, 1, tzinfo=ZoneInfo(TZ)))


def _sql(container: Container, **kw: Any) -> Any:
    return SqlSearchBackend(container.session).search(SearchQuery(tz=TZ, **kw))


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "26-11", "2026-11-01", "", "x" * 50,
                                   "1999-12"])
def test_bad_months_are_refused(month: str) -> None:
    with pytest.raises(InvalidInput):
        month_range(month, TZ)


def test_month_boundaries_are_local() -> None:
    start, end = month_range("2026-12", TZ)
    assert start.isoformat() == "2026-12-01T00:00:00+08:00"
    assert end.isoformat() == "2027-01-01T00:00:00+08:00"


def test_report_numbers_come_from_the_trail(container: Container,
                                            make_key: Callable[..., Any]) -> None:
    _ensure_monitor_schema(container)
    seed_trail(container, 300)
    _, officer = make_key("officer", name="合规官-李")
    report = monthly_report(container, officer, "2026-03", RequestContext("r-1", "10.0.0.9"))
    since, until = MARCH
    assert report.total_events == _sql(container, since=since, until=until).total
    assert report.denials == _sql(container, since=since, until=until, effect="deny").total
    by_org = dict(report.by_org)
    everything = _sql(container, since=since, until=until, aggs=("by_org",), size=0,
                      exclude=(("effect", "deny"),))
    # Accesses are allowed (or undecided) events that touched a dataset.
    for org, count in by_org.items():
        assert count <= {b.key: b.count for b in everything.aggs["by_org"]}[org]
    assert sum(n for _, n in report.by_grade) <= report.accesses == sum(by_org.values())
    html = render_html(report)
    assert "数据安全监管月报" in html and "<svg" in html and "<script" not in html
    assert "http://" not in html and "https://" not in html  # self-contained
    recorded = _sql(container, action="audit_report")
    assert recorded.total == 1
    event = recorded.hits[0]
    assert event.labels["month"] == "2026-03" and event.actor.name == "合规官-李"
    assert event.request_id == "r-1" and event.rows == report.total_events


def test_a_consumer_may_not_read_the_report_and_the_refusal_is_recorded(
        container: Container, make_key: Callable[..., Any]) -> None:
    _ensure_monitor_schema(container)
    _, consumer = make_key("consumer")
    with pytest.raises(Forbidden):
        monthly_report(container, consumer, "2026-03", RequestContext("r-2", None))
    denied = _sql(container, action="audit_report")
    assert denied.total == 1 and denied.hits[0].effect == "deny"


def test_report_escapes_what_reporters_wrote(container: Container,
                                             make_key: Callable[..., Any]) -> None:
    from monitor.events import Actor, AuditEvent, EventDecision

    _ensure_monitor_schema(container)
    evil = AuditEvent(ts=MARCH[0], actor=Actor("x", "consumer", "<script>alert(1)</script>"),
                      action="query", reporter="r", dataset="<img src=x onerror=alert(1)>",
                      decision=EventDecision("allow"))
    with container.session() as s, s.begin():
        container.audit.record_batch(s, [evil])
    _, auditor = make_key("auditor")
    html = render_html(monthly_report(container, auditor, "2026-03", RequestContext()))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


def test_cli_writes_html_and_pdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from quanguard.auth import create_key
    from quanguard.cli.common import open_container
    from quanguard.cli.main import build_app

    repo = Path(__file__).resolve().parents[2]
    env = {"QUANGUARD_POLICY_DIR": str(repo / "policies"),
           "QUANGUARD_DB_URL": f"sqlite:///{tmp_path / 'var' / 'quanguard.db'}",
           "QUANGUARD_KEY_DIR": str(tmp_path / "var" / "keys"),
           "QUANGUARD_DATA_DIR": str(tmp_path / "var"), "QUANGUARD_ES_URL": ""}
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    container = open_container()
    try:
        _ensure_monitor_schema(container)
        seed_trail(container, 120)
        with container.session() as s, s.begin():
            key = create_key(s, role="officer", org="市大数据局", name="officer-cli").key
    finally:
        container.close()
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    want_pdf = shutil.which("chromium") is not None
    args = ["report", "--month", "2026-03", "-o", "report.html"]
    if want_pdf:
        args += ["--pdf", "report.pdf"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "2026-03" in html and "按单位" in html
    if want_pdf:
        assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
    bad = CliRunner().invoke(build_app(), ["report", "--month", "2026-13", "-o", "x.html"])
    assert bad.exit_code == 2 and not (tmp_path / "x.html").exists()


def test_exchange_jobs_and_epsilon_per_consumer_org(container: Container,
                                                    make_key: Callable[..., Any]) -> None:
    import sqlalchemy as sa

    from exchange.tables import jobs, ledger

    _ensure_monitor_schema(container)
    at = MARCH[0].replace(day=10)
    rows = [("j1", "市人社局", "done", 0.5), ("j2", "市人社局", "done", 0.25),
            ("j3", "市公安局", "rejected", 0.0), ("j4", "市公安局", "done", 1.0)]
    with container.session() as s, s.begin():
        names = set(sa.inspect(s.connection()).get_table_names())
        if jobs.name not in names:
            pytest.skip("the exchange tables are not part of this build")
        for job_id, org, status, eps in rows:
            s.execute(jobs.insert().values(
                id=job_id, kind="aggregate", dataset="社保", owner_org="市社保中心",
                consumer_id=f"c-{org}", consumer_org=org, status=status, query={}, decision={},
                created_at=at))
            if eps:
                s.execute(ledger.insert().values(consumer=f"c-{org}", dataset="社保",
                                                 job_id=job_id, epsilon=eps, delta=0.0, at=at))
        # A job of another month does not count.
        s.execute(jobs.insert().values(
            id="j5", kind="aggregate", dataset="社保", owner_org="x", consumer_id="c",
            consumer_org="市人社局", status="done", query={}, decision={},
            created_at=MARCH[1].replace(day=2)))
    _, officer = make_key("officer")
    report = monthly_report(container, officer, "2026-03", RequestContext())
    assert report.exchange_available
    assert report.jobs == [("市公安局", 2, 1, 1.0), ("市人社局", 2, 2, 0.75)]
    html = render_html(report)
    assert "0.750" in html and "市公安局" in html
