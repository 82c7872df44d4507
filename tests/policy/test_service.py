"""PolicyService: safe reload, auto-reload on change, grading helpers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from quanguard.policy import PolicyInvalid, Resource, UnknownName
from quanguard.services.policy import PolicyService
from tests.policy.conftest import PolicyCopy

if TYPE_CHECKING:
    from quanguard.container import Container


@dataclass(frozen=True)
class Who:
    role: str
    org: str


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _bump_mtime(path: os.PathLike[str]) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def test_reload_keeps_previous_version_when_invalid(policy_copy: PolicyCopy) -> None:
    service = PolicyService.load(policy_copy.root)
    before = service.version
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]")
    result = service.reload()
    assert not result.ok and not result.changed
    assert result.version == result.previous_version == before == service.version
    line = policy_copy.line_of("roles.yaml", "L5")
    assert any(
        str(p).startswith(f"{policy_copy.display('roles.yaml')}:{line}: grade 'L5'")
        for p in result.problems
    )
    assert service.last_problems == result.problems
    # decisions still come from the previous version
    decision = service.decide(Who("consumer", "丙行"), "aggregate", Resource(grade="L2"))
    assert decision.policy_version == before and decision.effect == "allow"


def test_reload_applies_valid_change(policy_copy: PolicyCopy) -> None:
    service = PolicyService.load(policy_copy.root)
    before = service.version
    assert service.reload().changed is False  # same bytes, same version
    policy_copy.replace("roles.yaml", "epsilon_cap: 2.0", "epsilon_cap: 1.5")
    result = service.reload()
    assert result.ok and result.changed and result.previous_version == before
    decision = service.decide(Who("consumer", "丙行"), "aggregate", Resource(grade="L2"))
    assert decision.obligations["epsilon_cap"] == 1.5
    assert decision.policy_version == result.version != before
    assert service.last_problems == ()


def test_auto_reload_checks_at_most_once_per_interval(policy_copy: PolicyCopy) -> None:
    clock = FakeClock()
    service = PolicyService(policy_copy.root, clock=clock, check_interval=1.0)
    before = service.version
    policy_copy.replace("roles.yaml", "epsilon_cap: 2.0", "epsilon_cap: 1.5")
    _bump_mtime(policy_copy.path("roles.yaml"))
    clock.now = 0.5
    assert service.version == before  # not yet time to look
    clock.now = 1.0
    assert service.version != before  # looked, found the change, reloaded


def test_auto_reload_of_broken_files_keeps_serving(policy_copy: PolicyCopy) -> None:
    clock = FakeClock()
    service = PolicyService(policy_copy.root, clock=clock)
    before = service.version
    policy_copy.path("roles.yaml").write_bytes(b"rules: [\n")
    clock.now = 2.0
    decision = service.decide(Who("admin", "市大数据局"), "key_admin")
    assert decision.effect == "allow" and decision.policy_version == before
    assert service.last_problems and "malformed YAML" in service.last_problems[0].message


def test_load_of_invalid_directory_fails(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("grading.yaml", "default_grade: L3", "default_grade: L7")
    with pytest.raises(PolicyInvalid) as info:
        PolicyService.load(policy_copy.root)
    assert "grade 'L7' is not defined" in info.value.message


def test_grading_helpers(policy_copy: PolicyCopy) -> None:
    service = PolicyService.load(policy_copy.root)
    assert service.grade_order == ["L1", "L2", "L3", "L4", "core"]
    assert service.entity_grade("PHONE_NUMBER") == "L3"
    assert service.entity_category("CN_BANK_CARD") == "个人财产"
    assert service.entity_grade("SOMETHING_NEW") == "L3"  # default grade, strict
    # 就高从严: mixed data takes its highest grade
    grades = [service.entity_grade(e) for e in ("CN_USCC", "PERSON", "CN_RESIDENT_ID")]
    assert service.max_grade(grades) == "L4"
    assert service.max_grade([]) == "L1"
    with pytest.raises(UnknownName):
        service.max_grade(["L1", "L9"])


@pytest.mark.parametrize(
    ("role", "action", "grade", "what"),
    [
        ("mayor", "read_raw", "L1", "role"),
        ("consumer", "peek", "L1", "action"),
        ("consumer", "read_raw", "L9", "grade"),
    ],
)
def test_unknown_names_in_a_request_raise(
    policy_copy: PolicyCopy, role: str, action: str, grade: str, what: str
) -> None:
    service = PolicyService.load(policy_copy.root)
    with pytest.raises(UnknownName) as info:
        service.decide(Who(role, "甲局"), action, Resource(grade=grade))
    assert info.value.kind == "invalid" and info.value.what == what
    assert "known:" in info.value.message


def test_vanished_directory_keeps_serving(policy_copy: PolicyCopy) -> None:
    import shutil

    clock = FakeClock()
    service = PolicyService(policy_copy.root, clock=clock)
    before = service.version
    shutil.rmtree(policy_copy.root)
    clock.now = 5.0
    decision = service.decide(Who("reporter", "开放门户"), "report_events")
    assert decision.effect == "allow" and decision.policy_version == before
    result = service.reload()
    assert not result.ok and "cannot read policy files" in result.problems[0].message


def test_the_containers_policy_counts_every_decision_by_effect(container: Container) -> None:
    def count(effect: str) -> float:
        value = container.metrics.registry.get_sample_value(
            "quanguard_policy_decisions_total", {"effect": effect})
        return value or 0.0

    policy = container.policy
    assert policy.decide(Who("reporter", "开放门户"), "report_events").effect == "allow"
    assert policy.decide(Who("consumer", "丙行"), "aggregate", Resource(grade="L2")).effect == "allow"
    assert policy.decide(Who("reporter", "开放门户"), "key_admin").effect == "deny"
    assert (count("allow"), count("deny")) == (2.0, 1.0)
