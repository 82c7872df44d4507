from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.errors import InvalidEvent
from monitor.events import (
    Actor,
    AuditEvent,
    EventDecision,
    canonical_json,
    canonical_text,
    format_ts,
    parse_ts,
    redact_event,
)

texts = st.text(max_size=20)
opt_texts = st.none() | st.text(min_size=1, max_size=20)


@st.composite
def events(draw: st.DrawFn) -> AuditEvent:
    ts = draw(
        st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        )
    )
    decision = draw(
        st.none()
        | st.builds(EventDecision, st.sampled_from(["allow", "deny", "approval_required"]),
                    opt_texts, opt_texts)
    )
    return AuditEvent(
        ts=ts,
        actor=Actor(draw(st.text(min_size=1, max_size=8)), draw(texts), draw(texts)),
        action=draw(st.sampled_from(["read_raw", "export", "query"])),
        reporter=draw(st.text(min_size=1, max_size=8)),
        seq=draw(st.none() | st.integers(1, 10**9)),
        dataset=draw(opt_texts),
        fields=tuple(draw(st.lists(st.text(min_size=1, max_size=5), max_size=4))),
        grade=draw(opt_texts),
        rows=draw(st.none() | st.integers(0, 10**12)),
        purpose=draw(opt_texts),
        reason=draw(opt_texts),
        decision=decision,
        outcome=draw(st.sampled_from(["success", "failure", "unknown"])),
        source_ip=draw(opt_texts),
        request_id=draw(opt_texts),
        labels=draw(st.dictionaries(st.text(min_size=1, max_size=4), st.text(min_size=1, max_size=4),
                                    max_size=3)),
    )


@given(events())
def test_document_round_trip_is_exact(event: AuditEvent) -> None:
    again = AuditEvent.from_json(event.canonical_bytes())
    assert again == event
    assert again.canonical_bytes() == event.canonical_bytes()


@given(events())
def test_canonical_bytes_are_sorted_compact_utf8(event: AuditEvent) -> None:
    raw = event.canonical_bytes()
    doc = json.loads(raw.decode("utf-8"))
    assert raw == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode()
    assert doc["@timestamp"].endswith("Z") and len(doc["@timestamp"]) == 27


def test_ecs_field_names() -> None:
    e = AuditEvent(
        ts=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), actor=Actor("u", "consumer", "市局"),
        action="read_raw", reporter="rep", seq=7, decision=EventDecision("deny", "r", "v"),
        source_ip="10.0.0.1", request_id="req", dataset="d", rows=3,
    )
    doc = e.to_document()
    assert doc["@timestamp"] == "2026-01-02T03:04:05.000006Z"
    assert doc["event"]["action"] == "read_raw" and doc["event"]["sequence"] == 7
    assert doc["user"] == {"id": "u", "roles": ["consumer"]}
    assert doc["organization"]["name"] == "市局"
    assert doc["source"]["ip"] == "10.0.0.1" and doc["trace"]["id"] == "req"
    assert doc["rule"] == {"id": "r", "version": "v"}
    assert doc["audit"]["effect"] == "deny" and doc["audit"]["reporter"] == "rep"
    assert "市局".encode() in e.canonical_bytes()


def test_seq_changes_the_canonical_bytes() -> None:
    e = AuditEvent(ts=datetime.now(UTC), actor=Actor("u", "r", "o"), action="query",
                   reporter="x")
    assert e.with_seq(1).canonical_bytes() != e.with_seq(2).canonical_bytes()


