"""Validate the policy files other areas own, through their own parsers, against the
graded scheme of this directory.

``masking.yaml`` belongs to desensitize (``desensitize.profiles.parse_profiles``) and
``alerts.yaml`` to monitor (``monitor.parse_alert_rules``). Both are parsed from the same
bytes the version hash covers, with the grades of ``grades.yaml``; their errors carry
``.path``, ``.line`` and ``.message``. Both areas are part of every build: an import that
fails is a startup error, never a skipped check.

Cross-file checks made here:
- every grade named in ``masking.yaml`` and ``alerts.yaml`` is one of ``grades.yaml``;
- every entity named in ``grading.yaml`` and ``masking.yaml`` is one the recognizers emit;
- every action named in ``alerts.yaml`` is one the trail records;
- every ``mask_profile`` obligation in a rule file names a profile of ``masking.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from desensitize import ENTITIES, classify
from desensitize.errors import DesensitizeError
from desensitize.profiles import ProfileSet, parse_profiles
from monitor import AlertRules, parse_alert_rules
from monitor.errors import AlertRulesError
from quanguard.policy.engine import PolicySet
from quanguard.policy.model import Problem, Rule

__all__ = [
    "KNOWN_ENTITIES",
    "check_grading_entities",
    "check_mask_profiles",
    "parse_alerts",
    "parse_masking",
]

# libyaml's loader (about ten times faster; the same values and line marks, see
# tests/policy/test_yaml_loaders.py) when PyYAML was built with it, else the pure-Python one
_SAFE_LOADER: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader

# The entities the recognizers emit, plus the labels the column classifier gives where no
# recognizer fired (``UNRECOGNISED``, ``KEY_LIKE``, ...: desensitize's grading labels).
# A name outside this list never matches any finding.
KNOWN_ENTITIES: tuple[str, ...] = (*ENTITIES, *classify.GRADING_LABELS)


def _problem(exc: Exception, fallback_path: str) -> Problem:
    path = getattr(exc, "path", None) or fallback_path
    line = getattr(exc, "line", None) or 1
    message = getattr(exc, "message", None) or str(exc)
    return Problem(str(path), int(line), str(message))


def _text(data: bytes, path: str) -> tuple[str | None, list[Problem]]:
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]


def parse_masking(
    data: bytes, path: str, grades: Sequence[str] | None
) -> tuple[ProfileSet | None, list[Problem]]:
    """The masking profiles (operators and parameters checked by desensitize, grade keys
    against ``grades`` when known), and every entity key checked against the recognizers'."""
    text, problems = _text(data, path)
    if text is None:
        return None, problems
    try:
        profiles = parse_profiles(text, path, grades=list(grades) if grades else None)
    except DesensitizeError as exc:
        return None, [_problem(exc, path)]
    lines = _entity_lines(text)
    for profile in profiles.profiles.values():
        for entity in profile.entities:
            if entity not in KNOWN_ENTITIES:
                problems.append(Problem(
                    path, lines.get((profile.name, entity), 1),
                    f"profile '{profile.name}': entity '{entity}' is not one the scanners "
                    f"report (known: {' '.join(KNOWN_ENTITIES)})",
                ))
    return (None if problems else profiles), problems


def _entity_lines(text: str) -> dict[tuple[str, str], int]:
    """(profile, entity) -> line of the entity key in masking.yaml."""
    out: dict[tuple[str, str], int] = {}
    try:
        root = yaml.compose(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError:
        return out
    profiles = _value(root, "profiles")
    if not isinstance(profiles, yaml.MappingNode):
        return out
    for name_node, body in profiles.value:
        entities = _value(body, "entities")
        if isinstance(entities, yaml.MappingNode):
            for key, _ in entities.value:
                out[(str(name_node.value), str(key.value))] = key.start_mark.line + 1
    return out


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                found: yaml.Node = v
                return found
    return None


def parse_alerts(
    data: bytes, path: str, grades: Sequence[str] | None
) -> tuple[AlertRules | None, list[Problem]]:
    """The alert rules (shape checked by monitor, grades against ``grades``, actions
    against the ones the trail records)."""
    text, problems = _text(data, path)
    if text is None:
        return None, problems
    try:
        return parse_alert_rules(text, path, grades=grades), []
    except AlertRulesError as exc:
        return None, [_problem(exc, path)]


def check_grading_entities(policy: PolicySet) -> list[Problem]:
    """Every entity of a grading category must be one the recognizers emit: a misspelt
    entity would never match and leave real findings on the default grade."""
    problems = []
    for category in policy.categories:
        lines = category.entity_lines or (1,) * len(category.entities)
        for entity, line in zip(category.entities, lines, strict=True):
            if entity not in KNOWN_ENTITIES:
                problems.append(Problem(
                    category.path, line,
                    f"category '{category.id}': entity '{entity}' is not one the scanners "
                    f"report (known: {' '.join(KNOWN_ENTITIES)})",
                ))
    return problems


def check_mask_profiles(rules: Iterable[Rule], profiles: ProfileSet, masking_path: str
                        ) -> list[Problem]:
    """Every ``mask_profile`` obligation must name a profile of masking.yaml."""
    known = list(profiles.names)
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


def display(directory: Path, name: str) -> str:
    return str(directory / name)
