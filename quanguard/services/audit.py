"""The audit service: the one way the service writes the audit trail.

``record`` appends one event in the caller's transaction and returns its seq (the
caller commits; a failure to record fails the request). ``record_batch`` appends many
(reporter ingest). After each append, in the same transaction: a signed checkpoint when
``audit_checkpoint_every`` events or ``audit_checkpoint_seconds`` have passed since the
last one, and the alert rules on the new events. Free text (purpose, reason) goes
through the PII redactor of the scan area before it is stored (the scan area is part of
every build: a missing one is an import error, never an unredacted trail).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, TypeAlias, TypedDict

from prometheus_client import Counter, Gauge
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from monitor.alert_engine import Alert, AlertEngine
from monitor.alerts import AlertRules
from monitor.checkpoint import Checkpoint, Signer, load_or_create_signer
from monitor.events import Actor, AuditEvent, EventDecision, redact_event, utc_now
from monitor.store import AuditStore
from monitor.trail import Trail
from quanguard.gate import request_counter, success_status
from quanguard.logs import scrub

if TYPE_CHECKING:
    from quanguard.container import Container
    from quanguard.policy.model import Decision

__all__ = ["KNOWN_CHECKPOINT_SECONDS", "AuditService", "EventActor", "EventDetails", "RecordFields", "RecordedDecision",
           "build_audit", "normalize_outcome"]


def _text(value: str) -> str:
    """``value`` as text every store can hold: each lone UTF-16 surrogate (U+D800-U+DFFF
    without its pair, e.g. from a JSON escape ``"\\ud800"``) and each NUL (PostgreSQL
    refuses it; the PII scanner takes it for binary) becomes U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def _opt_text(value: str | None) -> str | None:
    return None if value is None else _text(str(value))


_DATASET_CHARS = 200  # the trail's dataset column (monitor.store)


def _dataset(value: str | None) -> str | None:
    """A dataset name the trail's column holds: a longer one (no dataset has such a name:
    an attempt with a made-up one) is cut, marked with an ellipsis."""
    text = _opt_text(value)
    if text is None or len(text) <= _DATASET_CHARS:
        return text
    return text[:_DATASET_CHARS - 1] + "\u2026"


class EventActor(Protocol):
    """Who an event is about: a :class:`~quanguard.auth.Principal` or anything shaped like one."""

    @property
    def id(self) -> object: ...
    @property
    def role(self) -> object: ...
    @property
    def org(self) -> object: ...


class EventDetails(TypedDict, total=False):
    """What an event says beyond who, what, the decision and the request."""

    dataset: str | None
    fields: Sequence[str]
    grade: str | None
    rows: int | None
    purpose: str | None
    outcome: str
    result_digest: str | None
    labels: Mapping[str, object] | None
    reason: str | None


class RecordFields(EventDetails, total=False):
    """The optional keywords of :meth:`AuditService.record`, for helpers that pass them on."""

    decision: RecordedDecision
    source_ip: str | None
    request_id: str | None


# What ``record`` takes as the decision: the policy's, one already in the event's form, or
# just an effect ("deny").
RecordedDecision: TypeAlias = "Decision | EventDecision | str | None"

_log = logging.getLogger("quanguard.audit")
# The one outcome vocabulary: what callers say (the exchange's ``denied``/``pending``, a
# refusal's ``deny``) -> the event's ECS outcome (``monitor.events.OUTCOMES``).
Outcome = Literal["success", "failure", "unknown"]
_OUTCOMES: dict[str, Outcome] = {
    "success": "success", "ok": "success", "allowed": "success",
    "failure": "failure", "failed": "failure", "denied": "failure", "deny": "failure",
    "error": "failure", "pending": "unknown", "unknown": "unknown"}


def normalize_outcome(outcome: str) -> Outcome:
    """Callers say ``denied`` or ``failed``; the event model speaks ECS (success/failure)."""
    return _OUTCOMES.get(str(outcome).lower(), "unknown")


def _decision(value: RecordedDecision) -> EventDecision | None:
    if value is None:
        return None
    if isinstance(value, EventDecision):
        return value
    if isinstance(value, str):
        return EventDecision(value)
    return EventDecision(
        str(value.effect), getattr(value, "rule_id", None),
        getattr(value, "policy_version", None),
    )


def _who(actor: EventActor) -> dict[str, str]:
    """The key holder's name next to its id (ids are opaque; names are what people use)."""
    name = getattr(actor, "name", None)
    return {"key_name": str(name)} if name and str(name) != str(actor.id) else {}


_REQUEST_EVENTS = "quanguard_request_events"
_CHECKPOINT_SEEN = "quanguard_checkpoint_seen"
_NEW_ALERTS = "quanguard_new_alerts"
# how long a committed view of the newest checkpoint may spare the look-up
KNOWN_CHECKPOINT_SECONDS = 1.0


# Hooks on the Session class, once, instead of listeners added to every audited session:
# a commit counts the events held in its ``info`` and hands on the alerts they raised, a
# rollback forgets both.
@sa_event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    for held in session.info.pop(_REQUEST_EVENTS, ()):
        held[0] += 1
    seen = session.info.pop(_CHECKPOINT_SEEN, None)
    if seen is not None:
        seen[0]._committed_checkpoint(seen[1])
    raised = session.info.pop(_NEW_ALERTS, None)
    if raised is not None:
        raised[0]._notify(raised[1])


