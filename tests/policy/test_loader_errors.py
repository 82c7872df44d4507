"""Each kind of policy mistake is reported as file:line: message, all at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from quanguard.policy import PolicyInvalid, PolicyNotFound, load_policy_dir, validate_policy_dir
from tests.policy.conftest import PolicyCopy

Edit = Callable[[PolicyCopy], None]
_RULE = """
  - id: {id}
    priority: {priority}
    roles: [{roles}]
    actions: [{actions}]
    grades: [{grades}]
    effect: {effect}
"""


def _rule(**kw: object) -> str:
    values = {
        "id": "extra",
        "priority": 50,
        "roles": "consumer",
        "actions": "read_masked",
        "grades": "L2",
        "effect": "allow",
    }
    values.update(kw)
    return _RULE.format(**values)


# (case id, file, edit, needle on the expected line, fragment of the message)
MISTAKES: list[tuple[str, str, Edit, str, str]] = [
    (
        "misspelled grade",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]"),
        "L5",
        "grade 'L5' is not defined (known: L1 L2 L3 L4 core)",
    ),
    (
        "unknown role",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "roles: [reporter]", "roles: [reportr]"),
        "reportr",
        "role 'reportr' is not defined (known: admin officer",
    ),
    (
        "unknown action",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "actions: [key_admin]", "actions: [key_admn]"),
        "key_admn",
        "action 'key_admn' is not defined (known: read_raw",
    ),
    (
        "unknown obligation",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "      row_limit: 10000\n", "      row_limt: 10000\n"),
        "row_limt",
        "obligation 'row_limt' is not defined (known: mask_profile",
    ),
    (
        "priority not an integer",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "priority: 1000", "priority: high"),
        "priority: high",
        "priority must be an integer, got a string 'high'",
    ),
    (
        "epsilon written as text",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "epsilon_cap: 0.5", "epsilon_cap: 5e-1"),
        "5e-1",
        "must be a number",
    ),
    (
        "negative epsilon",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "epsilon_cap: 0.5", "epsilon_cap: -0.5"),
        "-0.5",
        "must be greater than 0",
    ),
    (
        "delta out of range",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "delta_cap: 1.0e-8", "delta_cap: 1.5"),
        "delta_cap: 1.5",
        "must be in [0, 1)",
    ),
    (
        "watermark not a boolean",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "watermark: true", "watermark: yes please"),
        "yes please",
        "must be true or false",
    ),
    (
        "psi_reveal unknown",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "psi_reveal: matches", "psi_reveal: everything"),
        "everything",
        "must be one of: count matches",
    ),
    (
        "approval names no role",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "approval: officer", "approval: mayor"),
        "mayor",
        "role 'mayor' is not defined",
    ),
    (
        "unknown effect",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "effect: approval_required", "effect: maybe"),
        "effect: maybe",
        "effect 'maybe' is not defined (known: allow deny approval_required)",
    ),
    (
        "misspelled rule key",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "    effect: deny\n", "    efect: deny\n"),
        "efect",
        "unknown key 'efect'",
    ),
    (
        "unknown condition",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "      same_org: true", "      same_city: true"),
        "same_city",
        "condition 'same_city' is not defined (known: same_org",
    ),
    (
        "deny with obligations",
        "roles.yaml",
        lambda p: p.append(
            "roles.yaml", _rule(effect="deny", priority=5) + "    obligations: {row_limit: 5}\n"
        ),
        "obligations: {row_limit: 5}",
        "a deny rule cannot carry obligations",
    ),
    (
        "duplicate rule id",
        "roles.yaml",
        lambda p: p.append("roles.yaml", _rule(id="open-data", grades="L3", actions="scan")),
        "id: open-data",
        "duplicate rule id 'open-data' (first at",
    ),
    (
        "duplicate key",
        "roles.yaml",
        lambda p: p.replace(
            "roles.yaml", "    priority: 1000\n", "    priority: 1000\n    priority: 1\n"
        ),
        "priority: 1\n",
        "duplicate key 'priority'",
    ),
    (
        "shadowed allow",
        "roles.yaml",
        lambda p: p.append("roles.yaml", _rule(id="shadowed", priority=50)),
        "id: shadowed",
        "rule 'shadowed' is unreachable: rule 'consumer-read-masked'",
    ),
    (
        "allow under a wider deny",
        "roles.yaml",
        lambda p: p.append(
            "roles.yaml", _rule(id="raw-l3", priority=2000, actions="read_raw", grades="L3")
        ),
        "id: raw-l3",
        "rule 'raw-l3' is unreachable: rule 'consumer-no-raw'",
    ),
    (
        "never-leaves grade released",
        "roles.yaml",
        lambda p: p.append(
            "roles.yaml",
            _rule(id="sealed-leak", roles="manager", actions="scan, export", grades="core"),
        ),
        "id: sealed-leak",
        "would let grade core leave (export)",
    ),
    (
        "malformed YAML",
        "roles.yaml",
        lambda p: p.replace("roles.yaml", "grades: [core]", "grades: [core"),
        "effect: deny",
        "malformed YAML: did not find expected ',' or ']' (while parsing a flow sequence",
    ),
    (
        "grading names unknown grade",
        "grading.yaml",
        lambda p: p.replace("grading.yaml", "grade: L4", "grade: L9"),
        "grade: L9",
        "grade 'L9' is not defined (known: L1 L2 L3 L4 core)",
    ),
    (
        "entity in two categories",
        "grading.yaml",
        lambda p: p.replace(
            "grading.yaml", "entities: [PERSON]", "entities: [PERSON, CN_BANK_CARD]"
        ),
        "PERSON, CN_BANK_CARD",
        "entity 'CN_BANK_CARD' is already in category '个人财产'",
    ),
    (
        "lower-case entity",
        "grading.yaml",
        lambda p: p.replace("grading.yaml", "entities: [PERSON]", "entities: [person]"),
        "[person]",
        "entity 'person' must be an UPPER_CASE name",
    ),
    (
        "duplicate grade",
        "grades.yaml",
        lambda p: p.replace("grades.yaml", "  - id: L4\n", "  - id: L3\n"),
        "id: L3",
        "duplicate grade 'L3'",
    ),
]


@pytest.mark.parametrize(
    ("file_name", "edit", "needle", "fragment"),
    [pytest.param(f, e, n, m, id=i) for i, f, e, n, m in MISTAKES],
)
def test_mistake_is_reported_with_file_and_line(
    policy_copy: PolicyCopy, file_name: str, edit: Edit, needle: str, fragment: str
) -> None:
    edit(policy_copy)
    nth = 2 if needle in ("id: open-data", "id: L3", "priority: 1\n") else 1
    needle = needle.rstrip("\n")
    if needle == "priority: 1":
        expected_line = policy_copy.line_of(file_name, "    priority: 1", 2)
    else:
        expected_line = policy_copy.line_of(file_name, needle, nth)
    problems = validate_policy_dir(policy_copy.root)
    rendered = [str(p) for p in problems]
    prefix = f"{policy_copy.display(file_name)}:{expected_line}: "
    assert any(r.startswith(prefix) and fragment in r for r in rendered), rendered
    with pytest.raises(PolicyInvalid) as info:
        load_policy_dir(policy_copy.root)
    assert info.value.kind == "invalid"
    assert [str(p) for p in info.value.problems] == rendered


def test_non_utf8_file_names_the_line(policy_copy: PolicyCopy) -> None:
    path = policy_copy.path("roles.yaml")
    data = path.read_bytes().decode("utf-8").encode("gb18030")
    path.write_bytes(data)
    first_non_ascii = next(i for i, b in enumerate(data) if b >= 0x80)
    line = data.count(b"\n", 0, first_non_ascii) + 1
    (problem,) = validate_policy_dir(policy_copy.root)
    assert (problem.path, problem.line) == (policy_copy.display("roles.yaml"), line)
    assert "not UTF-8" in problem.message


def test_every_problem_is_collected_not_just_the_first(policy_copy: PolicyCopy) -> None:
    policy_copy.replace("roles.yaml", "grades: [L1, L2, L3]", "grades: [L1, L2, L5]")
    policy_copy.replace("roles.yaml", "roles: [reporter]", "roles: [reportr]")
    policy_copy.replace("grading.yaml", "grade: L4", "grade: L9")
    policy_copy.path("extra.yaml").write_bytes(b"rules: [\n")
    problems = validate_policy_dir(policy_copy.root)
    files = {Path(p.path).name for p in problems}
    assert files == {"roles.yaml", "grading.yaml", "extra.yaml"}
    assert len(problems) == 4


@pytest.mark.parametrize("name", ["grades.yaml", "grading.yaml", "roles.yaml"])
def test_missing_required_file(policy_copy: PolicyCopy, name: str) -> None:
    policy_copy.path(name).unlink()
    problems = validate_policy_dir(policy_copy.root)
    assert f"{policy_copy.display(name)}:1: required file is missing" in [str(p) for p in problems]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "file is empty"),
        ("rules: []\n", "no rules: an empty policy is refused"),
        ("rules: {a: 1}\n", "rules must be a list"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_empty_or_wrong_shaped_rule_file_fails_closed(
    policy_copy: PolicyCopy, content: str, fragment: str
) -> None:
    policy_copy.path("roles.yaml").write_text(content, encoding="utf-8")
    problems = validate_policy_dir(policy_copy.root)
    assert any(fragment in p.message for p in problems), problems


def test_unknown_extra_file_is_reported(policy_copy: PolicyCopy) -> None:
    policy_copy.path("notes.yaml").write_text("hello: world\n", encoding="utf-8")
    (problem,) = validate_policy_dir(policy_copy.root)
    assert problem.path.endswith("notes.yaml") and "not a policy file" in problem.message


def test_extra_rule_file_adds_rules(policy_copy: PolicyCopy) -> None:
    policy_copy.path("more.yaml").write_text(
        "rules:" + _rule(id="consumer-scan-own", actions="scan", grades="L1"), encoding="utf-8"
    )
    policy = load_policy_dir(policy_copy.root)
    assert "consumer-scan-own" in {r.id for r in policy.rules}


def test_missing_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(PolicyNotFound) as info:
        load_policy_dir(tmp_path / "nope")
    assert info.value.kind == "not_found"
