"""Parse and check the rule lists (``rules:`` in roles.yaml and other rule files)."""

from __future__ import annotations

from typing import Any

from yaml.nodes import Node

from exchange.purposes import ALL_PURPOSES, normalise_purpose
from quanguard.policy.model import Rule
from quanguard.policy.vocab import (
    ACTIONS,
    CONDITIONS,
    EFFECTS,
    OBLIGATIONS,
    PSI_REVEAL,
    ROLES,
    WILDCARD,
)
from quanguard.policy.yamlnodes import Sheet

__all__ = ["parse_rules"]

_RULE_KEYS = (
    "id",
    "description",
    "priority",
    "roles",
    "actions",
    "grades",
    "conditions",
    "effect",
    "obligations",
)
_REQUIRED = ("id", "priority", "roles", "actions", "effect")


def _known(names: tuple[str, ...] | list[str]) -> str:
    return " ".join(names)


def _names(
    sheet: Sheet, node: Node, what: str, known: tuple[str, ...] | list[str], wildcard: bool
) -> frozenset[str] | None:
    items = sheet.names(node, what)
    if items is None:
        return None
    out: set[str] = set()
    ok = True
    for name, item in items:
        if wildcard and name == WILDCARD:
            out.update(known)
        elif name in known:
            out.add(name)
        else:
            singular = what.rstrip("s")
            sheet.error(item, f"{singular} '{name}' is not defined (known: {_known(known)})")
            ok = False
    if ok and not out:
        sheet.error(node, f"{what} must name at least one")
        return None
    return frozenset(out) if ok else None


def _obligation(sheet: Sheet, name: str, node: Node) -> tuple[bool, Any]:
    kind = OBLIGATIONS[name]
    what = f"obligation '{name}'"
    if kind == "str":
        value: Any = sheet.string(node, what)
    elif kind == "bool":
        value = sheet.boolean(node, what)
    elif kind == "pos_number":
        value = sheet.number(node, what)
        if value is not None and value <= 0:
            sheet.error(node, f"{what} must be greater than 0, got {value:g}")
            value = None
    elif kind == "prob":
        value = sheet.number(node, what)
        if value is not None and not 0 <= value < 1:
            sheet.error(node, f"{what} must be in [0, 1), got {value:g}")
            value = None
    elif kind == "pos_int":
        value = sheet.integer(node, what)
        if value is not None and value < 1:
            sheet.error(node, f"{what} must be at least 1, got {value}")
            value = None
    elif kind == "role":
        value = sheet.string(node, what)
        if value is not None and value not in ROLES:
            sheet.error(node, f"{what}: role '{value}' is not defined (known: {_known(ROLES)})")
            value = None
    else:  # psi_reveal
        value = sheet.string(node, what)
        if value is not None and value not in PSI_REVEAL:
            sheet.error(node, f"{what} must be one of: {_known(PSI_REVEAL)}")
            value = None
    return value is not None, value


def _obligations(sheet: Sheet, node: Node, rule_id: str) -> dict[str, object] | None:
    items = sheet.mapping(node, f"rule '{rule_id}' obligations")
    if items is None:
        return None
    out: dict[str, object] = {}
    ok = True
    for name, (key_node, value_node) in items.items():
        if name not in OBLIGATIONS:
            sheet.error(
                key_node,
                f"obligation '{name}' is not defined (known: {_known(list(OBLIGATIONS))})",
            )
            ok = False
            continue
        good, value = _obligation(sheet, name, value_node)
        ok = ok and good
        out[name] = value
    return out if ok else None


def _purposes(
    sheet: Sheet, listed: list[tuple[str, Node]], rule_id: str
) -> list[tuple[str, Node]] | None:
    """The listed purposes in the one form the engine compares (``exchange.purposes``),
    or None after reporting one that cannot mean what it says: blank once invisible
    characters are dropped, or ``*`` (not a wildcard here: it would match only a request
    whose purpose is literally ``*``, and a deny rule would hold for nothing else)."""
    out: list[tuple[str, Node]] = []
    ok = True
    for value, item in listed:
        plain = normalise_purpose(value)
        if plain is None:
            sheet.error(item, f"rule '{rule_id}': condition 'purposes': {value!r} is no purpose "
                              "(only spaces or invisible characters)")
            ok = False
        elif plain == ALL_PURPOSES:
            sheet.error(item, f"rule '{rule_id}': condition 'purposes': '*' is not a wildcard here; "
                              "leave the condition out to match every purpose")
            ok = False
        else:
            out.append((plain, item))
    return out if ok else None


