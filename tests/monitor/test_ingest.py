from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.errors import BatchTooLarge, InvalidEvent
from monitor.events import AuditEvent
from monitor.ingest import MAX_BATCH, parse_batch, parse_line
from monitor.store import AuditStore

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
        # a time that exists in its zone but not in UTC: a line error, not a crash
        (line(ts="0001-01-01T00:30:00+01:00"), "out of range"),
        (line(ts="9999-12-31T23:59:59-01:00"), "out of range"),
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


# -- streaming (issue 15) ------------------------------------------------------------------

def test_parse_chunks_reads_the_stream_lazily_and_numbers_every_line() -> None:
    from monitor.ingest import parse_chunks

    pulled = 0

    def source() -> Iterator[str]:  # an endless reporter stream: parsing must not read ahead of a chunk
        nonlocal pulled
        while True:
            pulled += 1
            yield "" if pulled % 5 == 0 else line(rows=pulled)

    chunks = parse_chunks(source(), reporter="r", now=NOW, chunk=3)
    first = next(chunks)
    assert [e.rows for e in first.events] == [1, 2, 3] and first.lines == 3
    assert pulled == 3
    second = next(chunks)
    assert [e.rows for e in second.events] == [4, 6, 7]  # line 5 was blank
    assert pulled == 7


def test_a_line_that_is_not_utf8_is_a_line_error_not_the_end_of_the_stream() -> None:
    from monitor.ingest import parse_chunks

    raw = [line().encode(), b'{"ts": "\xff\xfe"}', line(rows=3).encode()]
    (batch,) = parse_chunks(raw, reporter="r", now=NOW, chunk=10)
    assert [e.rows for e in batch.events] == [12, 3]
    assert [(err.line, err.message.startswith("not UTF-8 text (byte 0xff at byte 9 "))
            for err in batch.errors] == [(2, True)]


