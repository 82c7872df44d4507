"""A masking plan: what happens to each column = scan result + profile (+ plan file).

``build_plan(columns, profile, overrides=...)`` resolves, for every column of the
table in order, one of:

* ``keep`` — not personal information (or the profile keeps it);
* an operator with parameters — a PII column (entity → grade → default of the profile);
* ``spans`` — a free-text column: each finding inside a cell is masked by the
  profile's rule for its entity, the rest of the text is untouched.

A plan file (YAML or JSON) overrides columns by name::

    profile: 分析          # optional
    columns:
      姓名: {op: fake}
      出生日期: {op: generalize, to: year}
      备注: keep

Naming a column the table does not have, an unknown operator or parameter is a
:class:`PlanError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from desensitize.errors import OperatorError, PlanError
from desensitize.operators import get_operator
from desensitize.profiles import Profile, Rule

SPANS = "spans"


@dataclass(frozen=True)
class ColumnInfo:
    """What the scanner says about one column (plain values, no scanner types)."""

    name: str
    entity: str | None = None
    grade: str | None = None
    free_text: bool = False
    text_entities: tuple[str, ...] = ()
    quasi_identifier: str | None = None
    header_only: bool = False  # entity from the header alone (values did not confirm it)


@dataclass(frozen=True)
class ColumnPlan:
    """The decision for one column."""

    name: str
    op: str
    params: Mapping[str, Any] = field(default_factory=dict)
    entity: str | None = None
    grade: str | None = None
    source: str = "not PII"

    @property
    def touches(self) -> bool:
        return self.op != "keep"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.name,
            "entity": self.entity,
            "grade": self.grade,
            "op": self.op,
            "params": dict(self.params),
            "source": self.source,
        }


@dataclass(frozen=True)
class MaskPlan:
    """Column decisions in table order, plus the profile that resolves span entities."""

    profile: Profile
    columns: tuple[ColumnPlan, ...]

    def get(self, name: str) -> ColumnPlan:
        for c in self.columns:
            if c.name == name:
                return c
        raise PlanError(f"plan has no column {name!r}")

    @property
    def masked_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.touches]

    @property
    def dropped_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.op == "suppress"]

    def span_rule(self, entity: str) -> Rule:
        rule, _ = self.profile.rule_for(entity, None)
        return rule

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile.name, "columns": [c.to_dict() for c in self.columns]}

    def describe(self) -> list[tuple[str, str, str, str, str]]:
        """Rows (column, entity, grade, operator, source) for printing."""
        out = []
        for c in self.columns:
            params = " ".join(f"{k}={v}" for k, v in c.params.items())
            out.append(
                (c.name, c.entity or "-", c.grade or "-", f"{c.op} {params}".strip(), c.source)
            )
        return out


def _check_rule(column: str, raw: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(raw, str):
        raw = {"op": raw}
    if not isinstance(raw, Mapping) or "op" not in raw:
        raise PlanError(f"plan: column {column!r}: expected {{op: ..., params...}} or an operator name")
    op = str(raw["op"])
    params = {k: v for k, v in raw.items() if k not in ("op", "entity")}
    if op != SPANS:
        try:
            get_operator(op).normalize(params)
        except OperatorError as exc:
            raise PlanError(f"plan: column {column!r}: {exc}") from None
    return op, params


def build_plan(
    columns: Sequence[ColumnInfo],
    profile: Profile,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> MaskPlan:
    """Resolve every column; ``overrides`` maps column name → rule (plan file)."""
    names = [c.name for c in columns]
    overrides = dict(overrides or {})
    missing = [n for n in overrides if n not in names]
    if missing:
        raise PlanError(
            f"plan names column(s) the table does not have: {', '.join(map(str, missing))} "
            f"(columns: {', '.join(names)})"
        )
    out = []
    for info in columns:
        if info.name in overrides:
            raw = overrides[info.name]
            op, params = _check_rule(info.name, raw)
            entity = raw.get("entity", info.entity) if isinstance(raw, Mapping) else info.entity
            out.append(ColumnPlan(info.name, op, params, entity, info.grade, "plan file"))
        elif info.entity is not None:
            rule, source = profile.rule_for(info.entity, info.grade)
            if info.header_only:
                source += " (header)"
            out.append(ColumnPlan(info.name, rule.op, rule.params, info.entity, info.grade, source))
        elif info.quasi_identifier and info.quasi_identifier in profile.quasi_identifiers:
            rule = profile.quasi_identifiers[info.quasi_identifier]
            source = f"{profile.name}.quasi_identifiers.{info.quasi_identifier}"
            out.append(ColumnPlan(info.name, rule.op, rule.params, None, info.grade, source))
        elif info.free_text or info.text_entities:
            found = ",".join(info.text_entities) or "free text"
            out.append(
                ColumnPlan(info.name, SPANS, {}, None, info.grade, f"{profile.name}: spans ({found})")
            )
        else:
            out.append(ColumnPlan(info.name, "keep", {}, None, info.grade))
    return MaskPlan(profile, tuple(out))


def load_plan_file(path: str | os.PathLike[str]) -> tuple[str | None, dict[str, Any]]:
    """(profile or None, column overrides) from a YAML or JSON plan file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{p}: cannot read plan file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise PlanError(f"{p}: plan file is not UTF-8 text") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PlanError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {exc}".splitlines()[0]) from None
    return parse_plan(data, str(p))


def parse_plan(data: Any, source: str = "plan") -> tuple[str | None, dict[str, Any]]:
    if not isinstance(data, Mapping):
        raise PlanError(f"{source}: expected a mapping with 'columns:'")
    extra = set(data) - {"profile", "columns"}
    if extra:
        raise PlanError(f"{source}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    cols = data.get("columns") or {}
    if isinstance(cols, list):  # the printed plan's own shape: [{column, op, params}]
        cols = {c["column"]: {"op": c["op"], **(c.get("params") or {})} for c in _rows(cols, source)}
    if not isinstance(cols, Mapping):
        raise PlanError(f"{source}: 'columns' must map column names to rules")
    profile = data.get("profile")
    return (str(profile) if profile is not None else None), {str(k): v for k, v in cols.items()}


def _rows(items: Iterable[Any], source: str) -> Iterable[Mapping[str, Any]]:
    for item in items:
        if not isinstance(item, Mapping) or "column" not in item or "op" not in item:
            raise PlanError(f"{source}: each column entry needs 'column' and 'op'")
        yield item
