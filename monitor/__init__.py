"""monitor: the audit trail — events, append-only hash-chained store, Merkle
checkpoints, verification, search backends and alert rules. A library: it imports no
web framework and nothing of ``quanguard``."""

from __future__ import annotations

from monitor.actions import EXPORT_ACTIONS, KNOWN_ACTIONS
from monitor.errors import (
    AlertNotFound,
    AlertRulesError,
    BatchTooLarge,
    CheckpointError,
    EventNotFound,
    InvalidEvent,
    InvalidQuery,
    MonitorError,
    ProofInvalid,
    RetentionRefused,
    StoreBusy,
    Tampered,
)
from monitor.events import (
    Actor,
    AuditEvent,
    EventDecision,
    Redactor,
    canonical_json,
    format_ts,
    parse_ts,
    redact_event,
)
from monitor.search import Bucket, SearchBackend, SearchQuery, SearchResult

__all__ = [
    "Actor",
    "AlertNotFound",
    "AlertRulesError",
    "AuditEvent",
    "BatchTooLarge",
    "Bucket",
    "CheckpointError",
    "EXPORT_ACTIONS",
    "EventDecision",
    "EventNotFound",
    "InvalidEvent",
    "InvalidQuery",
    "KNOWN_ACTIONS",
    "MonitorError",
    "ProofInvalid",
    "Redactor",
    "RetentionRefused",
    "SearchBackend",
    "SearchQuery",
    "SearchResult",
    "StoreBusy",
    "Tampered",
    "canonical_json",
    "format_ts",
    "parse_ts",
    "redact_event",
]
