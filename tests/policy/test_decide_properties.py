"""Properties of decide() on random rule sets, checked against a brute-force reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quanguard.policy import PolicySet, Resource, Rule
from quanguard.policy.engine import _conditions_hold
from quanguard.policy.files import version_of
from quanguard.policy.model import Effect, Grade

GRADES = ["L1", "L2", "L3", "L4", "core"]
ROLES = ["admin", "provider", "consumer"]
ACTIONS = ["read_raw", "aggregate", "export"]
ORGS = ["甲局", "乙局", "丙行"]
EFFECTS: list[Effect] = ["allow", "deny", "approval_required"]


@dataclass(frozen=True)
class Who:
    role: str
    org: str


def _subset(items: list[str]) -> st.SearchStrategy[frozenset[str]]:
    return st.frozensets(st.sampled_from(items), min_size=1)


@st.composite
def rules(draw: st.DrawFn, index: int) -> Rule:
    conditions: list[tuple[str, Any]] = []
    if draw(st.booleans()):
        conditions.append(("same_org", draw(st.booleans())))
    if draw(st.booleans()):
        conditions.append(("orgs", draw(_subset(ORGS))))
    effect = draw(st.sampled_from(EFFECTS))
    return Rule(
        id=f"r{index}",
        priority=draw(st.integers(0, 3)),
        roles=draw(_subset(ROLES)),
        actions=draw(_subset(ACTIONS)),
        grades=draw(st.none() | _subset(GRADES)),
        effect=effect,
        obligations={} if effect == "deny" else {"row_limit": index + 1},
        conditions=tuple(sorted(conditions, key=lambda kv: kv[0])),
        order=index,
    )


@st.composite
def policy_sets(draw: st.DrawFn) -> PolicySet:
    n = draw(st.integers(0, 12))
    return PolicySet(
        version="v",
        files=(),
        grades=[Grade(g, g) for g in GRADES],
        categories=[],
        default_grade="L3",
        rules=[draw(rules(i)) for i in range(n)],
    )


Request = tuple[Who, str, Resource]
# the policy strategies build whole rule sets: slow examples are expected, not a fault
_SLOW_OK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

requests = st.tuples(
    st.builds(Who, role=st.sampled_from(ROLES), org=st.sampled_from(ORGS)),
    st.sampled_from(ACTIONS),
    st.builds(
        Resource,
        grade=st.none() | st.sampled_from(GRADES),
        owner_org=st.none() | st.sampled_from(ORGS),
    ),
)


def _matches(rule: Rule, who: Who, action: str, resource: Resource) -> bool:
    if who.role not in rule.roles or action not in rule.actions:
        return False
    if rule.grades is not None and resource.grade not in rule.grades:
        return False
    return _conditions_hold(rule, who, resource) is None


def _reference(policy: PolicySet, who: Who, action: str, resource: Resource) -> Rule | None:
    """Deny overrides; otherwise highest priority, approval before allow, then file order."""
    hits = [r for r in policy.rules if _matches(r, who, action, resource)]
    denies = [r for r in hits if r.effect == "deny"]
    pool = denies or hits
    strict = {"deny": 0, "approval_required": 1, "allow": 2}
    return min(pool, key=lambda r: (-r.priority, strict[r.effect], r.order), default=None)


@settings(_SLOW_OK, max_examples=120)
@given(policy_sets(), requests)
def test_decide_agrees_with_reference(policy: PolicySet, request: Request) -> None:
    who, action, resource = request
    decision = policy.decide(who, action, resource)
    expected = _reference(policy, who, action, resource)
    if expected is None:
        # default deny: distinguishable from a deny by a rule
        assert (decision.effect, decision.rule_id, decision.matched) == ("deny", None, False)
        assert decision.obligations == {}
    else:
        assert decision.matched and decision.rule_id == expected.id
        assert decision.effect == expected.effect
        assert decision.obligations == expected.obligations


@settings(_SLOW_OK, max_examples=60)
@given(policy_sets(), requests)
def test_deny_overrides(policy: PolicySet, request: Request) -> None:
    who, action, resource = request
    any_deny = any(r.effect == "deny" and _matches(r, who, action, resource) for r in policy.rules)
    decision = policy.decide(who, action, resource)
    if any_deny:
        assert decision.effect == "deny" and decision.matched
    if decision.effect in ("allow", "approval_required"):
        assert not any_deny


@settings(_SLOW_OK, max_examples=60)
@given(policy_sets(), requests)
def test_deterministic_and_explain_agrees(policy: PolicySet, request: Request) -> None:
    who, action, resource = request
    first = policy.decide(who, action, resource)
    assert policy.decide(who, action, resource) == first
    decision, traces = policy.explain(who, action, resource)
    assert decision == first
    holding = [t.rule_id for t in traces if t.holds]
    assert (first.rule_id in holding) if first.matched else holding == []
    # the caller may scribble on its obligations without touching the policy
    first.obligations["row_limit"] = -1
    assert policy.decide(who, action, resource).obligations.get("row_limit") != -1


files = st.lists(
    st.tuples(st.sampled_from(["a.yaml", "b.yaml", "roles.yaml"]), st.binary(max_size=40)),
    max_size=3,
    unique_by=lambda t: t[0],
)


@settings(_SLOW_OK, max_examples=150)
@given(files, files)
def test_version_changes_iff_bytes_change(
    a: list[tuple[str, bytes]], b: list[tuple[str, bytes]]
) -> None:
    same = sorted(a) == sorted(b)
    assert (version_of(tuple(a)) == version_of(tuple(b))) is same


def test_version_ignores_listing_order_but_not_file_boundaries() -> None:
    one = (("a.yaml", b"xy"), ("b.yaml", b"z"))
    assert version_of(one) == version_of(tuple(reversed(one)))
    assert version_of(one) != version_of((("a.yaml", b"x"), ("b.yaml", b"yz")))


@settings(_SLOW_OK, max_examples=30)
@given(policy_sets())
def test_rules_reported_unreachable_never_decide(policy: PolicySet) -> None:
    from itertools import product

    from quanguard.policy.shadow import find_unreachable

    flagged = {p.message.split("'")[1] for p in find_unreachable(policy.rules)}
    deciding = set()
    for role, action, grade, org, owner in product(
        ROLES, ACTIONS, [None, *GRADES], ORGS, [None, *ORGS]
    ):
        decision = policy.decide(Who(role, org), action, Resource(grade=grade, owner_org=owner))
        deciding.add(decision.rule_id)
    assert not flagged & deciding
