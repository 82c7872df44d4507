"""Load and validate a policy directory into a :class:`PolicySet`.

Every problem of every file is collected (``file:line: message``); if there is any, the
whole set is rejected with :class:`PolicyInvalid` — nothing is half-applied.

Files (top level of the directory):
  grades.yaml    ``grades:`` list, low → high, each {id, name, description?, never_leaves?}
  grading.yaml   ``default_grade:`` and ``categories:`` [{id, grade, entities, description?}]
  roles.yaml     ``rules:`` list (any other top-level file with ``rules:`` adds more rules)
  masking.yaml / alerts.yaml belong to other areas; see ``foreign.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

from quanguard.policy.engine import PolicySet
from quanguard.policy.errors import PolicyInvalid, PolicyNotFound
from quanguard.policy.files import FOREIGN_FILES, PolicyFiles, read_policy_files
from quanguard.policy.model import Category, Grade, Problem, Rule
from quanguard.policy.rules import parse_rules
from quanguard.policy.shadow import find_never_leaves, find_unreachable
from quanguard.policy.yamlnodes import Sheet, read_sheet

__all__ = ["load_policy_dir", "validate_policy_dir"]

_GRADE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_ENTITY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_REQUIRED_FILES = ("grades.yaml", "grading.yaml", "roles.yaml")


def _display(directory: Path, name: str) -> str:
    return str(directory / name)


def _parse_grades(sheet: Sheet) -> list[Grade]:
    assert sheet.root is not None
    top = sheet.record(sheet.root, "grades.yaml", allowed=("grades",), required=("grades",))
    if top is None:
        return []
    if "grades" not in top:
        return []
    items = sheet.sequence(top["grades"][1], "grades")
    if items is None:
        return []
    if not items:
        sheet.error(top["grades"][1], "grades must list at least one grade")
    grades: list[Grade] = []
    seen: dict[str, int] = {}
    for item in items:
        fields = sheet.record(
            item, "grade", allowed=("id", "name", "description", "never_leaves"), required=("id", "name")
        )
        if fields is None:
            continue
        gid = sheet.string(fields["id"][1], "grade id") if "id" in fields else None
        name = sheet.string(fields["name"][1], "grade name") if "name" in fields else None
        desc = ""
        if "description" in fields:
            desc = sheet.string(fields["description"][1], "grade description") or ""
        sealed: bool | None = False
        if "never_leaves" in fields:
            sealed = sheet.boolean(fields["never_leaves"][1], "grade never_leaves")
        if gid is None or name is None or sealed is None:
            continue
        if not _GRADE_ID.match(gid):
            sheet.error(fields["id"][1], f"grade id '{gid}' must be a plain name like L3")
            continue
        if gid in seen:
            sheet.error(fields["id"][1], f"duplicate grade '{gid}' (first at line {seen[gid]})")
            continue
        seen[gid] = sheet.line(fields["id"][1])
        grades.append(Grade(gid, name, desc, sealed))
    return grades


def _parse_grading(sheet: Sheet, grade_ids: list[str]) -> tuple[str | None, list[Category]]:
    assert sheet.root is not None
    known = " ".join(grade_ids)
    top = sheet.record(
        sheet.root,
        "grading.yaml",
        allowed=("default_grade", "categories"),
        required=("default_grade", "categories"),
    )
    if top is None:
        return None, []
    default = None
    if "default_grade" in top:
        default = sheet.string(top["default_grade"][1], "default_grade")
        if default is not None and default not in grade_ids:
            sheet.error(
                top["default_grade"][1], f"grade '{default}' is not defined (known: {known})"
            )
            default = None
    categories: list[Category] = []
    items = sheet.sequence(top["categories"][1], "categories") if "categories" in top else None
    entity_seen: dict[str, tuple[str, int]] = {}
    cat_seen: dict[str, int] = {}
    for item in items or []:
        fields = sheet.record(
            item,
            "category",
            allowed=("id", "grade", "entities", "description"),
            required=("id", "grade", "entities"),
        )
        if fields is None:
            continue
        cid = sheet.string(fields["id"][1], "category id") if "id" in fields else None
        grade = sheet.string(fields["grade"][1], "category grade") if "grade" in fields else None
        if grade is not None and grade not in grade_ids:
            sheet.error(fields["grade"][1], f"grade '{grade}' is not defined (known: {known})")
            grade = None
        desc = ""
        if "description" in fields:
            desc = sheet.string(fields["description"][1], "category description") or ""
        entities: list[str] = []
        entity_lines: list[int] = []
        if "entities" in fields:
            for entity, node in sheet.names(fields["entities"][1], "entities") or []:
                if not _ENTITY.match(entity):
                    sheet.error(node, f"entity '{entity}' must be an UPPER_CASE name")
                elif entity in entity_seen:
                    other, line = entity_seen[entity]
                    sheet.error(
                        node,
                        f"entity '{entity}' is already in category '{other}' (line {line})",
                    )
                else:
                    entity_seen[entity] = (cid or "?", sheet.line(node))
                    entities.append(entity)
                    entity_lines.append(sheet.line(node))
        if cid is not None and cid in cat_seen:
            sheet.error(
                fields["id"][1], f"duplicate category '{cid}' (first at line {cat_seen[cid]})"
            )
            continue
        if cid is None or grade is None:
            continue
        cat_seen[cid] = sheet.line(fields["id"][1])
        categories.append(
            Category(cid, grade, tuple(entities), desc, sheet.path, tuple(entity_lines))
        )
    return default, categories


def _parse_rule_file(
    sheet: Sheet, grade_ids: list[str], start: int, seen: dict[str, str]
) -> list[Rule]:
    assert sheet.root is not None
    name = Path(sheet.path).name
    top = sheet.mapping(sheet.root, name)
    if top is None:
        return []
    if "rules" not in top:
        sheet.error(
            sheet.root,
            f"{name}: not a policy file the engine knows (a rule file needs a top-level "
            "'rules:' list; grades.yaml and grading.yaml have their own shapes)",
        )
        return []
    sheet.keys(top, sheet.root, name, allowed=("rules",))
    return parse_rules(sheet, top["rules"][1], grade_ids, start, seen)


def build_policy_set(files: PolicyFiles) -> tuple[PolicySet | None, list[Problem]]:
    """Parse and check ``files``; (set, []) when valid, (None, problems) otherwise."""
    directory = files.directory
    problems: list[Problem] = []
    present = dict(files.contents)
    for required in _REQUIRED_FILES:
        if required not in present:
            problems.append(Problem(_display(directory, required), 1, "required file is missing"))
    sheets = {
        name: read_sheet(directory / name, _display(directory, name), data)
        for name, data in files.contents
        if name not in FOREIGN_FILES
    }
    grades: list[Grade] = []
    if "grades.yaml" in sheets and sheets["grades.yaml"].root is not None:
        grades = _parse_grades(sheets["grades.yaml"])
    grade_ids = [g.id for g in grades]
    default_grade: str | None = None
    categories: list[Category] = []
    if "grading.yaml" in sheets and sheets["grading.yaml"].root is not None:
        default_grade, categories = _parse_grading(sheets["grading.yaml"], grade_ids)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for index, (name, sheet) in enumerate(sorted(sheets.items())):
        if name in ("grades.yaml", "grading.yaml") or sheet.root is None:
            continue
        # rules keep the order they were written in: file by file (sorted), then in-file
        rules.extend(_parse_rule_file(sheet, grade_ids, index * 1_000_000, seen))
    for sheet in sheets.values():
        problems.extend(sheet.problems)
    if not problems and not rules:
        problems.append(
            Problem(_display(directory, "roles.yaml"), 1, "no rules: an empty policy is refused")
        )
    if not problems:
        problems.extend(find_unreachable(rules))
        problems.extend(find_never_leaves(rules, grades))
    if problems:
        return None, sorted(problems)
    assert default_grade is not None
    return (
        PolicySet(
            version=files.version,
            files=files.names,
            grades=grades,
            categories=categories,
            default_grade=default_grade,
            rules=rules,
        ),
        [],
    )


def _read(directory: Path) -> PolicyFiles:
    if not directory.is_dir():
        raise PolicyNotFound(f"policy directory {directory} does not exist")
    return read_policy_files(directory)


def validate_policy_dir(directory: Path) -> list[Problem]:
    """Every problem of the engine's own files (empty list when valid)."""
    return build_policy_set(_read(directory))[1]


def load_policy_dir(directory: Path) -> PolicySet:
    """Load ``directory``; raises PolicyInvalid (all problems) or PolicyNotFound."""
    policy, problems = build_policy_set(_read(directory))
    if policy is None:
        raise PolicyInvalid(problems)
    return policy
