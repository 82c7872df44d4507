"""Policy use cases: local checks for the CLI, and the decision point for other platforms.

Local (no database): :func:`check`, :func:`run_tests`, :func:`explain`.
Service: :func:`info`, :func:`decide_for`, :func:`reload` — permission through the one
gate (``quanguard.gate.authorize``), and the last two record an audit event. Automatic
reloads (files changed on disk) are audited by :func:`audit_automatic_reloads`, which
``build_policy`` (``quanguard.services.policy``) wires to the policy service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from quanguard.config import load_settings
from quanguard.errors import InvalidInput
from quanguard.gate import RequestContext, authorize, origin
from quanguard.policy import (
    CaseResult,
    Decision,
    PolicyNotFound,
    Problem,
    Resource,
    SubjectRef,
    Trace,
    check_policy_dir,
    load_cases,
    load_policy_dir,
    run_cases,
)
from quanguard.policy.files import read_policy_files
from quanguard.policy.loader import build_policy_set
from quanguard.policy.vocab import ROLES

if TYPE_CHECKING:
    from quanguard.auth import Principal
    from quanguard.container import Container
    from quanguard.services.policy import PolicyService, ReloadResult

__all__ = [
    "SERVICE_ACTOR",
    "CheckReport",
    "Explanation",
    "TestRun",
    "audit_automatic_reloads",
    "check",
    "decide_for",
    "explain",
    "info",
    "reload",
    "resolve_dir",
    "run_tests",
]


def resolve_dir(directory: Path | None) -> Path:
    """``directory``, else the configured ``QUANGUARD_POLICY_DIR`` (default ./policies)."""
    if directory is not None:
        return Path(directory)
    try:
        return Path(load_settings().policy_dir)
    except Exception as exc:  # pydantic ValidationError: a wrong QUANGUARD_* value
        raise InvalidInput(f"bad configuration: {str(exc).splitlines()[0]}") from exc


@dataclass(frozen=True)
class CheckReport:
    directory: Path
    problems: tuple[Problem, ...]
    version: str
    files: tuple[str, ...]
    rules: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "directory": str(self.directory),
            "version": self.version,
            "files": list(self.files),
            "rules": self.rules,
            "problems": [p.to_dict() for p in self.problems],
        }


def check(directory: Path | None) -> CheckReport:
    """Every problem of the policy directory (own files, other areas' files, case files)."""
    path = resolve_dir(directory)
    problems = check_policy_dir(path)
    files = read_policy_files(path)
    policy, _ = build_policy_set(files)
    rules = len(policy.rules) if policy is not None else 0
    return CheckReport(path, tuple(problems), files.version, files.names, rules)


@dataclass(frozen=True)
class TestRun:
    directory: Path
    problems: tuple[Problem, ...]
    results: tuple[CaseResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.results) and all(r.passed for r in self.results)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "directory": str(self.directory),
            "problems": [p.to_dict() for p in self.problems],
            "passed": sum(r.passed for r in self.results),
            "total": len(self.results),
            "cases": [
                {
                    "name": r.case.name,
                    "where": r.case.where,
                    "passed": r.passed,
                    "expected": {"effect": r.case.effect, "rule": r.case.rule},
                    "decision": r.decision.to_dict(),
                    "failures": list(r.failures),
                }
                for r in self.results
            ],
        }


def run_tests(directory: Path | None) -> TestRun:
    """Load the policy and run ``DIR/tests/*.yaml``; invalid policy → problems, no results."""
    path = resolve_dir(directory)
    if not path.is_dir():
        raise PolicyNotFound(f"policy directory {path} does not exist")
    policy, problems = build_policy_set(read_policy_files(path))
    if policy is None:
        return TestRun(path, tuple(problems))
    cases, case_problems = load_cases(path / "tests", policy)
    return TestRun(path, tuple(case_problems), tuple(run_cases(policy, cases)))


@dataclass(frozen=True)
class Explanation:
    """The decision for one request and every candidate rule, in evaluation order."""

    subject: SubjectRef
    action: str
    resource: Resource
    decision: Decision
    candidates: tuple[Trace, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "request": {
                "principal": {"role": self.subject.role, "org": self.subject.org},
                "action": self.action,
                "resource": {k: v for k, v in vars(self.resource).items() if v is not None},
            },
            "decision": self.decision.to_dict(),
            "candidates": [t.to_dict() for t in self.candidates],
        }


def explain(
    directory: Path | None,
    *,
    role: str,
    org: str,
    action: str,
    grade: str | None = None,
    owner_org: str | None = None,
    dataset: str | None = None,
    purpose: str | None = None,
) -> Explanation:
    """The decision for one request and every candidate rule."""
    policy = load_policy_dir(resolve_dir(directory))
    resource = Resource(grade=grade, dataset=dataset, owner_org=owner_org, purpose=purpose)
    subject = SubjectRef(role=role, org=org)
    decision, traces = policy.explain(subject, action, resource)
    return Explanation(subject, action, resource, decision, tuple(traces))


# -- service side -------------------------------------------------------------------------


def info(container: Container) -> dict[str, object]:
    """What policy is active: version, files, grades, rule count, the alert rules and masking
    profiles of the same version, pending reload problems."""
    service = container.policy
    active = service.active
    return {
        "version": active.version,
        "directory": str(service.directory),
        "files": list(active.files),
        "grades": [
            {"id": g.id, "name": g.name, "never_leaves": g.never_leaves} for g in active.grades
        ],
        "rules": len(active.rules),
        "alert_rules": [rule.id for rule in service.alert_rules],
        "masking_profiles": list(service.masking.names) if service.masking is not None else [],
        "roles": list(ROLES),
        "last_reload_problems": [str(p) for p in service.last_problems],
    }