def test_redactor_applies_to_free_text_only() -> None:
    e = AuditEvent(ts=datetime.now(UTC), actor=Actor("u", "r", "o"), action="query",
                   reporter="x", purpose="call 13800138000", reason="id 13800138000",
                   dataset="13800138000")
    red = redact_event(e, lambda s: s.replace("13800138000", "***"))
    assert red.purpose == "call ***" and red.reason == "id ***"
    assert red.dataset == "13800138000"
    assert redact_event(e, None) is e


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T12:00:00Z", datetime(2026, 11, 26, 12, tzinfo=UTC)),
        ("2026-11-26T20:00:00+08:00", datetime(2026, 11, 26, 12, tzinfo=UTC)),
        ("2026-11-26T12:00:00.123456Z", datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_parse_ts_good(text: str, expected: datetime) -> None:
    assert parse_ts(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-11-26T12:00:00", "2026-13-01T00:00:00Z", 5])
def test_parse_ts_bad(text: object) -> None:
    with pytest.raises(InvalidEvent):
        parse_ts(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"outcome": "maybe"},
        {"rows": -1},
        {"action": ""},
        {"ts": datetime(2026, 1, 1)},
    ],
)
def test_bad_events(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"ts": datetime.now(UTC), "actor": Actor("u", "r", "o"),
                                   "action": "query", "reporter": "x"}
    base.update(kwargs)
    with pytest.raises(InvalidEvent):
        AuditEvent(**base)  # type: ignore[arg-type]


def test_bad_effect() -> None:
    with pytest.raises(InvalidEvent):
        EventDecision("perhaps")


def test_non_utc_input_normalised() -> None:
    tz8 = timezone(timedelta(hours=8))
    e = AuditEvent(ts=datetime(2026, 1, 1, 8, tzinfo=tz8), actor=Actor("u", "r", "o"),
                   action="query", reporter="x")
    assert format_ts(e.ts) == "2026-01-01T00:00:00.000000Z"
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_from_json_rejects_garbage() -> None:
    for bad in (b"nope", b"[]", b"{}"):
        with pytest.raises(InvalidEvent):
            AuditEvent.from_json(bad)


@given(events(), st.none() | st.datetimes(min_value=datetime(2000, 1, 1),
                                          max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_fast_canonical_bytes_equal_the_document_encoding(event: AuditEvent,
                                                          ingested: datetime | None) -> None:
    # The store writes the leaf-hash input directly (no document built per event); it
    # must be byte for byte the canonical JSON of the document, or old trails stop verifying.
    if ingested is not None:
        event = event.stamped(event.seq or 1, ingested)
    expected = canonical_json(event.to_document())
    assert event.canonical_bytes() == expected
    if event.ingested is not None:
        assert event.canonical_bytes(ingested=format_ts(event.ingested)) == expected


@pytest.mark.parametrize("text", ["控制\x00字符\x1f", 'quote " and \\ back', "\u2028\u2029 sep",
                                  "emoji 🙂", "ascii", ""])
def test_fast_canonical_bytes_escape_like_the_encoder(text: str) -> None:
    event = AuditEvent(
        ts=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=8))),
        actor=Actor(text or "a", text, text, text or None), action="query", reporter="r",
        dataset=text, fields=(text, "x"), purpose=text, reason=text, rows=0, seq=7,
        decision=EventDecision("deny", text, None), source_ip=text, request_id=text,
        labels={text: text, "b": "c"}, ingested=datetime(2026, 1, 2, tzinfo=UTC),
    )
    assert event.canonical_bytes() == canonical_json(event.to_document())


def test_canonical_bytes_of_odd_types_fall_back_to_the_encoder() -> None:
    # a float row count (the model allows it) is written as the encoder writes it
    event = AuditEvent(ts=datetime(2026, 1, 1, tzinfo=UTC), actor=Actor("a", "r", "o"),
                       action="query", reporter="r", rows=3.0)  # type: ignore[arg-type]
    assert event.canonical_bytes() == canonical_json(event.to_document())
    assert b'"rows":3.0' in event.canonical_bytes()


