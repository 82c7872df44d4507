"""Plain values of the policy engine: requests, decisions, rules, problems."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "Category",
    "Decision",
    "Grade",
    "Problem",
    "Resource",
    "Rule",
    "Subject",
    "SubjectRef",
]

Effect = Literal["allow", "deny", "approval_required"]


class Subject(Protocol):
    """Who asks: anything with a role and an org (``quanguard.auth.Principal`` fits)."""

    @property
    def role(self) -> str: ...

    @property
    def org(self) -> str: ...


@dataclass(frozen=True)
class SubjectRef:
    """A subject given by value: a policy test case's principal, or the one a decide request
    from another platform asks about (not necessarily the caller). ``id`` only goes into
    the record."""

    role: str
    org: str
    id: str = "-"


@dataclass(frozen=True)
class Resource:
    """What is asked about. ``grade`` None means the action concerns no graded data."""

    grade: str | None = None
    dataset: str | None = None
    owner_org: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class Decision:
    """The answer. ``matched`` is False (and ``rule_id`` None) when no rule matched:
    the default deny, distinguishable from a deny by a named rule."""

    effect: Effect
    rule_id: str | None
    policy_version: str
    obligations: dict[str, object]
    reason: str
    matched: bool

    @property
    def allowed(self) -> bool:
        return self.effect == "allow"

    @property
    def mask_profile(self) -> str | None:
        """The ``mask_profile`` obligation (validated as a string by the loader), if any."""
        value = self.obligations.get("mask_profile")
        return None if value is None else str(value)

    def to_dict(self) -> dict[str, object]:
        return {
            "effect": self.effect,
            "rule_id": self.rule_id,
            "policy_version": self.policy_version,
            "obligations": dict(self.obligations),
            "reason": self.reason,
            "matched": self.matched,
        }


@dataclass(frozen=True, order=True)
class Problem:
    """One validation finding, printed as ``file:line: message`` (line is 1-based)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.path, "line": self.line, "message": self.message}


@dataclass(frozen=True)
class Grade:
    id: str
    name: str
    description: str = ""
    never_leaves: bool = False


@dataclass(frozen=True)
class Category:
    """A grading category; ``path`` and ``entity_lines`` say where each entity is written."""

    id: str
    grade: str
    entities: tuple[str, ...]
    description: str = ""
    path: str = ""
    entity_lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rule:
    """A compiled rule. ``grades`` None matches any grade (and requests without one);
    ``conditions`` is a sorted tuple of (name, value) pairs, see ``vocab.CONDITIONS``."""

    id: str
    priority: int
    roles: frozenset[str]
    actions: frozenset[str]
    grades: frozenset[str] | None
    effect: Effect
    obligations: dict[str, object] = field(default_factory=dict)
    conditions: tuple[tuple[str, Any], ...] = ()
    description: str = ""
    path: str = ""
    line: int = 0
    order: int = 0

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"
