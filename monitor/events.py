"""The audit event: model, canonical serialisation, leaf hashing input.

An event is serialised to an ECS-aligned JSON *document* (nested objects; field names
below). The canonical bytes of that document — keys sorted, no whitespace, UTF-8,
``None``/empty values omitted, timestamps as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` — are the
input of the RFC 6962 leaf hash (see ``monitor.merkle``). The document includes
``event.sequence``, so a leaf is bound to its position in the trail.

Document fields::

    @timestamp            when the access happened (UTC, µs)
    event.id              UUID (version 7: time-ordered) as 32 hex digits, unique
    event.sequence        seq in the trail (1-based), set by the store
    event.action          one of monitor.actions.KNOWN_ACTIONS
    event.outcome         success | failure | unknown
    event.ingested        when the trail recorded it (UTC, µs)
    event.reason          free text (decision reason, note) — redacted
    user.id / user.roles  the actor and its role ([role])
    user.name             the actor's key name at the time of the event (when known)
    organization.name     the actor's organisation at the time of the event
    source.ip             client address
    trace.id              request id
    rule.id / rule.version   the policy rule and policy version of the decision
    labels                extra string labels
    audit.reporter        who recorded the event (the authenticated caller)
    audit.dataset / audit.fields / audit.grade / audit.rows
    audit.purpose         free text — redacted
    audit.effect          allow | deny | approval_required | error
                          (error: the request could not be served — bad input, an
                          unknown name, a server failure — as opposed to refused)
    audit.result_digest   sha256 hex of what was delivered

Events never carry raw personal values: ``fields`` are names, and the free-text fields
go through a redactor (``redact_event``) before they are stored.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from json.encoder import encode_basestring as _q
from types import MappingProxyType
from typing import Any

from monitor.errors import InvalidEvent, MonitorError

OUTCOMES = ("success", "failure", "unknown")
EFFECTS = ("allow", "deny", "approval_required", "error")

Redactor = Callable[[str], str]


# Random bits for event and alert ids, fetched from the OS 4 KiB at a time: one
# ``os.urandom`` call per id released the GIL once per ingested event, and in a served
# batch every release let another request's thread take the interpreter from the one
# appending (measured: about 7% of batch POST throughput). Same source, same quality; a
# forked child drops what it inherited (it would repeat its parent's ids).
_RANDOM_WORDS = 512
_random: Iterator[int] = iter(())


def random_bits() -> int:
    """64 random bits from the OS (``os.urandom``), buffered: for ids made in bulk."""
    global _random
    try:
        return next(_random)
    except StopIteration:
        _random = iter(memoryview(os.urandom(8 * _RANDOM_WORDS)).cast("Q").tolist())
        return next(_random)


def _forget_random() -> None:
    global _random
    _random = iter(())


os.register_at_fork(after_in_child=_forget_random)


def new_event_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID as 32 hex digits: the Unix time in ms,
    its sub-ms fraction in 12 bits (method 3), then 62 random bits.

    Ids made later sort later, so the trail's unique index on ``id`` takes each new key
    at its end instead of at a random leaf page (this runs once per ingested event)."""
    ms, ns = divmod(time.time_ns(), 1_000_000)
    return (ms << 80 | 0x7000 << 64 | (ns * 4096 // 1_000_000) << 64  # version 7, sub-ms
            | 0x8000_0000_0000_0000 | random_bits() >> 2  # variant, random
            ).to_bytes(16).hex()


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(ts: datetime) -> str:
    """``2026-11-26T12:00:00.000001Z``; naive datetimes are refused (ambiguous)."""
    if ts.tzinfo is None:
        raise InvalidEvent("timestamp has no time zone", field="@timestamp")
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    return ts.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _fast_ts(ts: datetime) -> str:
    """:func:`format_ts` for the usual case, an aware time at offset zero."""
    text = ts.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else format_ts(ts)


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or offset) into an aware UTC datetime."""
    if not isinstance(text, str) or not text:
        raise InvalidEvent("timestamp must be an RFC 3339 string", field="ts")
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidEvent(f"timestamp {text!r} is not RFC 3339", field="ts") from exc
    if ts.tzinfo is None:
        raise InvalidEvent(f"timestamp {text!r} has no offset (use Z or +08:00)", field="ts")
    try:
        return ts.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:30+01:00 is before the first UTC time
        raise InvalidEvent(f"timestamp {text!r} is out of range in UTC", field="ts") from exc


_AGO = re.compile(r"\s*([0-9]+)\s*([smhdw])\s*")
_AGO_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_ago(text: str, now: datetime | None = None) -> datetime | None:
    """``15m``/``24h``/``7d``/``2w``: that long before ``now`` (UTC); None when ``text`` is
    no such duration. A duration reaching before year 1 is an :class:`InvalidEvent`."""
    match = _AGO.fullmatch(text)
    if match is None:
        return None
    try:
        return (now or utc_now()) - timedelta(**{_AGO_UNITS[match.group(2)]: int(match.group(1))})
    except (OverflowError, ValueError) as exc:  # past datetime.min, or too many digits
        raise InvalidEvent(f"{text.strip()[:40]!r} reaches too far back", field="ts") from exc


@dataclass(frozen=True)
class Actor:
    """Who accessed: principal id, role, organisation and (when known) the key's name,
    as they were at the time of the event. ``name`` is optional so that events recorded
    before names were kept (and their leaf hashes) stay exactly as they were."""

    id: str
    role: str
    org: str
    name: str | None = None

    def __post_init__(self) -> None:
        if self.name == "":  # an empty name is no name: the hashed body leaves it out
            object.__setattr__(self, "name", None)


@dataclass(frozen=True)
class EventDecision:
    """The policy decision an access was made under."""

    effect: str
    rule_id: str | None = None
    policy_version: str | None = None

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise InvalidEvent(f"decision effect {self.effect!r} is not one of {EFFECTS}")


@dataclass(frozen=True)
class AuditEvent:
    """One recorded access. ``seq`` is ``None`` until the store appends it."""

    ts: datetime
    actor: Actor
    action: str
    reporter: str
    id: str = field(default_factory=new_event_id)
    seq: int | None = None
    dataset: str | None = None
    fields: tuple[str, ...] = ()
    grade: str | None = None
    rows: int | None = None
    purpose: str | None = None
    reason: str | None = None
    decision: EventDecision | None = None
    outcome: str = "success"
    source_ip: str | None = None
    request_id: str | None = None
    result_digest: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    ingested: datetime | None = None

    def __post_init__(self) -> None:
        if self.ts.tzinfo is None:
            raise InvalidEvent("timestamp has no time zone", field="ts")
        # Normalise to UTC with µs precision so that the canonical form round-trips.
        object.__setattr__(self, "ts", self.ts.astimezone(UTC))
        if self.ingested is not None:
            if self.ingested.tzinfo is None:
                raise InvalidEvent("ingested timestamp has no time zone", field="ingested")
            object.__setattr__(self, "ingested", self.ingested.astimezone(UTC))
        object.__setattr__(self, "fields", tuple(self.fields))
        object.__setattr__(
            self, "labels", MappingProxyType({str(k): str(v) for k, v in self.labels.items()})
        )
        if self.outcome not in OUTCOMES:
            raise InvalidEvent(f"outcome {self.outcome!r} is not one of {OUTCOMES}")
        if self.rows is not None and (isinstance(self.rows, bool) or self.rows < 0):
            raise InvalidEvent("rows must be a non-negative integer", field="rows")
        if not self.action:
            raise InvalidEvent("action is empty", field="action")

    @property
    def effect(self) -> str | None:
        return self.decision.effect if self.decision else None

    @cached_property
    def ts_us(self) -> int:
        """``ts`` as µs since the epoch (the stored ``ts`` column; computed once)."""
        return (self.ts - _EPOCH) // _US

    def with_seq(self, seq: int) -> AuditEvent:
        return replace(self, seq=seq)

    def to_document(self) -> dict[str, Any]:
        """The ECS-aligned document (nested dicts); ``None`` and empty values omitted."""
        decision = self.decision
        event = _some(
            id=self.id, sequence=self.seq, action=self.action, outcome=self.outcome,
            ingested=format_ts(self.ingested) if self.ingested else None, reason=self.reason,
        )
        audit = _some(
            reporter=self.reporter, dataset=self.dataset, fields=list(self.fields) or None,
            grade=self.grade, rows=self.rows, purpose=self.purpose,
            effect=decision.effect if decision else None, result_digest=self.result_digest,
        )
        doc: dict[str, Any] = {
            "@timestamp": format_ts(self.ts),
            "event": event,
            "user": _some(id=self.actor.id, name=self.actor.name or None,
                          roles=[self.actor.role]),
            "organization": {"name": self.actor.org},
            "audit": audit,
        }
        if self.source_ip is not None:
            doc["source"] = {"ip": self.source_ip}
        if self.request_id is not None:
            doc["trace"] = {"id": self.request_id}
        if decision is not None and (decision.rule_id is not None
                                     or decision.policy_version is not None):
            doc["rule"] = _some(id=decision.rule_id, version=decision.policy_version)
        if self.labels:
            doc["labels"] = dict(self.labels)
        return doc

    def stamped(self, seq: int, ingested: datetime) -> AuditEvent:
        """A copy with ``seq`` set (and ``ingested`` when unset), skipping re-validation:
        the fields were validated when this event was built."""
        new = object.__new__(AuditEvent)
        new.__dict__.update(self.__dict__)
        new.__dict__["seq"] = seq
        if self.ingested is None:
            new.__dict__["ingested"] = ingested.astimezone(UTC)
        return new

    def canonical_bytes(self, *, ingested: str | None = None) -> bytes:
        """The exact bytes the leaf hash is computed over: ``canonical_json`` of
        :meth:`to_document`, written directly (no intermediate document; a test holds
        the two equal). ``ingested`` may pass ``format_ts(self.ingested)`` precomputed
        (the store formats a batch's one stamp once)."""
        return canonical_text(self, ingested=ingested).encode("utf-8")

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> AuditEvent:
        """Inverse of ``to_document``; raises InvalidEvent on a malformed document."""
        try:
            ev = doc.get("event", {})
            user = doc.get("user", {})
            audit = doc.get("audit", {})
            rule = doc.get("rule", {})
            roles = user.get("roles") or [""]
            effect = audit.get("effect")
            decision = (
                EventDecision(effect, rule.get("id"), rule.get("version")) if effect else None
            )
            ingested = ev.get("ingested")
            return cls(
                ts=parse_ts(doc["@timestamp"]),
                actor=Actor(user["id"], roles[0], doc.get("organization", {}).get("name", ""),
                            user.get("name")),
                action=ev["action"],
                reporter=audit["reporter"],
                id=ev["id"],
                seq=ev.get("sequence"),
                dataset=audit.get("dataset"),
                fields=tuple(audit.get("fields", ())),
                grade=audit.get("grade"),
                rows=audit.get("rows"),
                purpose=audit.get("purpose"),
                reason=ev.get("reason"),
                decision=decision,
                outcome=ev.get("outcome", "success"),
                source_ip=doc.get("source", {}).get("ip"),
                request_id=doc.get("trace", {}).get("id"),
                result_digest=audit.get("result_digest"),
                labels=doc.get("labels", {}),
                ingested=parse_ts(ingested) if ingested else None,
            )
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise InvalidEvent(f"malformed event document: {exc!r}") from exc

    @classmethod
    def from_json(cls, data: bytes | str) -> AuditEvent:
        return cls.from_document(json_object(data, InvalidEvent, "event body"))


_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def json_object(text: bytes | str, error: type[MonitorError], what: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object; ``error`` ("<what> is not JSON", "... not a JSON
    object") otherwise."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise error(f"{what} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise error(f"{what} is not a JSON object")
    return doc


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8 (not ASCII-escaped)."""
    return _ENCODER.encode(obj).encode("utf-8")


def validated_event(
    ts: datetime, actor: Actor, action: str, reporter: str, *, dataset: str | None,
    fields: tuple[str, ...], grade: str | None, rows: int | None, purpose: str | None,
    reason: str | None, decision: EventDecision | None, outcome: str,
    source_ip: str | None, request_id: str | None, result_digest: str | None,
    labels: dict[str, str], ts_text: str | None = None,
) -> AuditEvent:
    """An :class:`AuditEvent` from values the caller has already validated exactly as
    ``AuditEvent.__post_init__`` would (``ts`` aware and in UTC, ``outcome`` known,
    ``rows`` a non-negative int, ``action`` non-empty, ``labels`` strings): the ingest
    parser checks every line itself and skips the second validation. ``ts_text``, when
    given, is ``format_ts(ts)`` (the canonical form skips formatting the time again)."""
    ev = object.__new__(AuditEvent)
    ev.__dict__.update(
        ts=ts, actor=actor, action=action, reporter=reporter, id=new_event_id(), seq=None,
        dataset=dataset, fields=fields, grade=grade, rows=rows, purpose=purpose,
        reason=reason, decision=decision, outcome=outcome, source_ip=source_ip,
        request_id=request_id, result_digest=result_digest,
        labels=MappingProxyType(labels), ingested=None,
        ts_us=(ts - _EPOCH) // _US,  # the ``ts_us`` property's value, computed here at once
    )
    if ts_text is not None:  # ``format_ts(ts)``, which the caller read off its input
        ev.__dict__["ts_text"] = ts_text
    return ev


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def canonical_text(ev: AuditEvent, *, ingested: str | None = None) -> str:
    """:meth:`AuditEvent.canonical_bytes` as text (the store keeps the text as ``body``)."""
    try:
        return _canonical_fast(ev, ingested)
    except TypeError:  # a value of an unexpected type: the general path decides
        return canonical_json(ev.to_document()).decode("utf-8")


def _canonical_fast(ev: AuditEvent, ingested: str | None) -> str:
    """``canonical_json(ev.to_document())`` by hand: keys in sorted order, strings escaped
    by the JSON encoder's own C function. Raises TypeError for anything but the plain
    types (the caller then takes the general path)."""
    d = ev.__dict__
    decision = d["decision"]
    actor = d["actor"]
    # audit.{dataset,effect,fields,grade,purpose,reporter,result_digest,rows}
    parts = []
    v = d["dataset"]
    if v is not None:
        parts.append('"dataset":' + _q(v))
    if decision is not None:
        parts.append('"effect":' + _q(decision.effect))
    v = d["fields"]
    if v:
        parts.append('"fields":[' + ",".join([_q(f) for f in v]) + "]")
    v = d["grade"]
    if v is not None:
        parts.append('"grade":' + _q(v))
    v = d["purpose"]
    if v is not None:
        parts.append('"purpose":' + _q(v))
    parts.append('"reporter":' + _q(d["reporter"]))
    v = d["result_digest"]
    if v is not None:
        parts.append('"result_digest":' + _q(v))
    v = d["rows"]
    if v is not None:
        if type(v) is not int:
            raise TypeError("rows")
        parts.append(f'"rows":{v}')
    out = ['{"@timestamp":"', d.get("ts_text") or _fast_ts(d["ts"]), '","audit":{', ",".join(parts),
           '},"event":{"action":', _q(d["action"]), ',"id":', _q(d["id"])]
    # event.{action,id,ingested,outcome,reason,sequence}
    v = d["ingested"]
    if v is not None:
        out.append(',"ingested":"')
        out.append(ingested if ingested is not None else _fast_ts(v))
        out.append('"')
    out.append(',"outcome":')
    out.append(_q(d["outcome"]))
    v = d["reason"]
    if v is not None:
        out.append(',"reason":')
        out.append(_q(v))
    v = d["seq"]
    if v is not None:
        if type(v) is not int:
            raise TypeError("seq")
        out.append(f',"sequence":{v}')
    out.append("}")
    labels = d["labels"]
    if labels:
        out.append(',"labels":{')
        out.append(",".join([_q(k) + ":" + _q(labels[k]) for k in sorted(labels)]))
        out.append("}")
    out.append(',"organization":{"name":')
    out.append(_q(actor.org))
    out.append("}")
    if decision is not None and (decision.rule_id is not None
                                 or decision.policy_version is not None):
        rule = []
        if decision.rule_id is not None:
            rule.append('"id":' + _q(decision.rule_id))
        if decision.policy_version is not None:
            rule.append('"version":' + _q(decision.policy_version))
        out.append(',"rule":{' + ",".join(rule) + "}")
    v = d["source_ip"]
    if v is not None:
        out.append(',"source":{"ip":' + _q(v) + "}")
    v = d["request_id"]
    if v is not None:
        out.append(',"trace":{"id":' + _q(v) + "}")
    out.append(',"user":{"id":')
    out.append(_q(actor.id))
    if actor.name:
        out.append(',"name":')
        out.append(_q(actor.name))
    out.append(',"roles":[')
    out.append(_q(actor.role))
    out.append("]}}")
    return "".join(out)


def redact_event(event: AuditEvent, redactor: Redactor | None) -> AuditEvent:
    """Pass the free-text fields (purpose, reason) through ``redactor`` before storage."""
    if redactor is None:
        return event
    purpose = redactor(event.purpose) if event.purpose else event.purpose
    reason = redactor(event.reason) if event.reason else event.reason
    if purpose == event.purpose and reason == event.reason:
        return event  # nothing to redact: no copy (this runs once per ingested event)
    return replace(event, purpose=purpose, reason=reason)


def _some(**items: Any) -> dict[str, Any]:
    return {k: v for k, v in items.items() if v is not None}
