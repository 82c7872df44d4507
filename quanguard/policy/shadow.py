"""Whole-set checks on rules: unreachable (shadowed) rules and grades that never leave."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from quanguard.policy.engine import decision_order
from quanguard.policy.model import Grade, Problem, Rule
from quanguard.policy.vocab import RELEASING_ACTIONS

__all__ = ["find_never_leaves", "find_unreachable"]


def _condition_covers(wide: Any, narrow: Any) -> bool:
    if isinstance(wide, bool):
        return wide is narrow
    return bool(wide >= narrow)


def covers(wide: Rule, narrow: Rule) -> bool:
    """True when every request ``narrow`` matches is also matched by ``wide``."""
    if not (wide.roles >= narrow.roles and wide.actions >= narrow.actions):
        return False
    if wide.grades is not None and (narrow.grades is None or not wide.grades >= narrow.grades):
        return False
    narrow_conditions = dict(narrow.conditions)
    for name, value in wide.conditions:
        if name not in narrow_conditions:
            return False
        if not _condition_covers(value, narrow_conditions[name]):
            return False
    return True


def _wins(first: Rule, second: Rule, keys: dict[str, tuple[int, int, int]]) -> bool:
    """Whenever both match, ``first`` decides instead of ``second``."""
    if first.effect == "deny" and second.effect != "deny":
        return True  # deny overrides
    if first.effect != "deny" and second.effect == "deny":
        return False
    return keys[first.id] < keys[second.id]


def find_unreachable(rules: Iterable[Rule]) -> list[Problem]:
    """A rule is unreachable when another rule matches everything it matches and always
    takes precedence over it; it could be deleted without changing any decision."""
    rules = list(rules)
    by_pair: dict[tuple[str, str], list[Rule]] = {}
    for rule in rules:
        for role in rule.roles:
            for action in rule.actions:
                by_pair.setdefault((role, action), []).append(rule)
    keys = {rule.id: decision_order(rule) for rule in rules}
    for bucket in by_pair.values():
        bucket.sort(key=lambda r: keys[r.id])
    problems = []
    for rule in rules:
        # a shadowing rule must cover every (role, action) pair of this rule; the
        # smallest bucket is the cheapest place to look for it
        bucket = min((by_pair[(r, a)] for r in rule.roles for a in rule.actions), key=len)
        for other in bucket:
            if other is rule or not _wins(other, rule, keys) or not covers(other, rule):
                continue
            problems.append(
                Problem(
                    rule.path,
                    rule.line,
                    f"rule '{rule.id}' is unreachable: rule '{other.id}' ({other.where}, "
                    f"priority {other.priority}, {other.effect}) matches everything it "
                    "matches and takes precedence",
                )
            )
            break
    return problems


def find_never_leaves(rules: Iterable[Rule], grades: Iterable[Grade]) -> list[Problem]:
    """A non-deny rule may not name a ``never_leaves`` grade for a releasing action."""
    sealed = {g.id for g in grades if g.never_leaves}
    problems = []
    for rule in rules:
        if rule.effect == "deny" or rule.grades is None:
            continue
        bad_grades = sorted(rule.grades & sealed)
        bad_actions = sorted(rule.actions & RELEASING_ACTIONS)
        if bad_grades and bad_actions:
            problems.append(
                Problem(
                    rule.path,
                    rule.line,
                    f"rule '{rule.id}' would let grade {', '.join(bad_grades)} leave "
                    f"({', '.join(bad_actions)}); that grade is marked never_leaves",
                )
            )
    return problems
