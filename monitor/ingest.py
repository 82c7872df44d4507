"""Parsing the NDJSON line format that reporter systems post.

One JSON object per line::

    {"ts": "2026-11-26T08:00:00+08:00", "actor": {"id": "...", "role": "...", "org": "...", "name": "..."},
     "action": "query", "dataset": "...", "fields": ["name", "phone"], "grade": "L3",
     "rows": 120, "purpose": "...", "decision": "allow", "source_ip": "10.0.0.8"}

Optional keys: ``reason``, ``outcome``, ``request_id``, ``result_digest``, ``labels``
(string map), ``rule_id``, ``policy_version`` and ``reporter`` — which, if present,
must equal the authenticated caller: the reporter of an event is always who posted it.
``decision`` is ``allow`` | ``deny`` | ``approval_required``. Unknown keys, unknown
actions, malformed values and timestamps more than ``MAX_FUTURE`` ahead are per-line
errors; valid lines are kept. A batch of more than ``MAX_BATCH`` lines is refused
whole (``BatchTooLarge``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from monitor.actions import KNOWN_ACTIONS
from monitor.errors import BatchTooLarge, InvalidEvent
from monitor.events import (
    EFFECTS,
    OUTCOMES,
    Actor,
    AuditEvent,
    EventDecision,
    Redactor,
    parse_ts,
    redact_event,
    validated_event,
)

MAX_BATCH = 10_000
MAX_FUTURE = timedelta(minutes=5)
MAX_TEXT = 2000
MAX_FIELDS = 500
_KEYS = frozenset({
    "ts", "actor", "action", "dataset", "fields", "grade", "rows", "purpose", "decision",
    "source_ip", "reason", "outcome", "request_id", "result_digest", "labels", "rule_id",
    "policy_version", "reporter",
})
_REQUIRED = ("ts", "actor", "action")


@dataclass(frozen=True)
class LineError:
    line: int
    message: str

    def to_dict(self) -> dict[str, object]:
        return {"line": self.line, "error": self.message}


@dataclass(frozen=True)
class ParsedBatch:
    events: tuple[AuditEvent, ...]
    errors: tuple[LineError, ...]
    lines: int


def _text(obj: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"missing field {key!r}", field=key)
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"field {key!r} must be a string", field=key)
    if required and not value.strip():
        raise InvalidEvent(f"field {key!r} is empty", field=key)
    if len(value) > MAX_TEXT:
        raise InvalidEvent(f"field {key!r} is longer than {MAX_TEXT} characters", field=key)
    return value


# Actors and decisions repeat from line to line: equal ones share one (immutable) object.
# Only values that passed the checks are kept, so finding a line's values here means they
# are valid: the checks are skipped for them (a list or an object among the values is
# unhashable and never found).
_ACTORS: dict[tuple[Any, ...], Actor] = {}
_DECISIONS: dict[tuple[Any, ...], EventDecision] = {}
_MAX_SHARED = 50_000


def _keep(table: dict[tuple[Any, ...], Any], key: tuple[Any, ...], value: Any) -> None:
    if len(table) >= _MAX_SHARED:
        table.clear()
    table[key] = value


# Values that repeat from line to line (action, dataset, grade, purpose, the field list)
# share one object: a chunk of parsed events then holds each such value once, not once a
# line. Only short values are kept, and at most _MAX_VALUES of them (a reporter whose
# purposes are all different costs a few MB here at most).
_VALUES: dict[object, Any] = {}
_MAX_VALUES = 10_000
_SHORT = 100


def _one(value: Any) -> Any:
    if value is None or len(value) > _SHORT:
        return value
    found = _VALUES.get(value)
    if found is None:
        if len(_VALUES) >= _MAX_VALUES:
            _VALUES.clear()
        found = _VALUES[value] = value
    return found


_OPTIONAL_TEXT = ("dataset", "grade", "purpose", "reason", "source_ip", "request_id",
                  "result_digest")


def _actor(obj: dict[str, Any]) -> Actor:
    """The line's actor, checked (``obj["actor"]`` exists)."""
    actor = obj["actor"]
    if not isinstance(actor, dict):
        raise InvalidEvent("actor must be an object {id, role, org}", field="actor")
    get = actor.get
    key = (get("id"), get("role"), get("org"), get("name"))
    try:
        found = _ACTORS.get(key)
    except TypeError:  # a list or an object: the checks below name it
        found = None
    if found is not None:
        return found
    a_id, a_role, a_org, a_name = key
    if not (type(a_id) is str and type(a_role) is str and type(a_org) is str
            and 0 < len(a_id) <= MAX_TEXT and 0 < len(a_role) <= MAX_TEXT
            and 0 < len(a_org) <= MAX_TEXT and a_id.strip() and a_role.strip()
            and a_org.strip()):
        a_id, a_role, a_org = (cast("str", _text(actor, k, required=True))
                               for k in ("id", "role", "org"))
    if a_name is not None and (type(a_name) is not str or len(a_name) > MAX_TEXT):
        a_name = _text(actor, "name")  # optional: the account's display name
    found = Actor(a_id, a_role, a_org, a_name)
    _keep(_ACTORS, key, found)
    return found


