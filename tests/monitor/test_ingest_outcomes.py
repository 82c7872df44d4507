"""The line parser's answer to every kind of line stays what it was.

A deterministic corpus of mutated lines (each field dropped, of every JSON type, empty,
blank, too long, several faults at once) goes through ``parse_line``; the outcome of each
— the error message and field, or the event's canonical bytes — is pinned by a digest
computed with the parser before issue 15's rewrite of its hot path. A faster parser
must accept, refuse and word its errors exactly as before (which fault of a line with
several is reported first included).
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

import monitor.events
from monitor.errors import InvalidEvent
from monitor.events import canonical_text
from monitor.ingest import parse_line

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# Re-pinned once, on purpose: a line that is not UTF-8 (``b"\xff"``) is now told what to do
# ("not UTF-8 text (byte 0xff at byte 1 of the line); NDJSON is UTF-8: ..."), not Python's
# codec message; the other 4,011 answers were compared one by one and are unchanged.
GOLDEN = "3d26f1813619820da884f14cf64ea4638a711632c7afd34c8e874f5f214de928"
GOLDEN_ACCEPTED = 1050

GOOD: dict[str, Any] = {
    "ts": "2026-11-26T19:30:00.5+08:00",
    "actor": {"id": "u-1", "role": "consumer", "org": "市卫健委", "name": "张三"},
    "action": "query", "dataset": "户籍人口", "fields": ["姓名", "身份证号"], "grade": "L3",
    "rows": 12, "purpose": "核验", "reason": "复核", "decision": "deny", "rule_id": "r1",
    "policy_version": "v2", "outcome": "failure", "source_ip": "10.1.2.3",
    "request_id": "q-1", "result_digest": "ab" * 32, "labels": {"k": "v", "a": "一"},
    "reporter": "rep",
}
LONG = "x" * 2001
VALUES: list[Any] = [None, "", " ", "\t\n", "ok", "值", LONG, "x" * 2000, 0, 1, -1, 2**70, 1.5,
                     True, False, [], ["a"], ["a", 1], {}, {"k": "v"}, {"k": 1}, "\ud800"]
TIMES = ["2026-11-26T00:00:00Z", "2026-11-26T00:00:00z", " 2026-11-26T00:00:00Z ",
         "2026-11-26T00:00:00", "2026-11-26", "2026-11-26T12:04:59Z", "2026-11-26T12:06:00Z",
         "2026-11-26T20:05:00+08:00", "26/11/2026", "2026-11-26T00:00:00.1234567Z",
         "2026-11-26 00:00:00+00:00", "2026-11-26T00:00+05:30", "0001-01-01T00:00:00+01:00"]
ACTIONS = ["query", "export", "nope", "", " ", "QUERY", "exchange.extract"]


def _mutations(rng: random.Random) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(json.dumps(GOOD))
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        kind = rng.randrange(8)
        if kind == 0:
            obj.pop(rng.choice(list(GOOD)), None)
        elif kind == 1:
            obj[rng.choice(list(GOOD))] = rng.choice(VALUES)
        elif kind == 2:
            obj["actor"] = dict(obj["actor"]) if isinstance(obj.get("actor"), dict) else {}
            obj["actor"][rng.choice(["id", "role", "org", "name", "extra"])] = rng.choice(VALUES)
        elif kind == 3:
            obj["ts"] = rng.choice(TIMES)
        elif kind == 4:
            obj["action"] = rng.choice(ACTIONS)
        elif kind == 5:
            obj[rng.choice(["unknown", "zz", "Ts"])] = 1
        elif kind == 6:
            obj["fields"] = rng.choice([["a"] * 501, ["a"] * 500, [1, "a"], "a", ["a", None]])
        else:
            obj[rng.choice(["decision", "outcome"])] = rng.choice(
                ["allow", "deny", "approval_required", "error", "success", "unknown", "x",
                 None, 1, ["allow"]])
    return obj


def _outcome(text: str | bytes) -> str:
    try:
        event = parse_line(text, line=7, reporter="rep", now=NOW)
    except InvalidEvent as exc:
        return f"error {exc.line} {exc.field} {exc.message}"
    return "ok " + canonical_text(event)  # (a str line may hold a raw lone surrogate)


@pytest.fixture
def fixed_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor.events, "new_event_id", lambda: "0" * 32)


def test_every_kind_of_line_gets_the_answer_it_always_got(fixed_ids: None) -> None:
    rng = random.Random(1515)
    h = hashlib.sha256()
    accepted = 0
    for i in range(4000):
        obj = _mutations(rng)
        text = json.dumps(obj, ensure_ascii=bool(i % 2))
        answer = _outcome(text.encode("utf-8", "surrogatepass") if i % 3 == 0 else text)
        accepted += answer.startswith("ok ")
        h.update(answer.encode("utf-8", "surrogatepass") + b"\n")
    for raw in (b"", b"{", b"[]", b"null", b'"s"', b"{} x", b"\xff", b"\xef\xbb\xbf{}",
                '{"a":1}'.encode("utf-16"), b'{"ts": 1}\r\n', b"  {}  ", "{}\u3000"):
        h.update(_outcome(raw).encode("utf-8", "surrogatepass") + b"\n")
    print(h.hexdigest(), accepted)
    assert (h.hexdigest(), accepted) == (GOLDEN, GOLDEN_ACCEPTED)