def decide_for(
    container: Container,
    caller: Principal,
    subject: SubjectRef,
    action: str,
    resource: Resource,
    *,
    ctx: RequestContext | None = None,
) -> Decision:
    """Decide for another platform and record who asked what, and the answer."""
    authorize(container, caller, "policy_decide", None, ctx)
    decision: Decision = container.policy.decide(subject, action, resource)
    with container.unit_of_work() as session:
        container.audit.record(
            session,
            actor=caller,
            action="policy_decide",
            dataset=resource.dataset,
            grade=resource.grade,
            purpose=resource.purpose,
            decision=decision,
            **origin(ctx),
            labels={
                "subject_role": subject.role,
                "subject_org": subject.org,
                "subject_id": subject.id,
                "asked_action": action,
                "owner_org": resource.owner_org or "",
            },
        )
    return decision


def _reload_labels(result: ReloadResult) -> dict[str, str]:
    labels = {
        "trigger": result.trigger,
        "version": result.version,
        "previous_version": result.previous_version,
        "problems": str(len(result.problems)),
    }
    if result.attempted is not None:
        labels["attempted_version"] = result.attempted
    if result.problems:
        labels["first_problem"] = str(result.problems[0])[:500]
    return labels


def reload(
    container: Container, caller: Principal, *, ctx: RequestContext | None = None
) -> dict[str, object]:
    """Reload every policy file (officers); a failing reload keeps the previous version
    of all of them (and says why). Recorded with the old and new version either way.

    Raises Forbidden (recorded by the gate) for a caller policy does not allow, and
    InvalidInput listing every problem when the new files do not validate."""
    decision = authorize(container, caller, "policy_admin", None, ctx, audit_action="policy_reload")
    result: ReloadResult = container.policy.reload(trigger="manual")
    with container.unit_of_work() as session:
        container.audit.record(
            session,
            actor=caller,
            action="policy_reload",
            decision=decision,
            outcome="success" if result.ok else "failure",
            **origin(ctx),
            labels=_reload_labels(result),
        )
    if not result.ok:
        raise InvalidInput(
            f"policy reload failed; version {result.previous_version[:12]} stays active: "
            f"{result.problems[0]}",
            problems=[str(p) for p in result.problems],
            active_version=result.previous_version,
        )
    return result.to_dict()


@dataclass(frozen=True)
class _ServiceActor:
    """The service itself, as the actor of what it does on its own (automatic reloads)."""

    id: str = "quanguard"
    name: str = "quanguard"
    role: str = "service"
    org: str = "quanguard"


SERVICE_ACTOR = _ServiceActor()
_log = logging.getLogger("quanguard.policy")


def _process(container: Container) -> str:
    """Which process of the service reloaded (several workers each reload on their own)."""
    sync = container._policy_sync  # set by quanguard.policy_sync on PostgreSQL
    return sync.instance if sync is not None else f"{socket.gethostname()}:{os.getpid()}"


#: Seconds between attempts to record an automatic reload while the store refuses writes
#: (the first; doubled up to :data:`RELOAD_RETRY_MAX_S`).
RELOAD_RETRY_S = 1.0
RELOAD_RETRY_MAX_S = 30.0


def audit_automatic_reloads(container: Container, service: PolicyService) -> None:
    """Record every automatic reload (files changed on disk) and every reload that followed
    another worker's announcement (trigger ``peer``, see ``quanguard.policy_sync``) as a
    ``policy_reload`` event of the service, with the old and new version.

    The reload happens inside some request's decision, possibly while that request holds
    a write transaction, so the event is written from a thread of its own (it waits for
    the writer, retrying while the store is busy). A new version is in force from the
    reload on, so its event is not given up: while the store refuses the write (down, a
    full disk) the thread logs a warning and tries again, less and less often, until it
    is written; the container makes one last attempt for each when it closes, and logs an
    error for any still not written. Manual reloads are recorded by :func:`reload` with
    the caller."""
    from quanguard.usecases.audit import with_retry

    pending: list[threading.Thread] = []
    closing = threading.Event()

    def write(result: ReloadResult) -> None:
        def tx() -> int:
            with container.unit_of_work() as session:
                return int(container.audit.record(
                    session, actor=SERVICE_ACTOR, action="policy_reload",
                    outcome="success" if result.ok else "failure",
                    labels={**_reload_labels(result), "process": _process(container)},
                ))
        what = f"{result.previous_version[:12]} -> {(result.attempted or '?')[:12]}"
        delay = RELOAD_RETRY_S
        while True:
            last = closing.is_set()
            try:
                with_retry(tx, attempts=8)
                return
            except Exception:  # noqa: BLE001 - retried; the reload itself stands
                if last:
                    _log.exception("automatic policy reload %s was never recorded in the "
                                   "audit trail: the store refused it until the service "
                                   "stopped", what)
                    return
                _log.warning("automatic policy reload %s not recorded yet (the audit store "
                             "refused the write); trying again in %.0f s", what, delay,
                             exc_info=True)
            closing.wait(delay)
            delay = min(delay * 2, RELOAD_RETRY_MAX_S)

    def listener(result: ReloadResult) -> None:
        if result.trigger == "manual":
            return  # recorded by reload() with its caller
        thread = threading.Thread(target=write, args=(result,), name="policy-reload-audit",
                                  daemon=True)
        pending.append(thread)
        thread.start()

    def join() -> None:
        closing.set()  # each writer makes its last attempt now
        for thread in pending:
            thread.join(timeout=60)

    service.on_reload(listener)
    container.on_close(join)