def _decision(obj: dict[str, Any], effect: Any) -> EventDecision:
    """The line's decision, checked (``effect`` is not None)."""
    key = (effect, obj.get("rule_id"), obj.get("policy_version"))
    try:
        found = _DECISIONS.get(key)
    except TypeError:
        found = None
    if found is None:
        if effect not in EFFECTS:
            raise InvalidEvent(f"decision must be one of {', '.join(EFFECTS)}", field="decision")
        found = EventDecision(effect, _text(obj, "rule_id"), _text(obj, "policy_version"))
        _keep(_DECISIONS, key, found)
    return found


def _optional_text(obj: dict[str, Any], key: str) -> Any:
    value = obj.get(key)
    return value if _plain(value) else _text(obj, key)


def parse_record(
    obj: Any, *, reporter: str, now: datetime, redactor: Redactor | None = None
) -> AuditEvent:
    """Validate one decoded line. Raises InvalidEvent naming the bad field.

    This runs once per ingested line, so the common case (every value of the right type)
    is checked inline; the first failing check raises the same error as ever."""
    if not isinstance(obj, dict):
        raise InvalidEvent("line is not a JSON object")
    if not _KEYS.issuperset(obj):
        unknown = sorted(set(obj) - _KEYS)
        raise InvalidEvent(f"unknown field(s) {', '.join(map(repr, unknown))}")
    for key in _REQUIRED:
        if key not in obj:
            raise InvalidEvent(f"missing field {key!r}", field=key)
    get = obj.get
    claimed = get("reporter")
    if claimed is not None and claimed != reporter:
        raise InvalidEvent(
            f"reporter {claimed!r} is not the authenticated caller {reporter!r}; "
            "omit it (the caller is the reporter)", field="reporter",
        )
    raw_ts = obj["ts"]
    ts = parse_ts(raw_ts)
    if ts > now + MAX_FUTURE:
        raise InvalidEvent(
            f"timestamp {obj['ts']} is more than {int(MAX_FUTURE.total_seconds() // 60)} "
            "minutes in the future", field="ts",
        )
    actor = _actor(obj)
    action = obj["action"]
    if type(action) is not str or not action.strip() or len(action) > MAX_TEXT:
        action = _text(obj, "action", required=True)
    if action not in KNOWN_ACTIONS:
        raise InvalidEvent(f"unknown action {action!r}", field="action")
    fields = get("fields", [])
    if not isinstance(fields, list):
        raise InvalidEvent("fields must be a list of field names", field="fields")
    for name in fields:
        if not isinstance(name, str):
            raise InvalidEvent("fields must be a list of field names", field="fields")
    if len(fields) > MAX_FIELDS:
        raise InvalidEvent(f"more than {MAX_FIELDS} fields", field="fields")
    rows = get("rows")
    if rows is not None and (type(rows) is not int or rows < 0):
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise InvalidEvent("rows must be a non-negative integer", field="rows")
        rows = int(rows)
    effect = get("decision")
    decision = None if effect is None else _decision(obj, effect)
    outcome = get("outcome", "success")
    if outcome not in OUTCOMES:
        raise InvalidEvent(f"outcome must be one of {', '.join(OUTCOMES)}", field="outcome")
    labels = get("labels") or {}
    if not isinstance(labels, dict) or (labels and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    )):
        raise InvalidEvent("labels must be an object of strings", field="labels")
    # the optional texts, checked in the order of _OPTIONAL_TEXT
    dataset, grade, purpose = get("dataset"), get("grade"), get("purpose")
    if not (_plain(dataset) and _plain(grade) and _plain(purpose)):
        dataset, grade, purpose = (_optional_text(obj, k) for k in _OPTIONAL_TEXT[:3])
    reason, source_ip = get("reason"), get("source_ip")
    request_id, result_digest = get("request_id"), get("result_digest")
    if not (_plain(reason) and _plain(source_ip) and _plain(request_id)
            and _plain(result_digest)):
        reason, source_ip, request_id, result_digest = (
            _optional_text(obj, k) for k in _OPTIONAL_TEXT[3:])
    event = validated_event(
        ts, actor, _one(action), reporter,
        dataset=_one(dataset), fields=_one(tuple(fields)), grade=_one(grade), rows=rows,
        purpose=_one(purpose),
        reason=reason, decision=decision, outcome=outcome, source_ip=source_ip,
        request_id=request_id, result_digest=result_digest,
        labels={str(k): str(v) for k, v in labels.items()} if labels else {},
        ts_text=_utc_text(raw_ts),
    )
    return redact_event(event, redactor) if redactor is not None else event


