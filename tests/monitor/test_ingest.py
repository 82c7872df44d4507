from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.errors import BatchTooLarge, InvalidEvent
from monitor.ingest import MAX_BATCH, parse_batch, parse_line

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GOOD = {
    "ts": "2026-11-26T19:30:00+08:00",
    "actor": {"id": "u-1", "role": "consumer", "org": "市卫健委"},
    "action": "query",
    "dataset": "户籍人口",
    "fields": ["姓名", "身份证号"],
    "grade": "L3",
    "rows": 12,
    "purpose": "核验",
    "decision": "allow",
    "source_ip": "10.1.2.3",
}


def line(**changes: object) -> str:
    obj = {**GOOD, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not ...}, ensure_ascii=False)


def test_good_line() -> None:
    e = parse_line(line(), line=1, reporter="rep-1", now=NOW)
    assert e.actor.org == "市卫健委" and e.reporter == "rep-1" and e.effect == "allow"
    assert e.ts == datetime(2026, 11, 26, 11, 30, tzinfo=UTC)
    assert e.fields == ("姓名", "身份证号") and e.rows == 12


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "not a JSON object"),
        (line(ts=...), "missing field 'ts'"),
        (line(actor=...), "missing field 'actor'"),
        (line(actor={"id": "x", "role": "r"}), "'org'"),
        (line(actor="x"), "actor must be an object"),
        (line(action="teleport"), "unknown action"),
        (line(ts="2026-11-26T12:06:00Z"), "in the future"),
        (line(ts="yesterday"), "RFC 3339"),
        (line(ts="2026-11-26T12:00:00"), "no offset"),
        (line(reporter="someone-else"), "not the authenticated caller"),
        (line(rows=-3), "rows"),
        (line(rows=True), "rows"),
        (line(rows="12"), "rows"),
        (line(fields="name"), "fields"),
        (line(decision="maybe"), "decision"),
        (line(outcome="meh"), "outcome"),
        (line(labels={"a": 1}), "labels"),
        (line(extra=1), "unknown field"),
        (line(purpose="x" * 3000), "longer than"),
    ],
)
def test_bad_lines(text: str, needle: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_line(text, line=7, reporter="rep-1", now=NOW)
    assert needle in str(info.value)
    assert str(info.value).startswith("line 7: ")


def test_reporter_may_repeat_itself() -> None:
    assert parse_line(line(reporter="rep-1"), line=1, reporter="rep-1", now=NOW).reporter == "rep-1"


def test_slightly_future_is_tolerated() -> None:
    parse_line(line(ts="2026-11-26T12:04:00Z"), line=1, reporter="r", now=NOW)


def test_batch_keeps_valid_lines_and_reports_the_rest() -> None:
    lines = [line(), "", "garbage", line(action="nope"), line(rows=5), "   "]
    batch = parse_batch(lines, reporter="r", now=NOW)
    assert [e.rows for e in batch.events] == [12, 5]
    assert [(e.line, e.message.split(" (")[0]) for e in batch.errors] == [
        (3, "malformed JSON"), (4, "unknown action 'nope'")]
    assert batch.lines == 4


def test_redactor_runs_on_ingest() -> None:
    batch = parse_batch([line(purpose="联系 13800138000", reason="x")], reporter="r", now=NOW,
                        redactor=lambda s: s.replace("13800138000", "<PHONE>"))
    assert batch.events[0].purpose == "联系 <PHONE>"


def test_oversized_batch_refused_whole() -> None:
    with pytest.raises(BatchTooLarge) as info:
        parse_batch([line()] * (MAX_BATCH + 1), reporter="r", now=NOW)
    assert info.value.kind == "too_large"
    assert len(parse_batch([line()] * MAX_BATCH, reporter="r", now=NOW).events) == MAX_BATCH
