"""Policy test cases (``policies/tests/*.yaml``): request → expected decision.

cases:
  - name: 使用方对 L3 数据聚合须审批
    principal: {role: consumer, org: 某商业银行}
    action: aggregate
    resource: {grade: L3, owner_org: 市人社局}
    expect:
      effect: approval_required
      rule: consumer-aggregate-l3      # null: no rule may match (default deny)
      obligations: {epsilon_cap: 1.0}  # optional; compared exactly when given
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yaml.nodes import Node

from quanguard.policy.engine import PolicySet
from quanguard.policy.model import Decision, Problem, Resource, SubjectRef
from quanguard.policy.vocab import ACTIONS, EFFECTS, ROLES
from quanguard.policy.yamlnodes import Sheet, read_sheet

__all__ = ["Case", "CaseResult", "load_cases", "run_cases"]

_UNSET = object()


@dataclass(frozen=True)
class Case:
    name: str
    principal: SubjectRef
    action: str
    resource: Resource
    effect: str
    rule: str | None
    obligations: dict[str, object] | None
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class CaseResult:
    case: Case
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def _check_known(sheet: Sheet, node: Node, label: str, value: str | None, known: Collection[str]) -> None:
    if value is not None and value not in known:
        sheet.error(node, f"{label} '{value}' is not defined (known: {' '.join(known)})")


def _parse_case(sheet: Sheet, node: Any, policy: PolicySet, index: int) -> Case | None:
    fields = sheet.mapping(node, "case")
    if fields is None:
        return None
    before = len(sheet.problems)
    sheet.keys(
        fields,
        node,
        "case",
        allowed=("name", "principal", "action", "resource", "expect"),
        required=("principal", "action", "expect"),
    )
    name = f"case {index + 1}"
    if "name" in fields:
        name = sheet.string(fields["name"][1], "case name") or name
    role = org = None
    if "principal" in fields:
        pf = sheet.record(fields["principal"][1], "principal", allowed=("role", "org", "id"),
                          required=("role",)) or {}
        if "role" in pf:
            role = sheet.string(pf["role"][1], "principal role")
            _check_known(sheet, pf["role"][1], "role", role, ROLES)
        org = sheet.string(pf["org"][1], "principal org") if "org" in pf else "市大数据局"
    action = sheet.string(fields["action"][1], "action") if "action" in fields else None
    if action is not None:
        _check_known(sheet, fields["action"][1], "action", action, ACTIONS)
    res: dict[str, str | None] = {}
    if "resource" in fields:
        rf = sheet.record(fields["resource"][1], "resource",
                          allowed=("grade", "dataset", "owner_org", "purpose")) or {}
        for key, (_, value_node) in rf.items():
            res[key] = sheet.string(value_node, f"resource {key}")
        grade = res.get("grade")
        if grade is not None:
            _check_known(sheet, rf["grade"][1], "grade", grade, policy.grade_order)
    effect: str | None = None
    rule: Any = _UNSET
    obligations: dict[str, object] | None = None
    if "expect" in fields:
        ef = sheet.record(fields["expect"][1], "expect", allowed=("effect", "rule", "obligations"),
                          required=("effect", "rule")) or {}
        if "effect" in ef:
            effect = sheet.string(ef["effect"][1], "expected effect")
            _check_known(sheet, ef["effect"][1], "effect", effect, EFFECTS)
        if "rule" in ef:
            rule = (
                sheet.scalar(ef["rule"][1])
                if ef["rule"][1].tag.endswith(":null")
                else (sheet.string(ef["rule"][1], "expected rule"))
            )
            known = {r.id for r in policy.rules}
            if rule is not None and rule not in known:
                sheet.error(ef["rule"][1], f"rule '{rule}' is not defined in the policy")
        if "obligations" in ef:
            om = sheet.mapping(ef["obligations"][1], "expected obligations")
            if om is not None:
                obligations = {k: sheet.scalar(v) for k, (_, v) in om.items()}
    if len(sheet.problems) != before or role is None or org is None or action is None:
        return None
    if effect is None or rule is _UNSET:
        return None
    return Case(
        name=name,
        principal=SubjectRef(role=role, org=org, id="case"),
        action=action,
        resource=Resource(**res),
        effect=effect,
        rule=rule,
        obligations=obligations,
        path=sheet.path,
        line=sheet.line(node),
    )


def load_cases(directory: Path, policy: PolicySet) -> tuple[list[Case], list[Problem]]:
    """Cases of every ``*.yaml`` under ``directory`` (sorted); problems with file:line."""
    cases: list[Case] = []
    problems: list[Problem] = []
    files = sorted(p for p in directory.glob("*.y*ml") if p.is_file()) if directory.is_dir() else []
    for path in files:
        sheet = read_sheet(path, str(path))
        if sheet.root is not None:
            top = sheet.record(sheet.root, path.name, allowed=("cases",), required=("cases",))
            if top is not None:
                items = sheet.sequence(top["cases"][1], "cases") if "cases" in top else None
                for i, item in enumerate(items or []):
                    case = _parse_case(sheet, item, policy, i)
                    if case is not None:
                        cases.append(case)
        problems.extend(sheet.problems)
    if not files:
        problems.append(Problem(str(directory), 1, "no case files (*.yaml) found"))
    return cases, problems


def run_case(policy: PolicySet, case: Case) -> CaseResult:
    decision = policy.decide(case.principal, case.action, case.resource)
    failures = []
    if decision.effect != case.effect:
        failures.append(f"effect: expected {case.effect}, got {decision.effect}")
    if decision.rule_id != case.rule:
        want = case.rule or "no rule (default deny)"
        got = decision.rule_id or "no rule (default deny)"
        failures.append(f"rule: expected {want}, got {got}")
    if case.obligations is not None and decision.obligations != case.obligations:
        failures.append(f"obligations: expected {case.obligations}, got {decision.obligations}")
    return CaseResult(case, decision, tuple(failures))


def run_cases(policy: PolicySet, cases: list[Case]) -> list[CaseResult]:
    return [run_case(policy, case) for case in cases]