def _utc_text(raw: str) -> str | None:
    """``format_ts`` of a time :func:`parse_ts` accepted, read off its text when that is
    already UTC with six fraction digits (``2026-11-01T21:58:08.978566Z`` or ``+00:00``,
    as reporters write it); None otherwise (the time is formatted from its value)."""
    n = len(raw)
    if ((n == 32 and raw.endswith("+00:00")) or (n == 27 and raw[26] in "Zz")) and (
            raw[10] == "T" and raw[19] == "." and raw[4] == raw[7] == "-"
            and raw[13] == raw[16] == ":" and raw.isascii() and raw[20:26].isdigit()):
        return raw[:26] + "Z"
    return None


def _plain(value: Any) -> bool:
    """An optional text that passes its check: absent, or a string of at most MAX_TEXT."""
    return value is None or (type(value) is str and len(value) <= MAX_TEXT)


# The encodings a reporter's lines may be named in (a file's ``--encoding``, an HTTP body's
# ``charset``), by the names people write, and the codec each is read with: UTF-8 (NDJSON's
# own) and the GB family, read as GB18030 (which contains GBK and GB 2312).
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gb18030",
            "gb2312": "gb18030", "gb18030": "gb18030", "cp936": "gb18030"}
_UTF8 = ("utf-8", "utf-8-sig")
NOT_UTF8_HINT = ("NDJSON is UTF-8: convert the file (a GBK export: iconv -f GB18030 -t UTF-8), "
                 "or name its encoding (audit ingest --encoding gb18030; over HTTP, "
                 "Content-Type: application/x-ndjson; charset=gb18030)")


def not_text(exc: UnicodeDecodeError, codec: str, where: str = "of the line",
             hint: str = NOT_UTF8_HINT) -> str:
    """What a line (or body) that is not text in ``codec`` is told: the byte, where it
    is, and (for UTF-8) what to do (``hint``)."""
    bad = bytes(exc.object[exc.start:exc.start + 1])
    label = "UTF-8" if codec in _UTF8 else codec.upper()
    message = f"not {label} text (byte 0x{bad.hex()} at byte {exc.start + 1} {where})"
    return f"{message}; {hint}" if label == "UTF-8" else message


_DECODER = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
# what may follow the object of a line read from a file: nothing, or its line end
_LINE_ENDS = ("", "\n", "\r\n")


