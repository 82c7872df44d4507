"""The one gate is asked by use cases only: nothing else in the service calls
``authorize`` (the exchange's gate port is the documented exception)."""

from __future__ import annotations

import ast
from pathlib import Path

import quanguard

ROOT = Path(quanguard.__file__).parent
# the exchange's Decider port binds the gate to one request for the exchange use cases
ALLOWED = {"gate.py", "services/exchange.py"}


def _calls_authorize(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and (getattr(node.func, "id", None) == "authorize"
                 or getattr(node.func, "attr", None) == "authorize")]


def test_only_use_cases_ask_the_gate() -> None:
    offenders: list[str] = []
    asked = 0
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        found = _calls_authorize(path)
        if rel.startswith("usecases/") or rel in ALLOWED:
            asked += len(found)
            continue
        offenders += [f"{rel}:{line}" for line in found]
    assert asked > 20  # the walk sees the use cases' calls (it is not blind)
    assert offenders == []
