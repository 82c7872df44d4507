"""The actions an audit event may name.

Policy actions and service actions of quanguard, plus the actions reporter systems
of the city's platforms post for the accesses they served. An NDJSON line naming an
action not listed here is rejected.
"""

from __future__ import annotations

POLICY_ACTIONS = (
    "aggregate",
    "approve",
    "audit_search",
    "export",
    "policy_admin",
    "psi",
    "read_masked",
    "read_raw",
)

SERVICE_ACTIONS = (
    "access_denied",
    "alert_update",
    "audit_checkpoint",
    "audit_event",
    "audit_export",
    "audit_proof",
    "audit_purge",
    "audit_report",
    "audit_verify",
    "backup",
    "dataset_register",
    "extract",
    "key_admin",
    "key_create",
    "key_revoke",
    "login",
    "mask",
    "policy_decide",
    "policy_reload",
    "report_events",
    "restore",
    "scan",
    "unmask",
    "watermark_detect",
    "watermark_embed",
)

REPORTER_ACTIONS = (
    "api_call",
    "download",
    "query",
    "share",
)

KNOWN_ACTIONS: frozenset[str] = frozenset(POLICY_ACTIONS + SERVICE_ACTIONS + REPORTER_ACTIONS)

# Actions that move rows out of the platform; the bulk-export alert sums their rows.
EXPORT_ACTIONS: frozenset[str] = frozenset({"export", "extract", "download", "read_raw"})
