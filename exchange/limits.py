"""Limits of one computation, read from a policy decision's obligations.

Obligations a rule may carry (``policies/roles.yaml``; defaults here where it carries none):

================================  =======================================================
``epsilon_cap`` / ``delta_cap``   ε/δ budget of a consumer organisation on a budget family
``epsilon_min``                   smallest ε a query may ask (exclusive), default 0.001
``min_group_size``                groups with fewer subjects are suppressed
``row_limit``                     most rows of an extract / identifiers of one PSI request
``psi_reveal``                    ``count`` or ``matches``
``psi_min_set_size``              fewest identifiers one PSI request may hold (default 1)
``psi_max_requests``              PSI requests per consumer org × budget family × period
``psi_max_items``                 identifiers summed over those requests
``psi_period_days``               the period of the two above (default 1 day)
``psi_count_epsilon``             count-only PSI: randomised response on every identifier
                                  with this ε, charged to the ε budget (default: none)
``approval_ttl_days``             how long an approval may be used (default 7 days)
``budget_period_days``            budgets renew every this many days (default: never)
``budget_family_jaccard``         overlap at which a new dataset joins a budget family
                                  (on the ``dataset_register`` rule; default 0.5)
================================  =======================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchange.family import DEFAULT_THRESHOLD
from exchange.numbers import EPSILON_MIN
from exchange.psi import REVEALS


@dataclass(frozen=True)
class Defaults:
    """Used where the policy decision carries no obligation of that name."""

    epsilon_cap: float = 1.0
    delta_cap: float = 1e-6
    min_group_size: int = 10
    psi_max_ids: int = 100_000
    psi_reveal: str = "count"
    epsilon_min: float = EPSILON_MIN
    approval_ttl_days: float = 7.0
    psi_period_days: float = 1.0


@dataclass(frozen=True)
class Limits:
    epsilon_cap: float
    delta_cap: float
    min_group_size: int
    row_limit: int | None
    psi_reveal: str
    mask_profile: str | None
    watermark: bool
    epsilon_min: float = EPSILON_MIN
    psi_min_set_size: int = 1
    psi_max_requests: int | None = None
    psi_max_items: int | None = None
    psi_period_days: float = 1.0
    psi_count_epsilon: float | None = None
    approval_ttl_days: float = 7.0
    budget_period_days: float | None = None
    budget_family_jaccard: float = DEFAULT_THRESHOLD

    @property
    def query_delta(self) -> float:
        return self.delta_cap / 100.0


def _opt_int(ob: Mapping[str, Any], name: str) -> int | None:
    return int(ob[name]) if ob.get(name) is not None else None


def _opt_float(ob: Mapping[str, Any], name: str) -> float | None:
    return float(ob[name]) if ob.get(name) is not None else None


def limits_of(obligations: Mapping[str, Any], d: Defaults) -> Limits:
    ob = dict(obligations or {})
    reveal = str(ob.get("psi_reveal") or d.psi_reveal)
    return Limits(
        epsilon_cap=float(ob.get("epsilon_cap", d.epsilon_cap)),
        delta_cap=float(ob.get("delta_cap", d.delta_cap)),
        min_group_size=int(ob.get("min_group_size", d.min_group_size)),
        row_limit=_opt_int(ob, "row_limit"),
        psi_reveal=reveal if reveal in REVEALS else "count",
        mask_profile=ob.get("mask_profile"), watermark=bool(ob.get("watermark", True)),
        epsilon_min=float(ob.get("epsilon_min", d.epsilon_min)),
        psi_min_set_size=int(ob.get("psi_min_set_size", 1)),
        psi_max_requests=_opt_int(ob, "psi_max_requests"),
        psi_max_items=_opt_int(ob, "psi_max_items"),
        psi_period_days=float(ob.get("psi_period_days", d.psi_period_days)),
        psi_count_epsilon=_opt_float(ob, "psi_count_epsilon"),
        approval_ttl_days=float(ob.get("approval_ttl_days", d.approval_ttl_days)),
        budget_period_days=_opt_float(ob, "budget_period_days"),
        budget_family_jaccard=float(ob.get("budget_family_jaccard", DEFAULT_THRESHOLD)),
    )