def _decode(text: str | bytes, codec: str = "utf-8") -> Any:
    """``json.loads(text)``; UTF-8 bytes (the usual line) skip its encoding detection.
    Bytes in another ``codec`` (a value of :data:`CHARSETS`) are read in it.

    The usual line (a value right at its start, then at most its line end) is scanned
    at once; anything else (leading blanks, a byte order mark, trailing data, an error)
    goes the way of ``JSONDecoder.decode``, which accepts or words it as ever."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode(codec)
        except UnicodeDecodeError:
            if codec != "utf-8":
                raise
            return json.loads(text)  # UTF-16/32 with a byte order mark, or the error
    else:
        decoded = text
    try:
        obj, end = _SCAN(decoded, 0)
    except (StopIteration, ValueError):
        pass
    else:
        if decoded[end:] in _LINE_ENDS:
            return obj
    return _decode_whole(text, decoded, codec)


def _decode_whole(text: str | bytes, decoded: str, codec: str) -> Any:
    if decoded.startswith("\ufeff"):
        if isinstance(text, bytes) and codec != "utf-8":
            return _DECODER.decode(decoded[1:])  # the named encoding's own byte order mark
        return json.loads(text)  # a byte order mark: as json.loads treats it
    return _DECODER.decode(decoded)


def parse_line(
    text: str | bytes, *, line: int, reporter: str, now: datetime,
    redactor: Redactor | None = None, codec: str = "utf-8",
) -> AuditEvent:
    """One NDJSON line (``bytes`` are read in ``codec``, a value of :data:`CHARSETS`)."""
    try:
        obj = _decode(text, codec)
    except UnicodeDecodeError as exc:
        raise InvalidEvent(not_text(exc, codec), line=line) from exc
    except ValueError as exc:
        raise InvalidEvent(f"malformed JSON ({exc})", line=line) from exc
    try:
        event = parse_record(obj, reporter=reporter, now=now, redactor=redactor)
    except InvalidEvent as exc:
        raise InvalidEvent(exc.message, line=line, field=exc.field) from exc
    if _has_surrogate_escape(text):
        _storable(event, line)
    return event


def _has_surrogate_escape(text: str | bytes) -> bool:
    """Whether ``text`` holds ``\\ud`` or ``\\uD`` (the start of any escape of U+D800..DFFF)."""
    if isinstance(text, bytes):  # most lines hold no escape at all: one scan clears them
        return b"\\u" in text and (b"\\ud" in text or b"\\uD" in text)
    return "\\u" in text and ("\\ud" in text or "\\uD" in text)


def _storable(event: AuditEvent, line: int) -> None:
    """Refuse an event whose text holds a lone UTF-16 surrogate (a JSON escape such as
    ``\\ud800`` without its pair decodes to one): it is not Unicode, and neither its
    leaf hash nor the database can take it. Only lines with such an escape are checked."""
    try:
        event.canonical_bytes()
    except UnicodeEncodeError as exc:
        raise InvalidEvent("a text holds a lone UTF-16 surrogate (\\ud800-\\udfff without "
                           "its pair), which is not Unicode", line=line) from exc


def parse_chunks(
    lines: Iterable[str | bytes], *, reporter: str, now: datetime,
    redactor: Redactor | None = None, chunk: int = MAX_BATCH, first_line: int = 1,
    codec: str = "utf-8",
) -> Iterator[ParsedBatch]:
    """Parse a stream of lines lazily, ``chunk`` non-blank lines at a time.

    Memory stays bounded by one chunk whatever the length of the stream (a file is read
    as it is parsed). Line numbers count every line, blank ones too, from ``first_line``;
    a line that is not text in ``codec`` (UTF-8 unless named) is a per-line error like
    malformed JSON.
    """
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    pending: list[tuple[int, str | bytes]] = []
    for number, text in enumerate(lines, start=first_line):
        if text.strip():
            pending.append((number, text))
            if len(pending) >= chunk:
                yield _parse_numbered(pending, reporter=reporter, now=now, redactor=redactor,
                                      codec=codec)
                pending = []
    if pending:
        yield _parse_numbered(pending, reporter=reporter, now=now, redactor=redactor,
                              codec=codec)


def _parse_numbered(raw: list[tuple[int, str | bytes]], *, reporter: str, now: datetime,
                    redactor: Redactor | None, codec: str = "utf-8") -> ParsedBatch:
    events: list[AuditEvent] = []
    errors: list[LineError] = []
    for number, text in raw:
        try:
            events.append(parse_line(text, line=number, reporter=reporter, now=now,
                                     redactor=redactor, codec=codec))
        except InvalidEvent as exc:
            errors.append(LineError(number, exc.message))
    return ParsedBatch(tuple(events), tuple(errors), len(raw))


def parse_batch(
    lines: Iterable[str | bytes], *, reporter: str, now: datetime,
    redactor: Redactor | None = None, max_lines: int | None = MAX_BATCH, first_line: int = 1,
    codec: str = "utf-8",
) -> ParsedBatch:
    """Parse every non-blank line; errors are collected per line (1-based numbers)."""
    raw = [(i, text) for i, text in enumerate(lines, start=first_line) if text.strip()]
    if max_lines is not None and len(raw) > max_lines:
        raise BatchTooLarge(len(raw), max_lines)
    return _parse_numbered(raw, reporter=reporter, now=now, redactor=redactor, codec=codec)
