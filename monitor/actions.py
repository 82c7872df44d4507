"""The actions an audit event may name: one vocabulary for ingest and for alert rules.

* ``KNOWN_ACTIONS`` — what a reporter system may post (NDJSON ingest): the policy and
  service actions of quanguard plus the reporters' own (query, download, ...). An NDJSON
  line naming anything else is rejected.
* ``RECORDED_ACTIONS`` — every name an event in the trail can carry: the above plus the
  names the exchange records (``exchange.extract``, ...). Alert rules (``alerts.yaml``)
  may name only these, so a rule never waits for an action nobody records.

Every ``action=`` the service writes must be listed here; ``tests/policy/test_vocabulary``
walks the code and fails when one is not.
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
    "alert_read",
    "alert_update",
    "audit_checkpoint",
    "audit_event",
    "audit_export",
    "audit_handover",
    "audit_proof",
    "audit_purge",
    "audit_report",
    "audit_verify",
    "backup",
    "dataset_register",
    "key_admin",
    "key_create",
    "key_revoke",
    "key_rotate_master",
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

# What the exchange records (exchange/steps.py, service.py, delivery.py); ``exchange.<kind>``
# for a job queued for approval, kind one of aggregate / psi / extract.
EXCHANGE_ACTIONS = (
    "exchange.aggregate",
    "exchange.approve",
    "exchange.budget",
    "exchange.consent",
    "exchange.extract",
    "exchange.psi",
    "exchange.psi_terms",
    "exchange.register",
    "exchange.result",
)

REPORTER_ACTIONS = (
    "api_call",
    "download",
    "query",
    "share",
)

KNOWN_ACTIONS: frozenset[str] = frozenset(POLICY_ACTIONS + SERVICE_ACTIONS + REPORTER_ACTIONS)

RECORDED_ACTIONS: frozenset[str] = KNOWN_ACTIONS | frozenset(EXCHANGE_ACTIONS)

# Actions that move rows out of the platform; the bulk-export alert sums their rows.
EXPORT_ACTIONS: frozenset[str] = frozenset({"export", "exchange.extract", "download", "read_raw"})


def suggest_action(name: str) -> str | None:
    """The recorded action a mistyped or bare name most likely meant (``extract`` →
    ``exchange.extract``), or None."""
    import difflib

    if f"exchange.{name}" in RECORDED_ACTIONS:
        return f"exchange.{name}"
    close = difflib.get_close_matches(name, sorted(RECORDED_ACTIONS), n=1, cutoff=0.75)
    return close[0] if close else None
