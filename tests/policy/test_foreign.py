"""policy check validates masking.yaml and alerts.yaml through their owners' parsers, and
checks every name they use against the rest of the directory (real parsers, no stand-ins)."""

from __future__ import annotations

from quanguard.policy import check_policy_dir
from tests.policy.conftest import PolicyCopy


def _messages(policy_copy: PolicyCopy) -> list[str]:
    return [str(p) for p in check_policy_dir(policy_copy.root)]


def test_masking_operator_problem_names_file_and_line(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("masking.yaml", "PHONE_NUMBER: {op: mask}", "PHONE_NUMBER: {op: blurr}")
    line = policy_copy.line_of("masking.yaml", "op: blurr")
    (message,) = _messages(policy_copy)
    assert message.startswith(f"{policy_copy.display('masking.yaml')}:{line}: ")
    assert "blurr" in message


def test_alerts_shape_problem_names_file_and_line(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("alerts.yaml", "severity: critical", "severity: dire")
    line = policy_copy.line_of("alerts.yaml", "severity: dire")
    (message,) = _messages(policy_copy)
    assert message.startswith(f"{policy_copy.display('alerts.yaml')}:{line}: severity")


def test_foreign_files_are_not_parsed_as_rule_files(policy_copy: PolicyCopy) -> None:
    # alerts.yaml has a top-level 'rules:' list too; it is never read as policy rules
    assert check_policy_dir(policy_copy.root) == []


def test_mask_profile_must_exist_in_masking_yaml(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "mask_profile: 开放", "mask_profile: 公开")
    line = policy_copy.line_of("roles.yaml", "id: consumer-extract-l1")
    (message,) = _messages(policy_copy)
    assert message == (
        f"{policy_copy.display('roles.yaml')}:{line}: rule 'consumer-extract-l1': mask_profile "
        f"'公开' is not a profile of {policy_copy.display('masking.yaml')} (known: 开放 共享 分析)"
    )


def test_mask_profile_without_masking_yaml(policy_copy: PolicyCopy) -> None:
    policy_copy.path("masking.yaml").unlink()
    messages = _messages(policy_copy)
    assert messages and all("there is no masking.yaml" in m for m in messages)


def test_other_files_are_still_checked_when_roles_are_broken(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]")
    policy_copy.replace("masking.yaml", "PHONE_NUMBER: {op: mask}", "PHONE_NUMBER: {op: blurr}")
    files = {m.split(":", 1)[0] for m in _messages(policy_copy)}
    assert files == {policy_copy.display("roles.yaml"), policy_copy.display("masking.yaml")}


def test_bad_role_and_operator_are_reported_together(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "roles: [auditor, manager, officer]",
                        "roles: [auditor, manger, officer]")
    policy_copy.replace("masking.yaml", "PHONE_NUMBER: {op: mask}", "PHONE_NUMBER: {op: msk}")
    messages = _messages(policy_copy)
    assert any(policy_copy.display("roles.yaml") in m and "manger" in m for m in messages)
    assert any(policy_copy.display("masking.yaml") in m and "msk" in m for m in messages)
