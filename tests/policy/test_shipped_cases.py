"""The shipped policy validates and every case in policies/tests/ passes."""

from __future__ import annotations

from itertools import product

import pytest

from quanguard.policy import ROLES, check_policy_dir, load_cases, load_policy_dir, run_cases
from quanguard.policy.cases import Case, run_case
from tests.policy.conftest import SHIPPED

POLICY = load_policy_dir(SHIPPED)
CASES, CASE_PROBLEMS = load_cases(SHIPPED / "tests", POLICY)


def test_shipped_policy_and_cases_validate() -> None:
    assert check_policy_dir(SHIPPED) == []
    assert CASE_PROBLEMS == []


def test_at_least_40_cases_covering_every_role_and_grade() -> None:
    assert len(CASES) >= 40
    covered = {(c.principal.role, c.resource.grade) for c in CASES}
    missing = [
        (role, grade)
        for role, grade in product(ROLES, POLICY.grade_order)
        if (role, grade) not in covered
    ]
    assert missing == []


def test_cases_exercise_every_effect_and_the_default_deny() -> None:
    effects = {c.effect for c in CASES}
    assert effects == {"allow", "deny", "approval_required"}
    assert any(c.rule is None for c in CASES)
    assert any(c.rule is not None and c.effect == "deny" for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.where}" for c in CASES])
def test_case(case: Case) -> None:
    result = run_case(POLICY, case)
    assert result.passed, f"{case.where} {case.name}: {'; '.join(result.failures)}"


def test_a_wrong_expectation_fails(policy_copy: object) -> None:
    case = CASES[0]
    flipped = Case(
        name=case.name,
        principal=case.principal,
        action=case.action,
        resource=case.resource,
        effect="deny" if case.effect != "deny" else "allow",
        rule=case.rule,
        obligations=case.obligations,
        path=case.path,
        line=case.line,
    )
    (result,) = run_cases(POLICY, [flipped])
    assert not result.passed and result.failures[0].startswith("effect: expected")


def test_shipped_grading_covers_the_issue_entities() -> None:
    from desensitize.findings import ENTITIES  # every entity the scanner reports

    for entity in ENTITIES:
        assert POLICY.entity_category(entity) is not None, entity
    assert POLICY.entity_grade("CN_RESIDENT_ID") == "L4"
    assert POLICY.entity_grade("CN_USCC") == "L1"
    assert POLICY.grade_order == ["L1", "L2", "L3", "L4", "core"]