def test_event_ids_are_time_ordered_version_7_uuids() -> None:
    # Ids made later sort later (the trail's unique index on id then grows at its end);
    # each is still a UUID written as 32 lower-case hex digits, unique, mostly random.
    import time
    import uuid

    from monitor.events import new_event_id

    before = time.time_ns() // 1_000_000
    made = [new_event_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    # the time and its 12-bit sub-millisecond fraction lead: ids of one 244 ns tick
    # share them (and are in random order among themselves), later ticks sort later
    stamps = [v[:16] for v in made]
    assert stamps == sorted(stamps) and len(set(stamps)) > 1
    for value in made[:: 50]:
        u = uuid.UUID(hex=value)
        assert u.version == 7 and u.variant == uuid.RFC_4122 and u.hex == value
        assert len(value) == 32 and value == value.lower()
        assert before <= u.int >> 80 <= after  # RFC 9562: the Unix time in ms comes first
    # the last 62 bits are random: two ids of one instant still differ there
    assert len({int(v, 16) & (2**62 - 1) for v in made}) == len(made)



def test_event_ids_of_a_forked_child_are_not_its_parents() -> None:
    # The random bits are fetched from the OS in blocks: a worker process forked with part
    # of a block left must not hand out the very ids its parent hands out next.
    import os

    from monitor.events import new_event_id

    new_event_id()  # the parent now holds the rest of a block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        try:
            os.write(write, "".join(new_event_id()[16:] for _ in range(100)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        text = fh.read()
    os.waitpid(pid, 0)
    child = {text[i:i + 16] for i in range(0, len(text), 16)}
    parent = {new_event_id()[16:] for _ in range(100)}
    assert len(child) == 100 and not child & parent


def test_event_ids_made_on_many_threads_are_unique() -> None:
    # threads share the buffered random bits; none may take the same bits as another
    from monitor.events import new_event_id
    from tests.conftest import errors_on_threads_each

    made: list[list[str]] = [[] for _ in range(8)]
    assert not errors_on_threads_each(
        range(8), lambda i: made[i].extend(new_event_id() for _ in range(20_000)), threads=8)
    tails = [v[16:] for ids in made for v in ids]
    assert len(tails) == 160_000 and len(set(tails)) == len(tails)


_TS_EDGES = [
    "2026-11-01T21:58:08.978566+00:00", "2026-11-01T21:58:08.978566Z", "2026-11-01T21:58:08.978566z",
    "2026-11-01T24:00:00.000000+00:00", "2026-11-01t21:58:08.978566Z", "2026-11-01 21:58:08.978566Z",
    "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999+00:00", "2026-11-01T21:58:08.978566-00:00",
    "2026-11-01T21:58:08,978566Z", "2026-11-01T21:58:08.97856Z ", "2026-11-01T21:58:08Z",
    "2026-11-01T21:58:08.978566+08:00", "2026-02-29T21:58:08.978566Z", "2024-02-29T21:58:08.978566Z",
    "２026-11-01T21:58:08.978566Z", "2026-11-01T21:58:08.９78566Z", "20261101T215808.978566Z",
    "2026-11-01T21:58:08.978566+00:00:00", "2026-W44-7T21:58:08.978566Z",
]


@pytest.mark.parametrize("raw", _TS_EDGES)
def test_a_time_read_off_its_text_is_the_time_formatted(raw: str) -> None:
    # the ingest keeps a reporter's UTC time text as the canonical one only when it is
    # exactly what formatting the parsed time gives; anything else is formatted
    from monitor.events import _fast_ts
    from monitor.ingest import _utc_text

    try:
        ts = parse_ts(raw)
    except InvalidEvent:
        return  # refused before any text is kept
    kept = _utc_text(raw)
    assert kept is None or kept == _fast_ts(ts) == format_ts(ts), raw


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))])),
       st.sampled_from(["iso", "z"]))
def test_ingested_bodies_are_canonical_whatever_the_time(when: datetime, style: str) -> None:
    from monitor.ingest import parse_line

    text = when.isoformat(timespec="microseconds")
    if style == "z" and text.endswith("+00:00"):
        text = text[:-6] + "Z"
    line = json.dumps({"ts": text, "actor": {"id": "u", "role": "consumer", "org": "某局"},
                       "action": "query"})
    event = parse_line(line, line=1, reporter="r", now=datetime(9999, 12, 31, tzinfo=UTC))
    assert canonical_text(event) == canonical_json(event.to_document()).decode()
