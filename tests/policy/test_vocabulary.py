"""Every action name the service writes to the trail is in the vocabulary alert rules are
checked against (``monitor.actions.RECORDED_ACTIONS``), and every policy action is one the
policy engine knows. Walks the code (ast), so a new event name cannot slip past alerts.yaml.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from monitor.actions import EXCHANGE_ACTIONS, RECORDED_ACTIONS

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("quanguard", "exchange", "monitor", "desensitize", "watermark")
# Calls whose third positional argument (after container, principal) is the policy action,
# recorded as the event's action unless ``audit_action=`` names another.
_GATES = {"authorize", "record_denial"}


def _literal(node: ast.AST) -> list[str]:
    """The names a string constant or an ``f"exchange.{kind}"`` can take."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        head = "".join(v.value for v in node.values
                       if isinstance(v, ast.Constant) and isinstance(v.value, str))
        if head == "exchange.":  # exchange.<job kind> of a job queued for approval
            return [f"exchange.{kind}" for kind in ("aggregate", "psi", "extract")]
        return [f"<f-string {head!r}>"]
    return []


def _recorded() -> Iterator[tuple[str, int, str]]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            rel = path.relative_to(REPO).as_posix()
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                keywords = {k.arg: k.value for k in node.keywords if k.arg}
                for key in ("action", "audit_action"):
                    if key in keywords:
                        for name in _literal(keywords[key]):
                            yield rel, node.lineno, name
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in _GATES and "audit_action" not in keywords and len(node.args) >= 3:
                    for name in _literal(node.args[2]):
                        yield rel, node.lineno, name


def test_every_recorded_action_is_in_the_vocabulary() -> None:
    found = list(_recorded())
    assert len(found) > 20  # the walk sees the service's records
    unknown = sorted({f"{rel}:{line}: {name}" for rel, line, name in found
                      if name not in RECORDED_ACTIONS})
    assert unknown == [], (
        "these actions are recorded but missing from monitor/actions.py (alert rules could "
        "never name them): " + "; ".join(unknown))


def test_the_exchange_names_are_all_recorded_somewhere() -> None:
    names = {name for _, _, name in _recorded()}
    assert set(EXCHANGE_ACTIONS) <= names, set(EXCHANGE_ACTIONS) - names
