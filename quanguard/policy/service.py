"""``PolicyService``: holds the active policy set, reloads it safely, answers decisions.

Invariants:
- There is always a valid active set (construction fails if the directory is invalid).
- ``reload()`` swaps the set atomically only when the new files validate; otherwise the
  previous version stays active and the problems are reported (and kept in
  ``last_problems`` until a reload succeeds).
- ``decide()`` notices changed files by checking (name, mtime, size) at most once per
  ``check_interval`` seconds, so a decision normally costs one dict lookup and a short scan.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from quanguard.policy.engine import PolicySet, Trace
from quanguard.policy.errors import PolicyInvalid, PolicyNotFound
from quanguard.policy.files import fingerprint
from quanguard.policy.loader import load_policy_dir
from quanguard.policy.model import Decision, Problem, Resource, Subject

__all__ = ["PolicyService", "ReloadResult"]


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    changed: bool
    version: str
    previous_version: str
    problems: tuple[Problem, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "version": self.version,
            "previous_version": self.previous_version,
            "problems": [str(p) for p in self.problems],
        }


class PolicyService:
    """The service's policy decision point for one policy directory."""

    def __init__(
        self,
        directory: Path,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self._check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._fingerprint = fingerprint(self.directory)
        self._active: PolicySet = load_policy_dir(self.directory)
        self._next_check = clock() + check_interval
        self.last_problems: tuple[Problem, ...] = ()

    @classmethod
    def load(cls, directory: Path, **kwargs: object) -> PolicyService:
        """Load ``directory``; raises PolicyInvalid (every problem) or PolicyNotFound."""
        return cls(Path(directory), **kwargs)  # type: ignore[arg-type]

    # -- the active set ------------------------------------------------------------------

    @property
    def active(self) -> PolicySet:
        self._maybe_reload()
        return self._active

    @property
    def version(self) -> str:
        return self.active.version

    @property
    def grade_order(self) -> list[str]:
        return list(self.active.grade_order)

    # -- reloading -----------------------------------------------------------------------

    def reload(self) -> ReloadResult:
        """Load the directory again; keep the previous set when it does not validate."""
        with self._lock:
            previous = self._active.version
            probe = fingerprint(self.directory)
            try:
                policy = load_policy_dir(self.directory)
            except PolicyInvalid as exc:
                self._fingerprint = probe  # do not retry the same broken bytes every second
                self.last_problems = exc.problems
                return ReloadResult(False, False, previous, previous, exc.problems)
            except (PolicyNotFound, OSError) as exc:
                problem = Problem(str(self.directory), 1, f"cannot read policy files: {exc}")
                self.last_problems = (problem,)
                return ReloadResult(False, False, previous, previous, (problem,))
            self._fingerprint = probe
            self._active = policy
            self.last_problems = ()
            return ReloadResult(True, policy.version != previous, policy.version, previous)

    def _maybe_reload(self) -> None:
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._check_interval
        if fingerprint(self.directory) != self._fingerprint:
            self.reload()

    # -- decisions -----------------------------------------------------------------------

    def decide(self, principal: Subject, action: str, resource: Resource | None = None) -> Decision:
        """See :meth:`PolicySet.decide`. Raises UnknownName for unknown role/action/grade."""
        return self.active.decide(principal, action, resource or Resource())

    def explain(
        self, principal: Subject, action: str, resource: Resource | None = None
    ) -> tuple[Decision, list[Trace]]:
        return self.active.explain(principal, action, resource or Resource())

    # -- grading helpers -----------------------------------------------------------------

    def entity_grade(self, entity: str) -> str:
        return self.active.entity_grade(entity)

    def entity_category(self, entity: str) -> str | None:
        return self.active.entity_category(entity)

    def entity_grades(self) -> dict[str, str]:
        return dict(self.active.entity_grades())

    def max_grade(self, grades: Iterable[str]) -> str:
        return self.active.max_grade(grades)

    def grade_rank(self, grade: str) -> int:
        return self.active.grade_rank(grade)
