"""AuditService on SQLite and PostgreSQL: record, checkpoints every N, alerts, redaction,
verification, metrics."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from prometheus_client import generate_latest

from monitor.errors import Tampered
from quanguard.auth import Principal
from quanguard.usecases import audit as uc
from tests.conftest import errors_on_threads

ALICE = Principal(id="p-alice", name="alice", role="consumer", org="市卫健委")
AUDITOR = Principal(id="p-audit", name="audit", role="auditor", org="市审计局")  # verifies the trail


@pytest.fixture
def svc(any_container: Any) -> Any:
    any_container.audit.set_redactor(lambda s: s.replace("13800138000", "<PHONE_NUMBER>"))
    return any_container


def test_record_returns_seq_and_redacts(svc: Any) -> None:
    with svc.session() as s, s.begin():
        seq = svc.audit.record(s, actor=ALICE, action="read_masked", dataset="户籍",
                               fields=["姓名"], grade="L3", rows=3,
                               purpose="回访 13800138000", outcome="denied",
                               labels={"k": 1, "none": None})
    with svc.session() as s:
        ev = svc.audit.store.get(s, seq)
    assert ev.purpose == "回访 <PHONE_NUMBER>"
    assert ev.outcome == "failure" and ev.labels == {"k": "1", "key_name": "alice"}
    assert ev.reporter == "quanguard" and ev.actor.org == "市卫健委"


def test_record_rolls_back_with_the_request(svc: Any) -> None:
    with pytest.raises(RuntimeError), svc.session() as s, s.begin():
        svc.audit.record(s, actor=ALICE, action="query")
        raise RuntimeError("the access failed")
    with svc.session() as s:
        assert svc.audit.store.head(s).seq == 0


def test_checkpoint_every_n_events(svc: Any) -> None:
    every = svc.settings.audit_checkpoint_every
    for _ in range(3):
        with svc.session() as s, s.begin():
            for _ in range(every // 2 + 1):
                svc.audit.record(s, actor=ALICE, action="query")
    with svc.session() as s:
        sizes = [c.checkpoint.tree_size for c in svc.audit.trail.checkpoints(s)]
    assert sizes[0] == 1  # the first event is checkpointed at once
    assert len(sizes) >= 2 and all(b - a >= 1 for a, b in itertools.pairwise(sizes))
    result = uc.verify(svc, AUDITOR)
    assert result["ok"]


def test_concurrent_records_keep_the_chain(svc: Any) -> None:
    def work() -> None:
        for _ in range(15):
            with svc.session() as s, s.begin():
                svc.audit.record(s, actor=ALICE, action="query")

    assert not errors_on_threads(work)
    uc.verify(svc, AUDITOR)
    with svc.session() as s:
        assert svc.audit.store.count(s) == 61  # 60 + the verify event


def test_verify_records_failure_and_raises(svc: Any) -> None:
    import sqlalchemy as sa

    from monitor.store import EVENTS

    with svc.session() as s, s.begin():
        for _ in range(5):
            svc.audit.record(s, actor=ALICE, action="query")
    with svc.session() as s, s.begin():
        s.execute(sa.update(EVENTS).where(EVENTS.c.seq == 2).values(actor="x"))
    with pytest.raises(Tampered) as info:
        uc.verify(svc, AUDITOR)
    assert (info.value.seq, info.value.damage) == (2, "modified")
    status: dict[str, Any] = uc.status(svc, AUDITOR)
    assert status["last_verify"]["ok"] is False and status["last_verify"]["bad_seq"] == 2


def test_metrics_registered(svc: Any) -> None:
    with svc.session() as s, s.begin():
        svc.audit.record(s, actor=ALICE, action="query")
    text = generate_latest(svc.metrics.registry).decode()
    assert 'quanguard_audit_events_appended_total{source="service"} 1.0' in text
    assert "quanguard_audit_checkpoint_age_seconds" in text


def test_search_terms_are_redacted_in_the_trail(svc: Any) -> None:
    from monitor.search import SearchQuery

    auditor = Principal(id="p-aud", name="aud", role="auditor", org="市网信办")
    uc.search(svc, auditor, SearchQuery(q="13800138000"))
    with svc.session() as s:
        head = svc.audit.store.head(s).seq
        ev = svc.audit.store.get(s, head)
    assert ev.action == "audit_search" and ev.actor.id == "p-aud"
    assert ev.reason == "q: <PHONE_NUMBER>"
    assert "13800138000" not in str(ev.to_document())


def _lines(n: int, *, purpose: str = "月度统计报表") -> list[str]:
    import json
    from datetime import UTC, datetime, timedelta

    base = datetime.now(UTC) - timedelta(hours=2)
    return [json.dumps({"ts": (base + timedelta(seconds=i)).isoformat(),
                        "actor": {"id": f"u{i % 3}", "role": "consumer", "org": "市局"},
                        "action": "query", "dataset": "d", "grade": "L2", "rows": i,
                        "purpose": purpose, "decision": "allow"}, ensure_ascii=False)
            for i in range(n)]


def test_streamed_ingest_stays_exact_when_another_appender_cuts_in(svc: Any) -> None:
    """An event recorded while a stream is read lands between two chunks: the chain is
    whole, every event stored once, in order, redacted once."""
    from quanguard.auth import LOCAL_OPERATOR

    def lines() -> Any:
        for i, line in enumerate(_lines(60, purpose="回访 13800138000")):
            if i == 25:  # between chunk 2 and chunk 3
                with svc.session() as s, s.begin():
                    svc.audit.record(s, actor=ALICE, action="query")
            yield line

    result = uc.ingest(svc, LOCAL_OPERATOR, lines(), max_lines=None, chunk=10)
    assert result.accepted == 60 and not result.errors
    assert uc.verify(svc, AUDITOR)["ok"]
    with svc.session() as s:
        stored = [svc.audit.store.get(s, seq) for seq in range(1, 62)]
    ingested = [e for e in stored if e.reporter != "quanguard"]
    assert [e.rows for e in ingested] == list(range(60))
    assert len(stored) - len(ingested) == 1  # the event that cut in
    assert {e.purpose for e in ingested} == {"回访 <PHONE_NUMBER>"}


def test_streamed_ingest_raises_the_readers_error_after_whole_chunks(svc: Any) -> None:
    from quanguard.auth import LOCAL_OPERATOR

    def lines() -> Any:
        yield from _lines(25)
        raise OSError("the stream broke")

    with pytest.raises(OSError, match="the stream broke"):
        uc.ingest(svc, LOCAL_OPERATOR, lines(), max_lines=None, chunk=10)
    with svc.session() as s:
        head = svc.audit.store.head(s).seq
    assert head in (10, 20)  # whole chunks only (the error may come before the second)
    assert uc.verify(svc, AUDITOR)["ok"]


def test_record_keeps_an_event_whose_text_holds_a_lone_surrogate(svc: Any) -> None:
    """A lone UTF-16 surrogate (a JSON "\\ud800" without its pair) cannot be encoded: the
    event is still written, the surrogate replaced by U+FFFD, and the chain verifies."""
    with svc.session() as s, s.begin():
        seq = svc.audit.record(s, actor=ALICE, action="exchange.aggregate", dataset="户\ud800籍",
                               fields=["姓\udfff名"], purpose="回访 \ud800", reason="bad \udc80",
                               outcome="denied", labels={"k\ud800": "v\udbff"})
    with svc.session() as s:
        ev = svc.audit.store.get(s, seq)
    assert ev.dataset == "户\ufffd籍" and ev.fields == ("姓\ufffd名",)
    assert ev.purpose == "回访 \ufffd" and ev.reason == "bad \ufffd"
    assert ev.labels["k\ufffd"] == "v\ufffd"
    uc.verify(svc, AUDITOR)  # raises on a broken chain


def test_record_keeps_an_event_whose_text_holds_nul(svc: Any) -> None:
    """NUL in a free text (the PII scanner refuses it as binary, PostgreSQL cannot store
    it): the event is still written, each NUL replaced by U+FFFD."""
    with svc.session() as s, s.begin():
        seq = svc.audit.record(s, actor=ALICE, action="exchange.aggregate", dataset="户\x00籍",
                               purpose="回访 \x00", reason="bad \x00", outcome="denied",
                               labels={"k": "v\x00"})
    with svc.session() as s:
        ev = svc.audit.store.get(s, seq)
    assert (ev.dataset, ev.purpose, ev.reason) == ("户\ufffd籍", "回访 \ufffd", "bad \ufffd")
    assert ev.labels["k"] == "v\ufffd"


def test_a_batch_raises_and_collapses_alerts_on_both_stores(svc: Any) -> None:
    # a reporter's batch with two actors' denial bursts and off-hours L4 reads: the new
    # alerts go in with one statement, a later batch collapses into the open ones; the
    # rows read back as the alerts the engine returned, and the metric counts per rule
    import json
    from datetime import UTC, datetime, timedelta

    from monitor.alert_engine import list_alerts
    from monitor.ingest import parse_batch

    base = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # a Saturday, 10:00 in Shanghai

    def lines(start: int) -> list[str]:
        out = []
        for i in range(start, start + 12):
            who = f"u{i % 2}"
            out.append(json.dumps({
                "ts": (base + timedelta(seconds=i)).isoformat(), "action": "read_raw",
                "actor": {"id": who, "role": "consumer", "org": "某银行"},
                "dataset": "户籍人口", "grade": "L4", "rows": 1,
                "decision": "deny" if i % 3 else "allow"}, ensure_ascii=False))
        return out

    now = datetime.now(UTC)
    engine = svc.audit.alert_engine
    returned: list[list[Any]] = []
    real = engine.process

    def spy(session: Any, events: Any, **kw: Any) -> Any:
        returned.append(real(session, events, **kw))
        return returned[-1]

    engine.process = spy
    for start in (0, 100):
        batch = parse_batch(lines(start), reporter="r", now=now)
        with svc.session() as s, s.begin():
            svc.audit.record_batch(s, list(batch.events), now=now)
    assert len(returned) == 2 and returned[0] and returned[1]
    with svc.session() as s:
        alerts = {a.id: a for a in list_alerts(s, limit=1000)}
    rules = sorted(a.rule for a in alerts.values())
    assert "denial-burst" in rules and "off-hours-sensitive" in rules
    assert len({(a.rule, a.actor) for a in alerts.values()}) == len(alerts)  # collapsed
    assert any(a.count >= 2 for a in alerts.values())
    for alert in returned[-1]:  # what the engine returned is what was stored
        stored_alert = alerts[alert.id]
        assert (stored_alert.rule, stored_alert.actor, stored_alert.count, stored_alert.seqs,
                stored_alert.window_start, stored_alert.status) == (
                    alert.rule, alert.actor, alert.count, alert.seqs, alert.window_start,
                    alert.status)
    text = generate_latest(svc.metrics.registry).decode()
    assert 'quanguard_audit_alerts_raised_total{rule="denial-burst"}' in text
