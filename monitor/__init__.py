"""monitor: the audit trail — events, append-only hash-chained store, Merkle
checkpoints, verification, search backends and alert rules. A library: it imports no
web framework and nothing of ``quanguard``."""

from __future__ import annotations

from monitor.actions import EXPORT_ACTIONS, KNOWN_ACTIONS
from monitor.alert_engine import Alert, AlertEngine, list_alerts, transition
from monitor.alerts import AlertRules, load_alert_rules, parse_alert_rules
from monitor.checkpoint import Checkpoint, Signer, load_or_create_signer, read_checkpoint_file
from monitor.errors import (
    AlertConflict,
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
from monitor.ingest import LineError, ParsedBatch, parse_batch, parse_line
from monitor.merkle import InclusionProof
from monitor.retention import plan_purge, purge
from monitor.search import Bucket, SearchBackend, SearchQuery, SearchResult
from monitor.sql_search import SqlSearchBackend
from monitor.store import METADATA, AuditStore, Head
from monitor.trail import Trail, proof_document, verify_proof_document
from monitor.verify import verify_trail

__all__ = [  # noqa: RUF022 - plain sorted()
    "Actor",
    "Alert",
    "AlertConflict",
    "AlertEngine",
    "AlertNotFound",
    "AlertRules",
    "AlertRulesError",
    "AuditEvent",
    "AuditStore",
    "BatchTooLarge",
    "Bucket",
    "Checkpoint",
    "CheckpointError",
    "EXPORT_ACTIONS",
    "EventDecision",
    "EventNotFound",
    "Head",
    "InclusionProof",
    "InvalidEvent",
    "InvalidQuery",
    "KNOWN_ACTIONS",
    "LineError",
    "METADATA",
    "MonitorError",
    "ParsedBatch",
    "ProofInvalid",
    "Redactor",
    "RetentionRefused",
    "SearchBackend",
    "SearchQuery",
    "SearchResult",
    "Signer",
    "SqlSearchBackend",
    "StoreBusy",
    "Tampered",
    "Trail",
    "canonical_json",
    "format_ts",
    "list_alerts",
    "load_alert_rules",
    "load_or_create_signer",
    "parse_alert_rules",
    "parse_batch",
    "parse_line",
    "parse_ts",
    "plan_purge",
    "proof_document",
    "purge",
    "read_checkpoint_file",
    "redact_event",
    "transition",
    "verify_proof_document",
    "verify_trail",
]