@sa_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_REQUEST_EVENTS, None)
    session.info.pop(_CHECKPOINT_SEEN, None)
    session.info.pop(_NEW_ALERTS, None)


class AuditService:
    """Built once per container (``container.audit``)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.settings = container.settings
        self.store = AuditStore(self.settings.suite)
        self._lock = threading.Lock()
        self._redactor: Callable[[str], str] | None = None
        self._redactor_ready = False
        self._free_text: tuple[Callable[[str], str] | None, Callable[[str], str]] | None = None
        registry = container.metrics.registry
        self.m_appended = Counter("quanguard_audit_events_appended_total",
                                  "Audit events appended to the trail", ["source"],
                                  registry=registry)
        self.m_alerts = Counter("quanguard_audit_alerts_raised_total",
                                "Alert hits by rule (new or collapsed)", ["rule"],
                                registry=registry)
        self._last_cp_time: datetime | None = None
        # (tree size, created, when seen) of the newest checkpoint a commit has shown
        self._cp_known: tuple[int, datetime, float] | None = None
        self.m_cp_age = Gauge("quanguard_audit_checkpoint_age_seconds",
                              "Seconds since the last signed checkpoint", registry=registry)
        self.m_cp_age.set_function(self._checkpoint_age)
        self.m_head = Gauge("quanguard_audit_head_seq", "Last appended seq (this process)",
                            registry=registry)

    # -- collaborators (lazy) ---------------------------------------------------------
    @functools.cached_property
    def signer(self) -> Signer:
        return load_or_create_signer(Path(self.settings.key_dir), self.settings.suite)

    @functools.cached_property
    def trail(self) -> Trail:
        return Trail(self.store, self.signer)

    @property
    def rules(self) -> AlertRules:
        """The alert rules of the active policy version (they reload with the policy)."""
        rules: AlertRules = self.container.policy.alert_rules
        return rules

    @property
    def alert_engine(self) -> AlertEngine:
        """The engine the policy service built (in its dry run) for those rules."""
        engine: AlertEngine = self.container.policy.alert_engine
        return engine

    def redactor(self) -> Callable[[str], str] | None:
        """The scan area's PII redactor, memoised (purposes repeat a lot) and built on the
        first text that needs it (building the analyzer takes seconds)."""
        with self._lock:
            if not self._redactor_ready:
                container = self.container
                real: list[Callable[[str], str]] = []
                lock = self._lock

                @functools.lru_cache(maxsize=4096)
                def redact(text: str) -> str:
                    if not real:
                        with lock:
                            if not real:
                                # the scanner (Presidio, spaCy, jieba) loads only now
                                from quanguard.services.scan import make_redactor

                                real.append(make_redactor(container))
                    return real[0](text)

                self._redactor = redact
                self._redactor_ready = True
            return self._redactor

    def set_redactor(self, redactor: Callable[[str], str] | None) -> None:
        with self._lock:
            self._redactor, self._redactor_ready = redactor, True

    # -- writing ----------------------------------------------------------------------
    def record(
        self,
        session: Session,
        *,
        actor: EventActor,
        action: str,
        dataset: str | None = None,
        fields: Sequence[str] = (),
        grade: str | None = None,
        rows: int | None = None,
        purpose: str | None = None,
        decision: RecordedDecision = None,
        outcome: str = "success",
        source_ip: str | None = None,
        request_id: str | None = None,
        result_digest: str | None = None,
        labels: Mapping[str, object] | None = None,
        reason: str | None = None,
    ) -> int:
        """Append one event in the caller's transaction; returns its seq."""
        dec = _decision(decision)
        if reason is None and decision is not None:
            reason = getattr(decision, "reason", None) or None
        outcome = normalize_outcome(outcome)
        status = None
        if outcome == "success":
            queued = dec is not None and dec.effect == "approval_required"
            status = "202" if queued and success_status() else success_status()
        if status is not None and "http_status" not in (labels or {}):
            # a use case's own event of a served request names the status it is answered with
            labels = {**(labels or {}), "http_status": status}
        # every text goes through _text: an attempt whose input holds a lone surrogate is
        # still recorded (a str that cannot be encoded would fail the whole write)
        event = AuditEvent(
            ts=utc_now(),
            actor=Actor(_text(str(actor.id)), _text(str(actor.role)), _text(str(actor.org)),
                        _text(str(getattr(actor, "name", "") or "")) or None),
            action=_text(action),
            reporter="quanguard",
            dataset=_dataset(dataset),
            fields=tuple(_text(str(f)) for f in fields),
            grade=_opt_text(grade),
            rows=rows,
            purpose=_opt_text(purpose),
            reason=_opt_text(reason),
            decision=dec,
            outcome=outcome,
            source_ip=_opt_text(source_ip),
            request_id=_opt_text(request_id),
            result_digest=_opt_text(result_digest),
            labels={_text(str(k)): _text(str(v)) for k, v in {**_who(actor), **(labels or {})}.items()
                    if v is not None},
        )
        (stored,) = self.record_batch(session, [event], source="service")
        assert stored.seq is not None
        self._count_on_commit(session)
        return stored.seq

    @staticmethod
    def _count_on_commit(session: Session) -> None:
        """Count the event for the request being served once its transaction commits
        (the HTTP layer writes a generic event for a request that left none); the
        session-class hooks below do the counting."""
        counter = request_counter()
        if counter is None:
            return
        session.info.setdefault(_REQUEST_EVENTS, []).append(counter)

    def record_batch(self, session: Session, events: Sequence[AuditEvent], *,
                     source: str = "reporter", now: datetime | None = None
                     ) -> list[AuditEvent]:
        """Append ``events`` (redacted here), checkpoint if due, evaluate alerts."""
        if not events:
            return []
        redactor = self._free_text_redactor()
        events = [redact_event(e, redactor) for e in events]
        stamp = now or utc_now()
        stored = self.store.append(session, events, now=stamp)
        self._maybe_checkpoint(session, stamp, stored[-1].seq or 0)
        alerts = self.alert_engine.process(session, stored, now=stamp)
        if alerts:
            self._after_commit(session, alerts)
        self.m_appended.labels(source=source).inc(len(stored))
        self.m_head.set(stored[-1].seq or 0)
        return stored

    def _free_text_redactor(self) -> Callable[[str], str]:
        """Secrets scrubbed, then PII redacted (texts the fast reject cannot clear only),
        memoised per text: free texts of ingested events repeat a lot."""
        pii = self.redactor()
        held = self._free_text
        if held is not None and held[0] is pii:
            return held[1]
        from desensitize.prefilter import could_hold_pii  # only the writing path needs it

        @functools.lru_cache(maxsize=65_536)
        def redactor(text: str) -> str:
            # Secrets first (an API key pasted into a purpose must never be kept), then PII.
            cleaned = scrub(text)
            # Fast reject: most free texts cannot hold PII; only those that may are scanned.
            return pii(cleaned) if pii is not None and could_hold_pii(cleaned) else cleaned

        self._free_text = (pii, redactor)
        return redactor

    def _due(self, latest: tuple[int, datetime] | None, now: datetime, head_seq: int) -> bool:
        if latest is None:
            return head_seq >= 1
        size, created = latest
        return head_seq > size and (
            head_seq - size >= self.settings.audit_checkpoint_every
            or (now - created).total_seconds() >= self.settings.audit_checkpoint_seconds
        )

    def _maybe_checkpoint(self, session: Session, now: datetime, head_seq: int) -> None:
        # Checkpoints are only ever added, so the trail's newest one is at least as new as
        # the newest this process saw committed: when that one says "not due", so would
        # the trail. Only then is the look-up skipped, and for KNOWN_CHECKPOINT_SECONDS at
        # most (another process's checkpoint, a restored database).
        known = self._cp_known
        if (known is not None and time.monotonic() - known[2] < KNOWN_CHECKPOINT_SECONDS
                and not self._due((known[0], known[1]), now, head_seq)):
            return
        latest = self.trail.latest_head(session)
        if latest is not None:
            self._last_cp_time = latest[1]
            self._keep_on_commit(session, latest)
        if self._due(latest, now, head_seq):
            self.checkpoint(session, now=now)

    def _keep_on_commit(self, session: Session, latest: tuple[int, datetime]) -> None:
        """Remember ``latest`` once the transaction that read or wrote it commits."""
        held = session.info.get(_CHECKPOINT_SEEN)
        if held is None or latest[0] >= held[1][0]:
            session.info[_CHECKPOINT_SEEN] = (self, latest)

    def _committed_checkpoint(self, latest: tuple[int, datetime]) -> None:
        known = self._cp_known
        if known is None or latest[0] >= known[0]:
            self._cp_known = (latest[0], latest[1], time.monotonic())

    def checkpoint(self, session: Session, *, now: datetime | None = None) -> Checkpoint:
        cp = self.trail.checkpoint(session, now=now)
        self._last_cp_time = cp.timestamp
        self._keep_on_commit(session, (cp.tree_size, cp.timestamp))
        return cp

    def _checkpoint_age(self) -> float:
        if self._last_cp_time is None:
            return 0.0
        return max(0.0, (utc_now() - self._last_cp_time).total_seconds())

    def _after_commit(self, session: Session, alerts: list[Alert]) -> None:
        """Hand ``alerts`` to the alert service once the transaction commits (the
        session-class hooks above; a rollback forgets them)."""
        for rule, n in collections.Counter(alert.rule for alert in alerts).items():
            self.m_alerts.labels(rule=rule).inc(n)
        held = session.info.get(_NEW_ALERTS)
        if held is None:
            session.info[_NEW_ALERTS] = (self, list(alerts))
        else:
            held[1].extend(alerts)

    def _notify(self, alerts: list[Alert]) -> None:
        if alerts:
            self.container.alerts.notify(alerts)


def build_audit(container: Container) -> AuditService:
    return AuditService(container)
