"""The usability bound of watermarks is policy: ``policies/watermark.yaml``, validated with
``file:line`` errors by the same pass as every policy file, and it decides the marks."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from quanguard.container import Container
from quanguard.policy import check_policy_dir
from quanguard.policy.bundle import load_bundle
from quanguard.services.watermark import WatermarkService
from tests.policy.conftest import PolicyCopy
from tests.watermark import attacks
from tests.watermark.conftest import SECRET, registered
from watermark import Params, detect_table, embed_table

REPO = Path(__file__).resolve().parents[2]
RECIPIENTS = [f"consumer-{i:04d}" for i in range(1000)]


@pytest.fixture
def policy_copy(tmp_path: Path) -> PolicyCopy:
    return PolicyCopy(tmp_path / "policies")


def _messages(policy_copy: PolicyCopy) -> list[str]:
    return [str(p) for p in check_policy_dir(policy_copy.root)]


def test_shipped_watermark_policy_is_valid_and_maps_grades_to_profiles() -> None:
    marks = load_bundle(REPO / "policies").watermark
    assert marks is not None
    assert marks.for_grade("L2").params().max_step == 10
    # a grade nobody determined is bounded as the highest mapped grade (L4: 严格)
    assert marks.for_grade(None).name == marks.for_grade("L4").name == "严格"
    assert marks.profiles["粗取整"].params().max_step == 100
    strict = marks.for_grade("L4").params()
    assert (strict.max_rel_error, strict.max_step, strict.date_shift) == (0.01, 1, False)
    assert marks.for_grade("L2").name == marks.default


@pytest.mark.parametrize(("old", "new", "needle", "says"), [
    ("max_step: 100", "max_step: 50", "max_step: 50", "power of ten"),
    ("max_rel_error: 0.01", "max_rel_error: 0.5", "max_rel_error: 0.5", "at most 0.1"),
    ("max_drift: 0.001\n    max_step: 100", "max_drift: 1.0e-5x\n    max_step: 100",
     "max_drift: 1.0e-5x", "must be a number"),
    ("date_shift: false", "date_shift: no-way", "date_shift: no-way", "true or false"),
    ("    masked: true", "    masks: true", "masks: true", "unknown key 'masks'"),
    ("default_profile: 标准", "default_profile: 宽松", "default_profile: 宽松",
     "'宽松' is not a profile"),
    ("  L4: 严格", "  L9: 严格", "L9: 严格", "unknown grade 'L9'"),
    ("  L4: 严格", "  L4: 最严", "L4: 最严", "'最严' is not a profile"),
])
def test_a_bad_bound_names_file_and_line(policy_copy: PolicyCopy, old: str, new: str, needle: str, says: str) -> None:
    policy_copy.replace("watermark.yaml", old, new)
    line = policy_copy.line_of("watermark.yaml", needle)
    (message,) = _messages(policy_copy)
    assert message.startswith(f"{policy_copy.display('watermark.yaml')}:{line}: "), message
    assert says in message


def test_without_watermark_yaml_the_built_in_bound_holds(policy_copy: PolicyCopy) -> None:
    policy_copy.path("watermark.yaml").unlink()
    assert _messages(policy_copy) == []
    assert load_bundle(policy_copy.root).watermark is None


def test_params_take_the_bound_from_the_policy_not_the_caller() -> None:
    marks = load_bundle(REPO / "policies").watermark
    service = WatermarkService.__new__(WatermarkService)
    service._container = cast(Container, SimpleNamespace(policy=SimpleNamespace(
        bundle=SimpleNamespace(watermark=marks))))
    asked = Params(gamma=4, max_rel_error=0.09, max_step=1000, columns=("x",))
    got = service.bounded(asked, "L4")
    assert (got.gamma, got.columns) == (4, ("x",))  # the caller's choices stay
    assert (got.max_rel_error, got.max_step, got.date_shift) == (0.01, 1, False)
    assert service.bounded(None, "L2").max_step == 10
    assert service.bounded(None).max_step == 1  # no grade: bounded as the strictest


def test_round_to_100_survives_only_where_the_profile_allows_coarse_marks() -> None:
    marks = load_bundle(REPO / "policies").watermark
    table = attacks.issue_table(4000, seed=3)
    income = "月收入"
    assert marks is not None
    standard, rep = embed_table(table, SECRET, RECIPIENTS[5], marks.profiles["标准"].params())
    assert max(c.levels[-1] for c in rep.plan.carriers if c.kind == "numeric") <= 1
    coarse, rep_c = embed_table(table, SECRET, RECIPIENTS[5], marks.profiles["粗取整"].params())
    levels = {c.name: c.levels for c in rep_c.plan.carriers}
    assert 2 in levels[income]
    moved = [abs(float(a) - float(b)) for a, b in
             zip(table.column(income).to_pylist(), coarse.column(income).to_pylist(),
                 strict=True)]
    assert max(moved) == pytest.approx(100, abs=1e-6)
    # Only 月收入 left, rounded to 100: the coarse profile's ±100 marks survive ...
    attack = attacks.chain(attacks.drop("公积金缴存额", "用电量"),
                           attacks.round_to(100, (income,)))
    v = detect_table(attack(coarse, random.Random(1)), SECRET,
                     registered(SECRET, rep_c.plan, RECIPIENTS))
    assert v.recipient == RECIPIENTS[5] and v.p_value is not None and v.p_value < 1e-6
    assert [c.recipient for c in v.candidates if c.accused] == [RECIPIENTS[5]]
    # ... the default profile makes no such claim: its marks of at most ±10 are rounded away
    v = detect_table(attack(standard, random.Random(1)), SECRET,
                     registered(SECRET, rep.plan, RECIPIENTS))
    assert v.verdict == "none" and not any(c.accused for c in v.candidates)