def test_cli_ingest_streams_a_file_with_a_bad_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from quanguard.cli.main import build_app
    from tests.conftest import POLICY_DIR

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUANGUARD_API_KEY", raising=False)
    monkeypatch.setenv("QUANGUARD_POLICY_DIR", str(POLICY_DIR))
    monkeypatch.setenv("QUANGUARD_DB_URL", f"sqlite:///{tmp_path / 'q.db'}")
    monkeypatch.setenv("QUANGUARD_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("QUANGUARD_DATA_DIR", str(tmp_path))
    now = datetime.now(UTC)
    good = [json.dumps({**GOOD, "ts": now.isoformat(), "purpose": "monthly report",
                        "rows": i}).encode() for i in range(25)]
    (tmp_path / "e.ndjson").write_bytes(b"\n".join(good[:10] + [b"\xff{bad"] + good[10:]) + b"\n")
    r = CliRunner().invoke(build_app(), ["audit", "ingest", "e.ndjson", "--chunk", "7",
                                         "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["accepted"] == 25 and doc["rejected"] == 1 and doc["errors"][0]["line"] == 11
    assert (doc["first_seq"], doc["last_seq"]) == (1, 25)
    r = CliRunner().invoke(build_app(), ["audit", "verify"])
    assert r.exit_code == 0, r.output


def test_cli_ingest_of_a_missing_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from quanguard.cli.main import build_app

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(build_app(), ["audit", "ingest", "nope.ndjson"])
    assert r.exit_code != 0 and "no such file" in r.output


def test_large_batches_verify_on_every_backend(engine: sa.Engine, store: AuditStore, make_event: Callable[..., AuditEvent]) -> None:
    """Big batches take the bulk path (COPY on PostgreSQL); the trail stays verifiable and
    each stored row is the event's canonical body, with NULLs and text intact."""
    from sqlalchemy.orm import Session

    from monitor.store import COPY_MIN_ROWS
    from monitor.verify import verify_trail

    batches = [[make_event(purpose=None if i % 3 else "含\t制表符\n和换行 \\ 反斜杠", rows=None if i % 5 else i)
                for i in range(n)] for n in (COPY_MIN_ROWS - 1, COPY_MIN_ROWS, 700)]
    appended = []
    for batch in batches:
        with Session(engine) as s, s.begin():
            appended.extend(store.append(s, batch))
    with Session(engine) as s:
        verify_trail(s, store)
        stored = list(store.iter_range(s))
    assert [r.seq for r in stored] == list(range(1, len(appended) + 1))
    assert [r.body for r in stored] == [e.canonical_bytes().decode() for e in appended]
    assert stored[0].columns["purpose"] == "含\t制表符\n和换行 \\ 反斜杠"
    assert stored[1].columns["rows"] is None and stored[1].columns["purpose"] is None


@pytest.mark.parametrize("raw", [
    b'{"a":1}', b"\xef\xbb\xbf{}", "\ufeff{}", b"\xff{", b'{"a":1} x', b'"\xed\xa0\x80"',
    '{"a":1}'.encode("utf-16"), '{"a":1}'.encode("utf-32"), b"  [1]  \n", "{}"])
def test_lines_decode_exactly_as_json_loads(raw: str | bytes) -> None:
    # UTF-8 lines skip json.loads' encoding detection; every other input (BOM, UTF-16/32,
    # encoded surrogates, bad bytes) still decodes, or fails, exactly as json.loads does.
    from monitor.ingest import _decode

    def outcome(fn: Callable[[str | bytes], object]) -> tuple[str, object]:
        try:
            return ("ok", fn(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            return (type(exc).__name__, str(exc))

    assert outcome(_decode) == outcome(json.loads)


def test_a_parsed_line_is_the_event_the_model_would_build() -> None:
    # The parser validates each line itself and builds the event without re-validating;
    # the result must equal what the model's own constructor makes of the same values.
    from monitor.events import Actor, AuditEvent, EventDecision

    line = json.dumps({
        "ts": "2026-11-26T08:00:00.123456+08:00",
        "actor": {"id": "u-1", "role": "consumer", "org": "市局", "name": "张三的账号"},
        "action": "export", "dataset": "户籍", "fields": ["姓名", "手机号"], "grade": "L3",
        "rows": 12, "purpose": "核验", "reason": "r", "decision": "deny", "rule_id": "r1",
        "policy_version": "v9", "outcome": "failure", "source_ip": "10.0.0.1",
        "request_id": "q-1", "result_digest": "ab" * 32, "labels": {"k": "v"},
    }, ensure_ascii=False)
    now = datetime(2026, 11, 26, tzinfo=UTC)
    got = parse_line(line, line=1, reporter="rep", now=now)
    want = AuditEvent(
        ts=datetime(2026, 11, 26, 0, 0, 0, 123456, tzinfo=UTC),
        actor=Actor("u-1", "consumer", "市局", "张三的账号"), action="export", reporter="rep",
        id=got.id, dataset="户籍", fields=("姓名", "手机号"), grade="L3", rows=12,
        purpose="核验", reason="r", decision=EventDecision("deny", "r1", "v9"),
        outcome="failure", source_ip="10.0.0.1", request_id="q-1", result_digest="ab" * 32,
        labels={"k": "v"})
    assert got == want
    assert got.canonical_bytes() == want.canonical_bytes()
    assert got.ts.tzinfo is UTC and type(got.labels) is type(want.labels)
    bare = parse_line('{"ts": "2026-11-26T00:00:00Z", "actor": {"id": "u", "role": "r", '
                      '"org": "o"}, "action": "query"}', line=1, reporter="rep", now=now)
    assert bare == AuditEvent(ts=datetime(2026, 11, 26, tzinfo=UTC), actor=Actor("u", "r", "o"),
                              action="query", reporter="rep", id=bare.id)


def test_repeated_short_values_of_lines_share_one_object_and_long_ones_are_not_kept() -> None:
    from monitor import ingest

    long_purpose = "复核 " + "x" * 500
    lines = [json.dumps({"ts": "2026-11-26T08:00:00Z", "actor": {"id": "a", "role": "r", "org": "o"},
                          "action": "query", "dataset": "户籍", "fields": ["姓名"],
                          "purpose": p}, ensure_ascii=False)
             for p in ("月度统计", "月度统计", long_purpose, long_purpose)]
    events = parse_batch(lines, reporter="r", now=datetime.now(UTC)).events
    assert [e.purpose for e in events] == ["月度统计", "月度统计", long_purpose, long_purpose]
    assert events[0].purpose is events[1].purpose and events[0].dataset is events[1].dataset
    assert events[0].fields is events[1].fields
    assert long_purpose not in ingest._VALUES  # long free texts are not kept
