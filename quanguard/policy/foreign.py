"""Validate the policy files other areas own, through their own loaders.

``masking.yaml`` belongs to desensitize (``desensitize.load_profiles``) and ``alerts.yaml``
to monitor (``monitor.load_alert_rules``). Their loaders raise an error carrying ``.path``,
``.line`` and ``.message`` (possibly a list of them in ``.problems``/``.errors``). When a
loader is not importable yet, the file is skipped: the area has not landed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from quanguard.policy.model import Problem, Rule

__all__ = ["FOREIGN_LOADERS", "check_mask_profiles", "load_foreign", "validate_foreign"]

# file name -> (module, loader function)
FOREIGN_LOADERS: dict[str, tuple[str, str]] = {
    "masking.yaml": ("desensitize", "load_profiles"),
    "alerts.yaml": ("monitor", "load_alert_rules"),
}


def _loader(module: str, name: str) -> Callable[[Path], Any] | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    fn = getattr(mod, name, None)
    return fn if callable(fn) else None


def _as_problem(item: Any, fallback_path: str) -> Problem:
    path = getattr(item, "path", None) or fallback_path
    line = getattr(item, "line", None) or 1
    message = getattr(item, "message", None) or str(item)
    return Problem(str(path), int(line), str(message))


def _problems_of(exc: Exception, fallback_path: str) -> list[Problem]:
    for attr in ("problems", "errors"):
        items = getattr(exc, attr, None)
        if isinstance(items, list | tuple) and items:
            return [_as_problem(item, fallback_path) for item in items]
    return [_as_problem(exc, fallback_path)]


def validate_foreign(directory: Path) -> list[Problem]:
    """Problems reported by the owners' loaders for their files in ``directory``."""
    return load_foreign(directory)[0]


def load_foreign(directory: Path) -> tuple[list[Problem], dict[str, Any]]:
    """(problems, {file name: what its loader returned}) for the files that loaded."""
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}
    for file_name, (module, func) in sorted(FOREIGN_LOADERS.items()):
        path = directory / file_name
        if not path.is_file():
            continue
        load = _loader(module, func)
        if load is None:
            continue
        try:
            loaded[file_name] = load(path)
        except Exception as exc:  # noqa: BLE001 - any failure of their loader is a finding
            problems.extend(_problems_of(exc, str(path)))
    return problems, loaded


def check_mask_profiles(rules: Iterable[Rule], profiles: Any, masking_path: str) -> list[Problem]:
    """Every ``mask_profile`` obligation must name a profile of masking.yaml."""
    names = getattr(profiles, "names", None)
    if callable(names):
        names = names()
    if not isinstance(names, list | tuple | set | frozenset) or not names:
        return []
    known = [str(n) for n in names]
    problems = []
    for rule in rules:
        profile = rule.obligations.get("mask_profile")
        if profile is not None and profile not in known:
            problems.append(
                Problem(
                    rule.path,
                    rule.line,
                    f"rule '{rule.id}': mask_profile '{profile}' is not a profile of "
                    f"{masking_path} (known: {' '.join(known)})",
                )
            )
    return problems
