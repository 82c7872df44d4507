"""Named masking profiles (``policies/masking.yaml``).

A profile maps an entity, else the column's grade, else its ``default`` to one
operator and its parameters::

    default_profile: 共享
    profiles:
      共享:
        description: 部门间共享
        default: {op: mask}
        grades:   {L1: {op: keep}, L4: {op: mask}}
        entities: {CN_RESIDENT_ID: {op: fpe}, PERSON: {op: mask}}
        quasi_identifiers: {birth_date: {op: generalize, kind: date, to: year}}

``quasi_identifiers`` (birth_date, gender, age, district, occupation: the scanner's
kinds) apply to columns that hold no personal identifier but are quasi-identifiers,
to raise the k-anonymity of the output; columns of unlisted kinds are kept.

Keys of a rule other than ``op`` are the operator's parameters.  Loading checks
every operator and parameter name and raises :class:`ProfileError` with ``.path``,
``.line`` and ``.message`` (``policies/masking.yaml:14: unknown operator 'msk'``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from desensitize.errors import OperatorError, ProfileError, UnknownProfile
from desensitize.operators import get_operator

# libyaml's loader (about ten times faster; the same values and line marks, see
# tests/policy/test_yaml_loaders.py) when PyYAML was built with it, else the pure-Python one
_SAFE_LOADER: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


@dataclass(frozen=True)
class Rule:
    """One operator with its (validated) parameters."""

    op: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, **dict(self.params)}


@dataclass(frozen=True)
class Profile:
    """A named masking profile; ``rule_for`` resolves entity → grade → default."""

    name: str
    description: str
    default: Rule
    grades: Mapping[str, Rule]
    entities: Mapping[str, Rule]
    quasi_identifiers: Mapping[str, Rule] = field(default_factory=dict)

    def rule_for(self, entity: str | None, grade: str | None) -> tuple[Rule, str]:
        """The rule for a PII column and where it came from (for the printed plan)."""
        if entity is not None and entity in self.entities:
            return self.entities[entity], f"{self.name}.entities.{entity}"
        if grade is not None and grade in self.grades:
            return self.grades[grade], f"{self.name}.grades.{grade}"
        return self.default, f"{self.name}.default"


@dataclass(frozen=True)
class ProfileSet:
    """All profiles of one file and the default profile's name."""

    profiles: Mapping[str, Profile]
    default_profile: str
    path: str = ""

    def get(self, name: str | None) -> Profile:
        key = name or self.default_profile
        try:
            return self.profiles[key]
        except KeyError:
            known = " ".join(self.profiles)
            raise UnknownProfile(f"unknown masking profile {key!r} (known: {known})") from None

    @property
    def names(self) -> list[str]:
        return list(self.profiles)


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = k.start_mark.line + 1
            _lines(v, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, (*path, i), out)


class _Ctx:
    def __init__(self, path: str, lines: dict[tuple[Any, ...], int]) -> None:
        self.path = path
        self.lines = lines

    def error(self, where: tuple[Any, ...], message: str) -> ProfileError:
        line = None
        for n in range(len(where), -1, -1):
            line = self.lines.get(where[:n])
            if line is not None:
                break
        return ProfileError(message, path=self.path, line=line)


def _rule(ctx: _Ctx, where: tuple[Any, ...], raw: Any, known_grades: set[str] | None) -> Rule:
    if isinstance(raw, str):
        raw = {"op": raw}
    if not isinstance(raw, Mapping) or "op" not in raw:
        raise ctx.error(where, "a rule is a mapping with an 'op' key, e.g. {op: mask}")
    params = {k: v for k, v in raw.items() if k != "op"}
    try:
        op = get_operator(str(raw["op"]))
    except OperatorError as exc:
        raise ctx.error((*where, "op"), str(exc)) from None
    try:
        op.normalize(params)
    except OperatorError as exc:
        known = {p.name for p in op.params}
        bad = next((k for k in params if k not in known), None)
        raise ctx.error((*where, bad) if bad else where, str(exc)) from None
    return Rule(op.name, params)


def _section(
    ctx: _Ctx, where: tuple[Any, ...], raw: Any, known: set[str] | None, label: str
) -> dict[str, Rule]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ctx.error(where, f"{where[-1]} must be a mapping of {label} to rules")
    out = {}
    for key, value in raw.items():
        key = str(key)
        if known is not None and key not in known:
            raise ctx.error(
                (*where, key), f"{label} {key!r} is not defined (known: {' '.join(sorted(known))})"
            )
        out[key] = _rule(ctx, (*where, key), value, known)
    return out


def parse_profiles(
    text: str, path: str = "<masking.yaml>", *, grades: list[str] | None = None
) -> ProfileSet:
    """Validate and build profiles from YAML text; ``grades`` restricts grade keys."""
    try:
        node = yaml.compose(text, Loader=_SAFE_LOADER)
        data = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ProfileError(
            f"not valid YAML: {getattr(exc, 'problem', exc)}",
            path=path,
            line=mark.line + 1 if mark else None,
        ) from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines(node, (), lines)
    ctx = _Ctx(path, lines)
    if not isinstance(data, Mapping) or not isinstance(data.get("profiles"), Mapping):
        raise ctx.error((), "expected a mapping with 'profiles:'")
    unknown = set(data) - {"profiles", "default_profile"}
    if unknown:
        raise ctx.error((min(unknown),), f"unknown key {min(unknown)!r}")
    known_grades = set(grades) if grades else None
    profiles: dict[str, Profile] = {}
    for name, raw in data["profiles"].items():
        where = ("profiles", name)
        if not isinstance(raw, Mapping):
            raise ctx.error(where, f"profile {name!r} must be a mapping")
        extra = set(raw) - {"description", "default", "grades", "entities", "quasi_identifiers"}
        if extra:
            key = min(extra)
            raise ctx.error(
                (*where, key),
                f"unknown key {key!r} in profile {name!r} "
                "(known: default description entities grades quasi_identifiers)",
            )
        default = _rule(ctx, (*where, "default"), raw.get("default", "mask"), known_grades)
        profiles[str(name)] = Profile(
            name=str(name),
            description=str(raw.get("description", "")),
            default=default,
            grades=_section(ctx, (*where, "grades"), raw.get("grades"), known_grades, "grade"),
            entities=_section(ctx, (*where, "entities"), raw.get("entities"), None, "entity"),
            quasi_identifiers=_section(
                ctx, (*where, "quasi_identifiers"), raw.get("quasi_identifiers"), None,
                "quasi-identifier",
            ),
        )
    if not profiles:
        raise ctx.error(("profiles",), "no profiles defined")
    default_name = str(data.get("default_profile", "共享"))
    if default_name not in profiles:
        raise ctx.error(
            ("default_profile",),
            f"default_profile {default_name!r} is not defined (known: {' '.join(profiles)})",
        )
    return ProfileSet(profiles, default_name, path)


def load_profiles(path: str | os.PathLike[str], *, grades: list[str] | None = None) -> ProfileSet:
    """Load ``masking.yaml``; ProfileError (with .path/.line/.message) when invalid."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read: {exc.strerror}", path=str(p)) from None
    return parse_profiles(text, str(p), grades=grades)
