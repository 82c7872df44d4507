"""Every area service of the container is built the same way: a lazy ``cached_property``
that imports ``build_<name>`` from ``quanguard.services.<area>`` on first use and returns
what it builds (CONTRIBUTING.md: one home per area, built lazily, typed)."""

from __future__ import annotations

import ast
from pathlib import Path

import quanguard
from quanguard.container import Container

CONTAINER = Path(quanguard.__file__).parent / "container.py"


def _area_properties() -> list[ast.FunctionDef]:
    tree = ast.parse(CONTAINER.read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Container"]
    return [f for f in cls.body if isinstance(f, ast.FunctionDef)
            and any(getattr(d, "id", None) == "cached_property" for d in f.decorator_list)
            and any(isinstance(s, ast.ImportFrom) and (s.module or "").startswith("quanguard.services.")
                    for s in f.body)]


def test_every_area_service_is_built_by_its_build_function() -> None:
    properties = _area_properties()
    assert {"audit", "policy", "alerts", "exchange"} <= {f.name for f in properties}
    off: list[str] = []
    for prop in properties:
        imported = {a.name for s in prop.body if isinstance(s, ast.ImportFrom) for a in s.names}
        returned = prop.body[-1]
        call = returned.value if isinstance(returned, ast.Return) else None
        name = getattr(call.func, "id", "") if isinstance(call, ast.Call) else ""
        if not (name.startswith("build_") and name in imported and prop.returns is not None):
            off.append(f"Container.{prop.name} returns {ast.unparse(returned)}")
    assert off == []


def test_the_audit_service_is_built_once_on_first_use(container: Container) -> None:
    from quanguard.services.audit import AuditService

    assert "audit" not in vars(container)  # lazy: nothing built with the container
    first = container.audit
    assert isinstance(first, AuditService) and container.audit is first
