"""The policy area's service: ``PolicyService`` holds the active policy bundle, reloads it
safely and answers decisions; ``build_policy(container)`` builds the container's one.

The engine it serves (loading, validation, ``decide``, ``Decision``) is the
:mod:`quanguard.policy` package.

Invariants:
- There is always a valid active bundle — decision engine, masking profiles, alert rules
  and engine of one version (construction fails if any file of the directory is invalid).
- ``reload()`` builds a whole new bundle in a dry run (``build_bundle``) and swaps it in
  atomically only when every file validates; otherwise the previous version stays active
  and the problems are reported (and kept in ``last_problems`` until a reload succeeds).
- ``decide()`` notices changed files by checking (name, mtime, size) at most once per
  ``check_interval`` seconds, so a decision normally costs one dict lookup and a short scan.
- Every reload, manual or automatic, is logged with the old and new version and handed
  to the listeners registered with :meth:`on_reload` (the container audits it).
- Every decision is counted by effect in the service's metrics, when it has them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from desensitize.profiles import ProfileSet
from monitor import AlertEngine, AlertRules
from quanguard.policy.bundle import PolicyBundle, build_bundle, load_bundle
from quanguard.policy.engine import PolicySet, Trace
from quanguard.policy.errors import PolicyNotFound
from quanguard.policy.files import fingerprint, read_policy_files
from quanguard.policy.model import Decision, Problem, Resource, Subject

if TYPE_CHECKING:
    from quanguard.container import Container
    from quanguard.metrics import Metrics

_log = logging.getLogger("quanguard.policy")

# "peer": another process of the service announced a new version (quanguard.policy_sync).
Trigger = Literal["manual", "automatic", "peer"]

__all__ = ["PolicyService", "ReloadResult", "build_policy"]


@dataclass(frozen=True)
class ReloadResult:
    """One reload attempt. ``version`` is the version active afterwards (the previous one
    when the attempt failed); ``attempted`` the version hash of the files that were read."""

    ok: bool
    changed: bool
    version: str
    previous_version: str
    problems: tuple[Problem, ...] = ()
    trigger: Trigger = "manual"
    attempted: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "version": self.version,
            "previous_version": self.previous_version,
            "trigger": self.trigger,
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
        tz: str = "UTC",
        metrics: Metrics | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.metrics = metrics
        self._check_interval = check_interval
        self._clock = clock
        self._tz = tz
        self._lock = threading.Lock()
        self._listeners: list[Callable[[ReloadResult], None]] = []
        self._fingerprint = fingerprint(self.directory)
        self._bundle: PolicyBundle = load_bundle(self.directory, tz=tz)
        self._next_check = clock() + check_interval
        self.last_problems: tuple[Problem, ...] = ()

    @classmethod
    def load(cls, directory: Path, **kwargs: object) -> PolicyService:
        """Load ``directory``; raises PolicyInvalid (every problem) or PolicyNotFound."""
        return cls(Path(directory), **kwargs)  # type: ignore[arg-type]

    # -- the active bundle ---------------------------------------------------------------

    @property
    def bundle(self) -> PolicyBundle:
        self._maybe_reload()
        return self._bundle

    @property
    def active(self) -> PolicySet:
        return self.bundle.policy

    @property
    def version(self) -> str:
        return self.active.version

    @property
    def grade_order(self) -> list[str]:
        return list(self.active.grade_order)

    @property
    def masking(self) -> ProfileSet | None:
        """The masking profiles of the active version (None: no masking.yaml)."""
        return self.bundle.masking

    @property
    def alert_rules(self) -> AlertRules:
        """The alert rules of the active version (they reload with the rest)."""
        return self.bundle.alert_rules

    @property
    def alert_engine(self) -> AlertEngine:
        """The alert engine built for the active version's rules."""
        return self.bundle.alert_engine

    # -- reloading -----------------------------------------------------------------------

    def on_reload(self, listener: Callable[[ReloadResult], None]) -> None:
        """Call ``listener`` after every reload attempt (manual or automatic, ok or not).
        It runs outside the service's lock; its errors are logged, never raised."""
        self._listeners.append(listener)

    def reload(self, *, trigger: Trigger = "manual") -> ReloadResult:
        """Build a new bundle from the directory; keep the previous one when any file
        does not validate."""
        with self._lock:
            result = self._reload_locked(trigger)
        self._announce(result)
        return result

    def _reload_locked(self, trigger: Trigger) -> ReloadResult:
        previous = self._bundle.version
        probe = fingerprint(self.directory)
        try:
            if not self.directory.is_dir():
                raise PolicyNotFound(f"policy directory {self.directory} does not exist")
            files = read_policy_files(self.directory)
        except (PolicyNotFound, OSError) as exc:
            problem = Problem(str(self.directory), 1, f"cannot read policy files: {exc}")
            self.last_problems = (problem,)
            return ReloadResult(False, False, previous, previous, (problem,), trigger)
        bundle, problems = build_bundle(files, tz=self._tz)
        self._fingerprint = probe  # do not retry the same broken bytes every second
        if bundle is None:
            self.last_problems = tuple(problems)
            return ReloadResult(False, False, previous, previous, tuple(problems), trigger,
                                files.version)
        self._bundle = bundle
        self.last_problems = ()
        return ReloadResult(True, bundle.version != previous, bundle.version, previous, (),
                            trigger, bundle.version)

    def _announce(self, result: ReloadResult) -> None:
        if result.ok:
            _log.info("policy reload (%s): version %s -> %s%s", result.trigger,
                      result.previous_version[:12], result.version[:12],
                      "" if result.changed else " (unchanged)")
        else:
            _log.warning("policy reload (%s) refused; version %s stays active: %s%s",
                         result.trigger, result.previous_version[:12], result.problems[0],
                         f" (and {len(result.problems) - 1} more)"
                         if len(result.problems) > 1 else "")
        for listener in list(self._listeners):
            try:
                listener(result)
            except Exception:  # noqa: BLE001 - a listener must not break decisions
                _log.exception("policy reload listener failed")

    def _maybe_reload(self) -> None:
        now = self._clock()
        if now < self._next_check:
            return
        self._next_check = now + self._check_interval
        if fingerprint(self.directory) == self._fingerprint:
            return
        with self._lock:
            if fingerprint(self.directory) == self._fingerprint:
                return  # another thread reloaded these bytes meanwhile
            result = self._reload_locked("automatic")
        self._announce(result)

    # -- decisions -----------------------------------------------------------------------

    def decide(self, principal: Subject, action: str, resource: Resource | None = None) -> Decision:
        """See :meth:`PolicySet.decide`. Raises UnknownName for unknown role/action/grade."""
        decision = self.active.decide(principal, action, resource or Resource())
        if self.metrics is not None:
            self.metrics.decisions.labels(effect=str(decision.effect)).inc()
        return decision

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


def build_policy(container: Container) -> PolicyService:
    """Every policy file of one version: decisions (counted in the container's metrics),
    masking profiles, alert rules. Automatic reloads (files changed on disk) are audited as
    the service's own; on PostgreSQL every reload is announced to the service's other
    processes (``quanguard.policy_sync``)."""
    from quanguard.policy_sync import policy_sync
    from quanguard.usecases.policy import audit_automatic_reloads

    settings = container.settings
    service = PolicyService(Path(settings.policy_dir), tz=settings.tz, metrics=container.metrics,
                            check_interval=settings.policy_check_seconds)
    audit_automatic_reloads(container, service)
    policy_sync(container, service)  # PostgreSQL: announce reloads to the other workers
    return service
