"""quanguard policy check / test / explain: output and exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from quanguard.cli.main import build_app
from tests.policy.conftest import SHIPPED, PolicyCopy

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def _explain(*args: str) -> tuple[int, str, str]:
    """``quanguard policy explain ARGS`` against the shipped policies."""
    return _run("policy", "explain", *args, "--dir", str(SHIPPED))


def test_check_shipped_policies_exits_0() -> None:
    code, out, _ = _run("policy", "check", str(SHIPPED))
    assert code == 0 and out.startswith("ok ")


def test_check_misspelled_grade_exits_1_naming_file_and_line(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]")
    line = policy_copy.line_of("roles.yaml", "L5")
    code, out, err = _run("policy", "check", str(policy_copy.root))
    assert code == 1
    expected = (
        f"{policy_copy.display('roles.yaml')}:{line}: grade 'L5' is not defined "
        "(known: L1 L2 L3 L4 core)"
    )
    assert out.splitlines() == [expected]
    assert "1 problem" in err


def test_check_lists_every_problem_and_json(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "roles: [reporter]", "roles: [reportr]")
    policy_copy.replace("grading.yaml", "grade: L4", "grade: L9")
    code, out, _ = _run("policy", "check", str(policy_copy.root), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    assert sorted(p["file"].rsplit("/", 1)[-1] for p in report["problems"]) == [
        "grading.yaml",
        "roles.yaml",
    ]


def test_check_missing_directory_is_one_line_error(tmp_path: object) -> None:
    code, out, err = _run("policy", "check", f"{tmp_path}/nope")
    assert code == 5 and out == ""
    assert err.startswith("error: policy directory") and err.count("\n") == 1


def test_policy_test_passes_on_shipped_cases() -> None:
    code, out, _ = _run("policy", "test", str(SHIPPED), "--format", "json")
    run = json.loads(out)
    assert code == 0 and run["ok"] and run["passed"] == run["total"] >= 40


def test_policy_test_fails_on_a_wrong_case(policy_copy: PolicyCopy) -> None:
    policy_copy.replace(
        "tests/consumer.yaml",
        "expect: {effect: deny, rule: consumer-no-raw}",
        "expect: {effect: allow, rule: consumer-no-raw}",
    )
    code, out, err = _run("policy", "test", str(policy_copy.root))
    assert code == 1
    line = policy_copy.line_of("tests/consumer.yaml", "使用方不得读取 L2 原文")
    assert f"consumer.yaml:{line}: 使用方不得读取 L2 原文: effect: expected allow, got deny" in out
    assert "FAIL" in out and "cases passed" in err


def test_policy_test_reports_invalid_policy(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]")
    code, out, _ = _run("policy", "test", str(policy_copy.root))
    assert code == 1 and "grade 'L5' is not defined" in out


def test_explain_json() -> None:
    code, out, _ = _explain("--role", "consumer", "--action", "aggregate", "--grade", "L3",
                            "--org", "丙行", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["decision"]["effect"] == "approval_required"
    assert result["decision"]["rule_id"] == "consumer-aggregate-l3"
    assert result["candidates"][0]["rule_id"] == "consumer-aggregate-l3"


def test_explain_shows_why_same_org_failed() -> None:
    code, out, _ = _explain("--role", "provider", "--action", "export", "--grade", "L3",
                            "--org", "甲局", "--owner-org", "乙局")
    assert code == 0
    assert "deny" in out and "default deny" in out and "same_org" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--role", "mayor", "--action", "read_raw"], "unknown role 'mayor'"),
        (["--role", "consumer", "--action", "peek"], "unknown action 'peek'"),
        (["--role", "consumer", "--action", "read_raw", "--grade", "L9"], "unknown grade 'L9'"),
    ],
)
def test_explain_unknown_names_exit_2(args: list[str], fragment: str) -> None:
    code, out, err = _explain(*args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {fragment}") and "known:" in err


def test_check_defaults_to_the_configured_directory(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "roles: [reporter]", "roles: [reportr]")
    result = runner.invoke(
        build_app(), ["policy", "check"], env={"QUANGUARD_POLICY_DIR": str(policy_copy.root)}
    )
    assert result.exit_code == 1 and "role 'reportr' is not defined" in result.stdout