def _conditions(sheet: Sheet, node: Node, rule_id: str) -> tuple[tuple[str, Any], ...] | None:
    items = sheet.mapping(node, f"rule '{rule_id}' conditions")
    if items is None:
        return None
    out: list[tuple[str, Any]] = []
    ok = True
    for name, (key_node, value_node) in items.items():
        kind = CONDITIONS.get(name)
        if kind is None:
            sheet.error(
                key_node,
                f"condition '{name}' is not defined (known: {_known(list(CONDITIONS))})",
            )
            ok = False
        elif kind == "bool":
            flag = sheet.boolean(value_node, f"condition '{name}'")
            ok = ok and flag is not None
            out.append((name, flag))
        else:
            listed = sheet.names(value_node, f"condition '{name}'")
            ok = ok and bool(listed)
            if name == "purposes" and listed:
                listed = _purposes(sheet, listed, rule_id)
                ok = ok and listed is not None
            out.append((name, frozenset(v for v, _ in listed or ())))
    return tuple(sorted(out, key=lambda kv: kv[0])) if ok else None


def parse_rules(
    sheet: Sheet,
    node: Node,
    grade_ids: list[str],
    start_order: int,
    seen_ids: dict[str, str],
) -> list[Rule]:
    """Rules of one ``rules:`` list. Problems go to ``sheet``; a rule with any problem is
    left out of the result (the whole set is rejected anyway). ``seen_ids`` maps rule ids
    already defined (in any file) to where, to report duplicates."""
    items = sheet.sequence(node, "rules")
    if items is None:
        return []
    rules: list[Rule] = []
    for offset, item in enumerate(items):
        fields = sheet.mapping(item, "rule")
        if fields is None:
            continue
        before = len(sheet.problems)
        rule_id = "?"
        if "id" in fields:
            rule_id = sheet.string(fields["id"][1], "rule id") or "?"
            where = f"{sheet.path}:{sheet.line(fields['id'][1])}"
            if rule_id in seen_ids:
                sheet.error(
                    fields["id"][1],
                    f"duplicate rule id '{rule_id}' (first at {seen_ids[rule_id]})",
                )
            elif rule_id != "?":
                seen_ids[rule_id] = where
        what = f"rule '{rule_id}'"
        sheet.keys(fields, item, what, allowed=_RULE_KEYS, required=_REQUIRED)
        priority = (
            sheet.integer(fields["priority"][1], f"{what} priority")
            if "priority" in fields
            else None
        )
        roles = (
            _names(sheet, fields["roles"][1], "roles", ROLES, True) if "roles" in fields else None
        )
        actions = (
            _names(sheet, fields["actions"][1], "actions", ACTIONS, True)
            if "actions" in fields
            else None
        )
        grades = (
            _names(sheet, fields["grades"][1], "grades", grade_ids, True)
            if "grades" in fields
            else None
        )
        effect = None
        if "effect" in fields:
            effect = sheet.string(fields["effect"][1], f"{what} effect")
            if effect is not None and effect not in EFFECTS:
                sheet.error(
                    fields["effect"][1],
                    f"{what}: effect '{effect}' is not defined (known: {_known(EFFECTS)})",
                )
        obligations: dict[str, object] | None = {}
        if "obligations" in fields:
            obligations = _obligations(sheet, fields["obligations"][1], rule_id)
            if effect == "deny" and obligations:
                sheet.error(
                    fields["obligations"][0],
                    f"{what}: a deny rule cannot carry obligations (they would never apply)",
                )
        conditions: tuple[tuple[str, Any], ...] | None = ()
        if "conditions" in fields:
            conditions = _conditions(sheet, fields["conditions"][1], rule_id)
        description = ""
        if "description" in fields:
            description = sheet.string(fields["description"][1], f"{what} description") or ""
        if len(sheet.problems) != before or rule_id == "?":
            continue
        assert priority is not None and roles is not None and actions is not None
        assert effect is not None and obligations is not None and conditions is not None
        rules.append(
            Rule(
                id=rule_id,
                priority=priority,
                roles=roles,
                actions=actions,
                grades=grades if "grades" in fields else None,
                effect=effect,  # type: ignore[arg-type]
                obligations=obligations,
                conditions=conditions,
                description=description,
                path=sheet.path,
                line=sheet.line(item),
                order=start_order + offset,
            )
        )
    return rules
