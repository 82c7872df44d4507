"""Alert rules: the model and the loader of ``policies/alerts.yaml``.

Rule types (each a frozen dataclass; ``id`` and ``severity`` on all):

* ``volume_spike``  an actor's events in the last ``window_minutes`` exceed ``factor``
  times its own average per window over the trailing ``baseline_hours`` (and at least
  ``min_events``); actors with less than ``warmup_hours`` of history are skipped.
* ``off_hours``     access to a grade in ``grades`` outside ``work_hours`` on
  ``workdays`` (local time of the service's zone).
  ``exclude_own_org`` (off_hours and first_access): the roles whose access to data of
  their own organisation raises no alert — a provider reading its own files is not a
  risk. Default ``[provider]``; ``false`` or ``[]`` turns it off, ``true`` means
  ``[provider]``. The data's organisation is the dataset's owner in the exchange
  catalog, else the ``dataset_org`` label of the event; unknown owner -> alert.
* ``denial_burst``  ``threshold`` or more denied requests by one actor within
  ``window_minutes``.
* ``first_access``  the first access by an actor to a dataset of a grade in ``grades``.
* ``export_volume`` more than ``max_rows_per_day`` rows moved by ``actions`` of one
  actor in one local day.

``load_alert_rules`` raises ``AlertRulesError(path, line, message)`` on the first problem.
Action names must be ones the trail records (``monitor.actions.RECORDED_ACTIONS``); with
``grades`` given (the graded scheme of ``grades.yaml``), grade names must be among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import time
from pathlib import Path
from typing import Any

import yaml

from monitor.actions import EXPORT_ACTIONS, RECORDED_ACTIONS, suggest_action
from monitor.errors import AlertRulesError

# libyaml's loader (about ten times faster; the same values and line marks, see
# tests/policy/test_yaml_loaders.py) when PyYAML was built with it, else the pure-Python one
_SAFE_LOADER: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "acknowledged", "closed")


@dataclass(frozen=True)
class _Rule:
    """What every rule has: its id (unique in the file) and the severity of its alerts."""

    id: str
    severity: str


@dataclass(frozen=True)
class VolumeSpike(_Rule):
    window_minutes: int = 60
    baseline_hours: int = 168
    warmup_hours: int = 24
    factor: float = 5.0
    min_events: int = 50


@dataclass(frozen=True)
class OffHours(_Rule):
    grades: tuple[str, ...] = ("L3", "L4", "core")
    work_start: time = time(8, 0)
    work_end: time = time(20, 0)
    workdays: tuple[int, ...] = (1, 2, 3, 4, 5)  # ISO weekdays, Monday = 1
    exclude_own_org: tuple[str, ...] = ("provider",)


@dataclass(frozen=True)
class DenialBurst(_Rule):
    window_minutes: int = 10
    threshold: int = 5


@dataclass(frozen=True)
class FirstAccess(_Rule):
    grades: tuple[str, ...] = ("L4",)
    exclude_own_org: tuple[str, ...] = ("provider",)


@dataclass(frozen=True)
class ExportVolume(_Rule):
    max_rows_per_day: int = 100_000
    actions: tuple[str, ...] = tuple(sorted(EXPORT_ACTIONS))


Rule = VolumeSpike | OffHours | DenialBurst | FirstAccess | ExportVolume
RULE_TYPES: dict[str, type[Any]] = {
    "volume_spike": VolumeSpike,
    "off_hours": OffHours,
    "denial_burst": DenialBurst,
    "first_access": FirstAccess,
    "export_volume": ExportVolume,
}


@dataclass(frozen=True)
class AlertRules:
    rules: tuple[Rule, ...]

    def __iter__(self) -> Any:
        return iter(self.rules)


def _parse_hours(text: Any, fail: Any) -> tuple[time, time]:
    try:
        start, end = str(text).split("-")
        sh, sm = (int(x) for x in start.strip().split(":"))
        eh, em = (int(x) for x in end.strip().split(":"))
        return time(sh, sm), time(eh, em)
    except ValueError:
        fail(f"work_hours {text!r} must look like '08:00-20:00'")
        raise


def load_alert_rules(path: Path | str, *, grades: Sequence[str] | None = None) -> AlertRules:
    """Load and validate the rules file. Every problem names ``file:line``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlertRulesError(str(path), 1, f"cannot read ({exc.strerror})") from exc
    return parse_alert_rules(text, str(path), grades=grades)


