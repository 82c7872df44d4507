"""A line whose JSON escapes spell a lone UTF-16 surrogate (``"\\ud800"``) decodes to text
that is not Unicode and cannot be hashed or stored as UTF-8: that line is refused like
any other invalid line, and the rest of the batch is kept."""

from __future__ import annotations

import json

import pytest

from monitor.errors import InvalidEvent
from monitor.events import utc_now
from monitor.ingest import parse_batch, parse_line


def _line(**kw: object) -> str:
    obj: dict[str, object] = {
        "ts": "2026-01-01T00:00:00Z", "actor": {"id": "u-1", "role": "consumer", "org": "o"},
        "action": "query", "dataset": "ds", "purpose": "核验", "decision": "allow"}
    obj.update(kw)
    return json.dumps(obj, ensure_ascii=True)


@pytest.mark.parametrize("kw", [
    {"purpose": "a\ud800b"}, {"dataset": "\udfff"}, {"labels": {"k\udc00": "v"}},
    {"actor": {"id": "u-\ud83d", "role": "consumer", "org": "o"}}, {"fields": ["x\udbff"]}])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_lone_surrogate_is_an_invalid_line(kw: dict[str, object], as_bytes: bool) -> None:
    text = _line(**kw)
    assert "\\ud" in text  # the escape, not the character, is in the line
    with pytest.raises(InvalidEvent) as err:
        parse_line(text.encode() if as_bytes else text, line=3, reporter="u-1", now=utc_now())
    assert err.value.line == 3 and "surrogate" in err.value.message


@pytest.mark.parametrize("text", [
    _line(purpose="smile \U0001F600"),  # a surrogate pair: one real character
    _line(purpose="\\ud800 typed as text"),  # a backslash, then letters
])
def test_pairs_and_look_alikes_are_kept(text: str) -> None:
    event = parse_line(text, line=1, reporter="u-1", now=utc_now())
    event.canonical_bytes()  # storable


def test_the_rest_of_the_batch_is_kept() -> None:
    batch = parse_batch([_line(), _line(purpose="\ud800"), _line()], reporter="u-1",
                        now=utc_now(), max_lines=10)
    assert len(batch.events) == 2
    assert [e.line for e in batch.errors] == [2]
