"""The compiled policy set and its decision function.

Combining rule (ARCHITECTURE.md): default deny, deny overrides, fixed priority.

1. Candidates come from an index ``(role, action, grade) -> (deny rules, other rules)``
   built once at load time; each list is already in decision order.
2. The first deny candidate whose conditions hold decides ``deny`` — a deny overrides any
   allow or approval, whatever their priority.
3. Otherwise the first other candidate whose conditions hold decides. Order: priority
   (high first), then the stricter effect (approval_required before allow), then the
   order the rules were written in.
4. No candidate holds: ``deny`` with ``matched=False`` and ``rule_id=None``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass

from exchange.purposes import normalise_purpose
from quanguard.policy.errors import UnknownName
from quanguard.policy.model import Category, Decision, Grade, Resource, Rule, Subject
from quanguard.policy.vocab import ACTIONS, ROLES

__all__ = ["PolicySet", "Trace", "decision_order"]

_STRICTNESS = {"deny": 0, "approval_required": 1, "allow": 2}
_ACTION_SET = frozenset(ACTIONS)
_ROLE_SET = frozenset(ROLES)


def decision_order(rule: Rule) -> tuple[int, int, int]:
    """Sort key: the rule that sorts first among matching rules decides."""
    return (-rule.priority, _STRICTNESS[rule.effect], rule.order)


_Key = tuple[str, str, str | None]
_Pair = tuple[tuple[Rule, ...], tuple[Rule, ...]]
_Bucket = tuple[_Pair, dict[str, _Pair] | None]


def _pair(rules: Iterable[Rule]) -> _Pair:
    ordered = sorted(rules, key=decision_order)
    return (
        tuple(r for r in ordered if r.effect == "deny"),
        tuple(r for r in ordered if r.effect != "deny"),
    )


def _bucket(rules: list[Rule]) -> _Bucket:
    free = [r for r in rules if "orgs" not in dict(r.conditions)]
    by_org: dict[str, list[Rule]] = {}
    for rule in rules:
        for org in dict(rule.conditions).get("orgs", ()):
            by_org.setdefault(org, []).append(rule)
    if not by_org:
        return _pair(free), None
    return _pair(free), {org: _pair([*free, *listed]) for org, listed in by_org.items()}


# A condition that lists the values it accepts: what it names in a refusal, and the value.
_LISTED: dict[str, tuple[str, Callable[[Subject, Resource], str | None]]] = {
    "orgs": ("principal org", lambda subject, _resource: subject.org),
    "owner_orgs": ("owner", lambda _subject, resource: resource.owner_org),
    "datasets": ("dataset", lambda _subject, resource: resource.dataset),
    "purposes": ("purpose", lambda _subject, resource: resource.purpose),
}


def _listed(name: str, got: str | None, values: Collection[str]) -> bool:
    """Whether ``got`` is one of ``values``. Purposes are free text a consumer writes:
    both sides are compared in one written form (``营销 ``, ``营\u200b销`` are ``营销``),
    so another spelling cannot slip past a deny rule. The loader stores a rule's
    purposes in that form already; a Rule built in code is normalised here too."""
    if name != "purposes":
        return got in values
    wanted = normalise_purpose(got)
    return wanted is not None and any(normalise_purpose(v) == wanted for v in values)


def _conditions_hold(rule: Rule, subject: Subject, resource: Resource) -> str | None:
    """None when every condition holds, else why the first one does not."""
    for name, value in rule.conditions:
        if name == "same_org":
            owner = resource.owner_org
            if owner is None:
                return "same_org: the resource names no owner_org"
            if (subject.org == owner) is not value:
                return f"same_org: {value} but principal org {subject.org!r}, owner {owner!r}"
        elif name in _LISTED:
            label, attribute = _LISTED[name]
            got = attribute(subject, resource)
            if name == "purposes" and rule.effect == "deny" and normalise_purpose(got) is None:
                continue  # no purpose stated cannot rule out a forbidden one: the deny holds
            if not _listed(name, got, value):
                return f"{name}: {label} {got!r} not listed"
        else:  # the loader rejects unknown names; fail closed if one slips through
            return f"unknown condition {name!r}"
    return None


@dataclass(frozen=True)
class Trace:
    """One candidate considered by :meth:`PolicySet.explain`."""

    rule_id: str
    effect: str
    priority: int
    where: str
    holds: bool
    note: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class PolicySet:
    """An immutable, validated policy set. Build it with ``loader.load_policy_dir``."""

    def __init__(
        self,
        *,
        version: str,
        files: Iterable[str],
        grades: Iterable[Grade],
        categories: Iterable[Category],
        default_grade: str,
        rules: Iterable[Rule],
    ) -> None:
        self.version = version
        self.files = tuple(files)
        self.grades = tuple(grades)
        self.categories = tuple(categories)
        self.default_grade = default_grade
        self.rules = tuple(rules)
        self.grade_order = [g.id for g in self.grades]
        self._grade_rank = {g: i for i, g in enumerate(self.grade_order)}
        self._entity_category: dict[str, Category] = {
            entity: cat for cat in self.categories for entity in cat.entities
        }
        self._index = self._compile()

    # -- compilation -----------------------------------------------------------------------

    def _compile(self) -> dict[_Key, _Bucket]:
        """``(role, action, grade) -> (default pair, {org: pair})`` where a pair is
        (deny rules, other rules) in decision order. Rules with an ``orgs`` condition are
        candidates only under the orgs they list, so a set of many per-org rules stays
        cheap to decide (the condition is still checked)."""
        buckets: dict[_Key, list[Rule]] = {}
        grade_keys: list[str | None] = [*self.grade_order, None]
        for rule in self.rules:
            grades = grade_keys if rule.grades is None else sorted(rule.grades)
            for role in rule.roles:
                for action in rule.actions:
                    for grade in grades:
                        buckets.setdefault((role, action, grade), []).append(rule)
        return {key: _bucket(rules) for key, rules in buckets.items()}

    # -- decisions -------------------------------------------------------------------------

    def _check(self, subject: Subject, action: str, resource: Resource) -> None:
        if subject.role not in _ROLE_SET:
            raise UnknownName("role", subject.role, ROLES)
        if action not in _ACTION_SET:
            raise UnknownName("action", action, ACTIONS)
        if resource.grade is not None and resource.grade not in self._grade_rank:
            raise UnknownName("grade", resource.grade, self.grade_order)

    def decide(self, subject: Subject, action: str, resource: Resource) -> Decision:
        """Decide ``action`` by ``subject`` on ``resource``.

        Raises :class:`UnknownName` for a role, action or grade the policy does not know
        (a typo must not read as an ordinary deny)."""
        self._check(subject, action, resource)
        found = self._index.get((subject.role, action, resource.grade))
        if found is not None:
            denies, others = found[1].get(subject.org, found[0]) if found[1] else found[0]
            for rule in denies:
                if not rule.conditions or _conditions_hold(rule, subject, resource) is None:
                    return self._decision(rule)
            for rule in others:
                if not rule.conditions or _conditions_hold(rule, subject, resource) is None:
                    return self._decision(rule)
        return self._default(subject, action, resource)

    def _decision(self, rule: Rule) -> Decision:
        verb = {"allow": "allowed", "deny": "denied", "approval_required": "needs approval"}
        text = f"{verb[rule.effect]} by rule {rule.id} (priority {rule.priority})"
        if rule.description:
            text = f"{text}: {rule.description}"
        return Decision(rule.effect, rule.id, self.version, dict(rule.obligations), text, True)

    def _default(self, subject: Subject, action: str, resource: Resource) -> Decision:
        grade = resource.grade if resource.grade is not None else "-"
        text = f"no rule matched role={subject.role} action={action} grade={grade}; default deny"
        return Decision("deny", None, self.version, {}, text, False)

    def explain(
        self, subject: Subject, action: str, resource: Resource
    ) -> tuple[Decision, list[Trace]]:
        """The decision plus every candidate rule in evaluation order, with why it did or
        did not hold. Rules for other roles, actions, grades (or orgs, for rules with an
        ``orgs`` condition) are not candidates."""
        self._check(subject, action, resource)
        traces: list[Trace] = []
        denies: tuple[Rule, ...] = ()
        others: tuple[Rule, ...] = ()
        found = self._index.get((subject.role, action, resource.grade))
        if found is not None:
            denies, others = found[1].get(subject.org, found[0]) if found[1] else found[0]
        for rule in (*denies, *others):
            why = _conditions_hold(rule, subject, resource)
            note = "conditions hold" if why is None else why
            if not rule.conditions:
                note = "no conditions"
            traces.append(Trace(rule.id, rule.effect, rule.priority, rule.where, why is None, note))
        return self.decide(subject, action, resource), traces

    # -- grading helpers ---------------------------------------------------------------------

    def entity_category(self, entity: str) -> str | None:
        cat = self._entity_category.get(entity)
        return cat.id if cat is not None else None

    def entity_grade(self, entity: str) -> str:
        """The grade of an entity via its category; ``default_grade`` for entities the
        grading file does not list (unknown kinds are treated strictly, 从严)."""
        cat = self._entity_category.get(entity)
        return cat.grade if cat is not None else self.default_grade

    def entity_grades(self) -> Mapping[str, str]:
        return {entity: cat.grade for entity, cat in self._entity_category.items()}

    def grade_rank(self, grade: str) -> int:
        try:
            return self._grade_rank[grade]
        except KeyError:
            raise UnknownName("grade", grade, self.grade_order) from None

    def max_grade(self, grades: Iterable[str]) -> str:
        """The highest of ``grades`` (就高从严: mixed data takes its highest grade).
        An empty iterable gives the lowest grade. Unknown names raise UnknownName."""
        best = 0
        for grade in grades:
            best = max(best, self.grade_rank(grade))
        return self.grade_order[best]