def parse_alert_rules(text: str, path: str = "alerts.yaml", *,
                      grades: Sequence[str] | None = None) -> AlertRules:
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise AlertRulesError(path, (mark.line + 1) if mark else 1, f"not valid YAML: {exc}"
                              ) from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise AlertRulesError(path, 1, "expected a mapping with a 'rules' list")
    rules_node = _child(node, "rules", value=True)
    if rules_node is None or not isinstance(data.get("rules"), list):
        raise AlertRulesError(path, 1, "missing 'rules' list")
    if not isinstance(rules_node, yaml.SequenceNode):
        raise AlertRulesError(path, rules_node.start_mark.line + 1, "'rules' must be a list")
    out: list[Rule] = []
    seen: dict[str, int] = {}
    for raw, rnode in zip(data["rules"], rules_node.value, strict=True):
        line = rnode.start_mark.line + 1

        def fail(message: str, key: str | None = None, *, _rnode: Any = rnode,
                 _line: int = line) -> None:
            knode = _child(_rnode, key) if key else None
            raise AlertRulesError(path, knode.start_mark.line + 1 if knode else _line, message)

        if not isinstance(raw, dict):
            fail("a rule must be a mapping")
        rtype = raw.get("type")
        if rtype not in RULE_TYPES:
            fail(f"unknown rule type {rtype!r} (known: {' '.join(RULE_TYPES)})", "type")
        rid = raw.get("id")
        if not isinstance(rid, str) or not rid:
            fail("every rule needs an 'id'", "id")
        if rid in seen:
            fail(f"duplicate rule id {rid!r} (first on line {seen[rid]})", "id")
        seen[rid] = line
        severity = raw.get("severity", "medium")
        if severity not in SEVERITIES:
            fail(f"severity {severity!r} is not one of {' '.join(SEVERITIES)}", "severity")
        cls = RULE_TYPES[rtype]
        allowed = {f.name for f in fields(cls)} | {"type", "work_hours"}
        kwargs: dict[str, Any] = {"id": rid, "severity": severity}
        for key, value in raw.items():
            if key in ("type", "id", "severity"):
                continue
            if key not in allowed or (key == "work_hours" and cls is not OffHours):
                fail(f"rule type {rtype} has no option {key!r}", key)
            if key == "work_hours":
                kwargs["work_start"], kwargs["work_end"] = _parse_hours(
                    value, lambda m, k=key: fail(m, k))
                continue
            kwargs[key] = _coerce(cls, key, value, lambda m, k=key: fail(m, k))
            if key in ("grades", "actions"):
                _check_names(path, rnode, key, kwargs[key], grades)
        out.append(cls(**kwargs))
    return AlertRules(tuple(out))


def _coerce(cls: type[Any], key: str, value: Any, fail: Any) -> Any:
    default = {f.name: f.default for f in fields(cls)}[key]
    if key == "exclude_own_org":
        if value is True:
            return ("provider",)
        if value is False or value == []:
            return ()
        if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
            fail("exclude_own_org must be true, false or a list of roles")
        return tuple(value)
    if isinstance(default, tuple):
        if not isinstance(value, list) or not value:
            fail(f"{key} must be a non-empty list")
        items = tuple(value)
        if key == "workdays" and not all(isinstance(d, int) and 1 <= d <= 7 for d in items):
            fail("workdays are ISO weekday numbers 1 (Monday) .. 7 (Sunday)")
        if key in ("grades", "actions") and not all(isinstance(g, str) for g in items):
            fail(f"{key} must be names (strings)")
        return items
    if isinstance(default, bool) or not isinstance(value, int | float) or isinstance(value, bool):
        fail(f"{key} must be a number")
    if value <= 0:
        fail(f"{key} must be positive")
    if isinstance(default, int) and not isinstance(value, int):
        fail(f"{key} must be a whole number")
    return value


def _check_names(path: str, rnode: Any, key: str, items: tuple[str, ...],
                 grades: Sequence[str] | None) -> None:
    """Each grade must be one of ``grades`` (when given), each action a recorded one; the
    error names the line of the offending item."""
    vnode = _child(rnode, key, value=True)
    nodes = list(vnode.value) if isinstance(vnode, yaml.SequenceNode) else []
    for index, item in enumerate(items):
        node = nodes[index] if index < len(nodes) else vnode
        line = node.start_mark.line + 1 if node is not None else rnode.start_mark.line + 1
        if key == "actions" and item not in RECORDED_ACTIONS:
            hint = suggest_action(item)
            meant = f"; did you mean {hint!r}?" if hint else ""
            raise AlertRulesError(path, line, f"unknown action {item!r}: never recorded by the "
                                  f"service or a reporter{meant}")
        if key == "grades" and grades is not None and item not in grades:
            raise AlertRulesError(path, line, f"grade {item!r} is not defined "
                                  f"(known: {' '.join(grades)})")


def _child(node: Any, key: str | None, *, value: bool = False) -> Any:
    """The key node (for its line) or, with ``value``, the value node of ``key``."""
    if not isinstance(node, yaml.MappingNode) or key is None:
        return None
    for knode, vnode in node.value:
        if getattr(knode, "value", None) == key:
            return vnode if value else knode
    return None
