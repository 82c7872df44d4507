"""Policy use cases: local checks for the CLI, and the decision point for other platforms.

Local (no database): :func:`check`, :func:`run_tests`, :func:`explain`.
Service: :func:`info`, :func:`decide_for`, :func:`reload` — the last two record an audit
event in the caller's transaction when the audit trail is wired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quanguard.config import load_settings
from quanguard.errors import InvalidInput
from quanguard.policy import (
    CaseResult,
    Decision,
    PolicyNotFound,
    Problem,
    Resource,
    check_policy_dir,
    load_cases,
    load_policy_dir,
    run_cases,
)
from quanguard.policy.files import read_policy_files
from quanguard.policy.loader import build_policy_set
from quanguard.policy.service import ReloadResult
from quanguard.policy.vocab import ROLES

__all__ = [
    "CheckReport",
    "Subject",
    "TestRun",
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

    def to_dict(self) -> dict[str, Any]:
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

    def to_dict(self) -> dict[str, Any]:
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
class Subject:
    """The principal a decision is asked about (not necessarily the caller)."""

    role: str
    org: str
    id: str = "-"


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
) -> dict[str, Any]:
    """The decision for one request and every candidate rule, as plain data."""
    policy = load_policy_dir(resolve_dir(directory))
    resource = Resource(grade=grade, dataset=dataset, owner_org=owner_org, purpose=purpose)
    decision, traces = policy.explain(Subject(role=role, org=org), action, resource)
    return {
        "request": {
            "principal": {"role": role, "org": org},
            "action": action,
            "resource": {k: v for k, v in vars(resource).items() if v is not None},
        },
        "decision": decision.to_dict(),
        "candidates": [t.to_dict() for t in traces],
    }


# -- service side -------------------------------------------------------------------------


def info(container: Any) -> dict[str, Any]:
    """What policy is active: version, files, grades, rule count, pending reload problems."""
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
        "roles": list(ROLES),
        "last_reload_problems": [str(p) for p in service.last_problems],
    }


def _audit(container: Any) -> Any | None:
    try:
        return container.audit
    except ImportError:  # the audit trail has not landed in this build
        return None


def decide_for(
    container: Any,
    caller: Any,
    subject: Subject,
    action: str,
    resource: Resource,
    *,
    request_id: str | None = None,
    source_ip: str | None = None,
) -> Decision:
    """Decide for another platform and record who asked what, and the answer."""
    decision: Decision = container.policy.decide(subject, action, resource)
    audit = _audit(container)
    if audit is not None:
        with container.session() as session, session.begin():
            audit.record(
                session,
                actor=caller,
                action="policy_decide",
                dataset=resource.dataset,
                grade=resource.grade,
                purpose=resource.purpose,
                decision=decision,
                source_ip=source_ip,
                request_id=request_id,
                labels={
                    "subject_role": subject.role,
                    "subject_org": subject.org,
                    "subject_id": subject.id,
                    "asked_action": action,
                    "owner_org": resource.owner_org or "",
                },
            )
    return decision


def reload(
    container: Any, caller: Any, *, request_id: str | None = None, source_ip: str | None = None
) -> dict[str, Any]:
    """Reload the policy files; a failing reload keeps the previous version (and says why).

    Raises InvalidInput listing every problem when the new files do not validate."""
    result: ReloadResult = container.policy.reload()
    audit = _audit(container)
    if audit is not None:
        with container.session() as session, session.begin():
            audit.record(
                session,
                actor=caller,
                action="policy_reload",
                outcome="success" if result.ok else "failure",
                source_ip=source_ip,
                request_id=request_id,
                labels={
                    "version": result.version,
                    "previous_version": result.previous_version,
                    "problems": str(len(result.problems)),
                },
            )
    if not result.ok:
        raise InvalidInput(
            f"policy reload failed; version {result.previous_version[:12]} stays active: "
            f"{result.problems[0]}",
            problems=[str(p) for p in result.problems],
            active_version=result.previous_version,
        )
    return result.to_dict()
