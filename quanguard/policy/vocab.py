"""The closed vocabularies a policy file may use: actions, effects, obligations, conditions.

Roles come from ``quanguard.auth.ROLES`` (one list for keys and policies). Grades are
defined by ``grades.yaml`` itself, so they are not listed here.
"""

from __future__ import annotations

from quanguard.auth import ROLES

__all__ = [
    "ACTIONS",
    "CONDITIONS",
    "EFFECTS",
    "OBLIGATIONS",
    "RELEASING_ACTIONS",
    "ROLES",
    "WILDCARD",
]

WILDCARD = "*"

ACTIONS: tuple[str, ...] = (
    # issue 2 — what a person does with data or policy
    "read_raw",
    "read_masked",
    "export",
    "aggregate",
    "psi",
    "approve",
    "audit_search",
    "policy_admin",
    "policy_decide",
    # service actions other areas ask about
    "scan",
    "mask",
    "unmask",
    "watermark_embed",
    "watermark_detect",
    "report_events",
    "dataset_register",
    "extract",
    "key_admin",
    # the trail and the store (issue 11: asked of the gate like everything else)
    "audit_verify",
    "audit_purge",
    "backup",
    # alerts: reading them, acknowledging / closing / reopening them
    "alert_read",
    "alert_update",
    # the console: who may sign in (each attempt is a ``login`` event)
    "console_sign_in",
)

# Actions through which data (or a result computed from it) leaves its owner's custody.
# A grade marked ``never_leaves`` may not be named by a non-deny rule for these.
RELEASING_ACTIONS: frozenset[str] = frozenset(
    {
        "read_raw",
        "read_masked",
        "export",
        "extract",
        "aggregate",
        "psi",
        "unmask",
        "watermark_embed",
        "dataset_register",
    }
)

EFFECTS: tuple[str, ...] = ("allow", "deny", "approval_required")

# obligation name -> value type, checked by the loader:
#   "str" non-empty string, "bool", "pos_number" number > 0, "prob" number in [0, 1),
#   "pos_int" integer >= 1, "role" a role name, "psi_reveal" count|matches
OBLIGATIONS: dict[str, str] = {
    "mask_profile": "str",
    "watermark": "bool",
    "epsilon_cap": "pos_number",
    "delta_cap": "prob",
    "min_group_size": "pos_int",
    "row_limit": "pos_int",
    "approval": "role",
    "psi_reveal": "psi_reveal",
    # the exchange's seams (exchange/limits.py documents each)
    "epsilon_min": "pos_number",
    "psi_min_set_size": "pos_int",
    "psi_max_requests": "pos_int",
    "psi_max_items": "pos_int",
    "psi_period_days": "pos_number",
    "psi_count_epsilon": "pos_number",
    "approval_ttl_days": "pos_number",
    "budget_period_days": "pos_number",
    "budget_family_jaccard": "prob",
}

PSI_REVEAL: tuple[str, ...] = ("count", "matches")

# condition name -> value type:
#   same_org: bool     principal.org == resource.owner_org (True) / != (False);
#                      never matches when the resource has no owner_org (fail closed)
#   orgs: [str]        principal.org is one of these
#   owner_orgs: [str]  resource.owner_org is one of these
#   datasets: [str]    resource.dataset is one of these
#   purposes: [str]    resource.purpose is one of these
CONDITIONS: dict[str, str] = {
    "same_org": "bool",
    "orgs": "str_list",
    "owner_orgs": "str_list",
    "datasets": "str_list",
    "purposes": "str_list",
}
