"""Audit events are written by use cases (``quanguard/usecases/``) and by the few places
that record on behalf of a request before or beside any use case: the gate (a refusal),
the exchange's audit port, the HTTP request recorder (and its twin for failed CLI
commands) and the role check of the API's dependencies. Nothing else in the service writes to the trail on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import quanguard

ROOT = Path(quanguard.__file__).parent
ALLOWED = {
    "gate.py",  # authorize / record_denial: the one gate's refusals
    "services/exchange.py",  # the exchange's audit port, bound by its use cases
    "api/recording.py",  # the event of a request no use case recorded (401, 404, 422 ...)
    "cli/recording.py",  # the event of a failed command no use case recorded (its CLI twin)
    "api/deps.py",  # require_roles: a role refused before any use case runs
}
WRITERS = {"record", "record_batch", "record_denial"}


def _writes(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines: list[int] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "record_denial":
            lines.append(node.lineno)
        elif (isinstance(func, ast.Attribute) and func.attr in WRITERS
              and isinstance(func.value, ast.Attribute) and func.value.attr == "audit"):
            lines.append(node.lineno)  # <something>.audit.record(...)
    return lines


def test_only_use_cases_write_audit_events() -> None:
    offenders: list[str] = []
    seen = 0
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found = _writes(path)
        seen += len(found)
        if rel.startswith("usecases/") or rel in ALLOWED:
            continue
        offenders += [f"{rel}:{line}" for line in found]
    assert seen > 20  # the walk sees the service's writes
    assert offenders == []
