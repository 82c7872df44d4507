"""policy check also validates masking.yaml and alerts.yaml through their owners' loaders."""

from __future__ import annotations

import pytest

from quanguard.policy import check_policy_dir, foreign
from tests.policy.conftest import PolicyCopy


def test_foreign_problems_are_reported(
    policy_copy: PolicyCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_copy.path("masking.yaml").write_text("profiles: {}\n", encoding="utf-8")
    monkeypatch.setattr(
        foreign,
        "FOREIGN_LOADERS",
        {"masking.yaml": ("tests.policy.fake_loaders", "load_bad")},
    )
    problems = check_policy_dir(policy_copy.root)
    assert [str(p) for p in problems] == [
        f"{policy_copy.display('masking.yaml')}:7: operator 'blurr' is not defined"
    ]


def test_foreign_ok_and_missing_loader_are_silent(
    policy_copy: PolicyCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_copy.path("masking.yaml").write_text("profiles: {}\n", encoding="utf-8")
    policy_copy.path("alerts.yaml").write_text("rules: oops\n", encoding="utf-8")
    monkeypatch.setattr(
        foreign,
        "FOREIGN_LOADERS",
        {
            "masking.yaml": ("tests.policy.fake_loaders", "load_ok"),
            "alerts.yaml": ("no_such_module_here", "load_alert_rules"),
        },
    )
    assert check_policy_dir(policy_copy.root) == []


def test_foreign_files_are_not_parsed_as_rule_files(
    policy_copy: PolicyCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(foreign, "FOREIGN_LOADERS", {})
    policy_copy.path("alerts.yaml").write_text("anything: [1, 2]\n", encoding="utf-8")
    assert check_policy_dir(policy_copy.root, foreign=False) == []


def test_mask_profile_must_exist_in_masking_yaml(
    policy_copy: PolicyCopy, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_copy.path("masking.yaml").write_text("profiles: {}\n", encoding="utf-8")
    monkeypatch.setattr(
        foreign, "FOREIGN_LOADERS", {"masking.yaml": ("tests.policy.fake_loaders", "load_profiles")}
    )
    assert check_policy_dir(policy_copy.root) == []
    policy_copy.replace("roles.yaml", "mask_profile: 开放", "mask_profile: 公开")
    line = policy_copy.line_of("roles.yaml", "id: consumer-extract-l1")
    (problem,) = check_policy_dir(policy_copy.root)
    assert str(problem) == (
        f"{policy_copy.display('roles.yaml')}:{line}: rule 'consumer-extract-l1': mask_profile "
        f"'公开' is not a profile of {policy_copy.display('masking.yaml')} (known: 开放 共享 分析)"
    )
