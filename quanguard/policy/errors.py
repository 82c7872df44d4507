"""Errors of the policy engine.

    PolicyError (kind="invalid")
    ├── PolicyInvalid     the policy files do not validate; ``.problems`` lists every
    │                     ``file:line: message`` found (all of them, not just the first)
    ├── UnknownName       a request names a role, action or grade the policy does not know
    └── PolicyNotFound    (kind="not_found") the policy directory does not exist

Every class carries ``kind`` so the HTTP and CLI borders translate it without a handler.
"""

from __future__ import annotations

from collections.abc import Iterable

from quanguard.policy.model import Problem

__all__ = ["PolicyError", "PolicyInvalid", "PolicyNotFound", "UnknownName"]


class PolicyError(Exception):
    """Base of the policy engine's errors."""

    kind = "invalid"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class PolicyInvalid(PolicyError):
    """The policy set failed validation; nothing of it was applied."""

    kind = "invalid"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        first = str(self.problems[0]) if self.problems else "policy set is invalid"
        more = len(self.problems) - 1
        message = first if more <= 0 else f"{first} (and {more} more problem(s))"
        super().__init__(message, problems=[str(p) for p in self.problems])


class UnknownName(PolicyError):
    """A decision request names something the policy does not define."""

    kind = "invalid"

    def __init__(self, what: str, name: object, known: Iterable[str]) -> None:
        self.what = what
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"unknown {what} {name!r} (known: {' '.join(self.known)})",
            field=what,
        )


class PolicyNotFound(PolicyError):
    """The policy directory (or a required file in it) does not exist."""

    kind = "not_found"
