"""``watermark.yaml``: the usability bound of watermarked copies, per profile and grade.

Compliance officers decide how far a mark may move a value, not the caller of an
embedding: the relative error per value, the drift of a column's sum and mean, the
largest numeric step (a copy rounded to that step still names its recipient: ``100``
allows marks of ±100 where the value is large enough), whether dates may move by a day,
and whether masked values and pseudonyms carry marks. A dataset's grade picks the
profile (``grades:``), else ``default_profile``. Keys a profile leaves out keep the
built-in value (:class:`watermark.Params`).

Parsed from the same bytes the policy version covers, with the grades of
``grades.yaml``; every problem is ``file:line: message``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from quanguard.policy.model import Problem
from quanguard.policy.yamlnodes import Sheet, read_sheet

__all__ = ["WATERMARK_FILE", "WatermarkPolicy", "WatermarkProfile", "parse_watermark"]

WATERMARK_FILE = "watermark.yaml"

# key -> (Params field, kind, lower bound, upper bound, what it means)
_FIELDS: dict[str, tuple[str, str, float, float, str]] = {
    "max_rel_error": ("max_rel_error", "number", 0.0, 0.1,
                      "share of its own value a mark may move a value by"),
    "max_drift": ("max_drift", "number", 0.0, 0.01, "drift of a column's sum and mean"),
    "max_step": ("max_step", "step", 1, 1_000_000, "largest numeric step (1, 10, 100, ...)"),
    "date_shift": ("date_shift", "bool", 0, 0, "dates may move by one day"),
    "masked": ("mark_masked", "bool", 0, 0, "masked values carry marks"),
    "pseudonyms": ("mark_pseudonyms", "bool", 0, 0, "hash pseudonyms carry marks"),
}


@dataclass(frozen=True)
class WatermarkProfile:
    """One named bound; ``settings`` holds only what the file says (Params field names)."""

    name: str
    description: str = ""
    settings: tuple[tuple[str, object], ...] = ()
    line: int = 1

    def params(self, base: Any = None) -> Any:
        """``base`` (a :class:`watermark.Params`, default the built-in one) with this
        profile's bound."""
        from dataclasses import replace

        from watermark import Params

        return replace(base if base is not None else Params(), **dict(self.settings))


@dataclass(frozen=True)
class WatermarkPolicy:
    """The profiles of ``watermark.yaml`` and which grade uses which."""

    default: str
    profiles: dict[str, WatermarkProfile] = field(default_factory=dict)
    grades: dict[str, str] = field(default_factory=dict)
    #: the profile of data whose grade is not known: that of the highest grade ``grades``
    #: maps (unknown is never treated as the ordinary case), else the default
    unknown: str = ""

    def for_grade(self, grade: str | None) -> WatermarkProfile:
        """The profile of a dataset of ``grade``: its mapped profile, the default for a
        grade the file does not map, and for no grade (never scanned) the ``unknown`` one."""
        if grade is None:
            return self.profiles[self.unknown or self.default]
        return self.profiles[self.grades.get(grade, self.default)]


def parse_watermark(data: bytes, path: str, grades: list[str] | None
                    ) -> tuple[WatermarkPolicy | None, list[Problem]]:
    """Validate ``watermark.yaml``; (policy, []) or (None, every problem).

    ``grades``: the grade ids of ``grades.yaml`` (None while that file is invalid: grade
    names are then not checked)."""
    sheet = read_sheet(Path(path), path, data)
    if sheet.root is None:
        return None, sheet.problems
    top = sheet.record(sheet.root, "watermark.yaml",
                       allowed=("default_profile", "profiles", "grades"),
                       required=("default_profile", "profiles"))
    if top is None:
        return None, sheet.problems
    profiles: dict[str, WatermarkProfile] = {}
    if "profiles" in top:
        items = sheet.mapping(top["profiles"][1], "profiles") or {}
        if not items:
            sheet.error(top["profiles"][0], "profiles: at least one profile is needed")
        for name, (key_node, node) in items.items():
            profile = _profile(sheet, name, node, sheet.line(key_node))
            if profile is not None:
                profiles[name] = profile
    default = ""
    if "default_profile" in top:
        default = sheet.string(top["default_profile"][1], "default_profile") or ""
        if default and profiles and default not in profiles:
            sheet.error(top["default_profile"][1], f"default_profile '{default}' is not a "
                        f"profile (profiles: {' '.join(profiles)})")
    mapped: dict[str, str] = {}
    if "grades" in top:
        for grade, (key_node, node) in (sheet.mapping(top["grades"][1], "grades") or {}).items():
            if grades is not None and grade not in grades:
                sheet.error(key_node, f"grades: unknown grade '{grade}' (grades.yaml defines: "
                            f"{' '.join(grades)})")
            target = sheet.string(node, f"grades: {grade}")
            if target is not None and profiles and target not in profiles:
                sheet.error(node, f"grades: {grade}: '{target}' is not a profile "
                            f"(profiles: {' '.join(profiles)})")
            elif target is not None:
                mapped[grade] = target
    if sheet.problems:
        return None, sheet.problems
    # grades are listed low to high in grades.yaml: the last one mapped is the strictest
    ranked = [g for g in (grades or []) if g in mapped]
    unknown = mapped[ranked[-1]] if ranked else default
    return WatermarkPolicy(default, profiles, mapped, unknown), []


def _profile(sheet: Sheet, name: str, node: Node, line: int) -> WatermarkProfile | None:
    what = f"profile '{name}'"
    items = sheet.record(node, what, allowed=("description", *_FIELDS))
    if items is None:
        return None
    description = ""
    settings: list[tuple[str, object]] = []
    for key, (_, value_node) in items.items():
        if key == "description":
            description = sheet.string(value_node, f"{what}: description") or ""
            continue
        if key not in _FIELDS:
            continue
        target, kind, low, high, meaning = _FIELDS[key]
        label = f"{what}: {key} ({meaning})"
        if kind == "bool":
            flag = sheet.boolean(value_node, label)
            if flag is not None:
                settings.append((target, flag))
        elif kind == "step":
            step = sheet.integer(value_node, label)
            if step is not None:
                if not low <= step <= high or 10 ** round(math.log10(step)) != step:
                    sheet.error(value_node, f"{label} must be a power of ten from 1 to "
                                f"{int(high):,}, got {step}")
                else:
                    settings.append((target, step))
        else:
            number = sheet.number(value_node, label)
            if number is not None:
                if not low < number <= high:
                    sheet.error(value_node, f"{label} must be above {low:g} and at most "
                                f"{high:g}, got {number:g}")
                else:
                    settings.append((target, number))
    return WatermarkProfile(name, description, tuple(settings), line)
