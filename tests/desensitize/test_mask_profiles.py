"""policies/masking.yaml loads; bad profiles are reported with file:line; plans resolve."""

from __future__ import annotations

from pathlib import Path

import pytest

from desensitize.errors import PlanError, ProfileError, UnknownProfile
from desensitize.plan import ColumnInfo, build_plan, load_plan_file
from desensitize.profiles import load_profiles, parse_profiles

POLICY = Path(__file__).resolve().parents[2] / "policies" / "masking.yaml"
GRADES = ["L1", "L2", "L3", "L4", "core"]


def test_shipped_profiles_load() -> None:
    ps = load_profiles(POLICY, grades=GRADES)
    assert ps.default_profile == "共享"
    assert {"开放", "共享", "分析"} <= set(ps.names)
    assert ps.get(None).name == "共享"
    rule, source = ps.get("共享").rule_for("CN_RESIDENT_ID", "L4")
    assert rule.op == "fpe" and source == "共享.entities.CN_RESIDENT_ID"
    rule, source = ps.get("共享").rule_for("UNLISTED", "core")
    assert rule.op == "suppress" and source == "共享.grades.core"
    assert ps.get("共享").rule_for(None, None)[0].op == "mask"


def test_unknown_profile() -> None:
    with pytest.raises(UnknownProfile, match="known: 开放 共享 分析"):
        load_profiles(POLICY).get("公开")


BAD = [
    ("profiles:\n  a:\n    default: {op: msk}\n", 3, "unknown operator 'msk'"),
    ("profiles:\n  a:\n    entities:\n      PERSON:\n        op: mask\n        prefx: 1\n", 6, "unknown parameter prefx"),
    ("profiles:\n  a:\n    grades:\n      L9: {op: keep}\n", 4, "grade 'L9' is not defined"),
    ("profiles:\n  a:\n    colour: red\n", 3, "unknown key 'colour'"),
    ("default_profile: b\nprofiles:\n  a: {default: keep}\n", 1, "default_profile 'b'"),
    ("profiles:\n  a:\n    default: {prefix: 1}\n", 3, "'op' key"),
    ("profiles: [\n", 2, "not valid YAML"),
    ("profiles:\n  a:\n    default: {op: hash, length: x}\n", 3, "must be int"),
]


@pytest.mark.parametrize(("text", "line", "needle"), BAD)
def test_bad_profiles_have_file_and_line(text: str, line: int, needle: str) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profiles(text, "masking.yaml", grades=GRADES)
    err = info.value
    assert err.path == "masking.yaml" and err.line == line, str(err)
    assert needle in err.message
    assert str(err).startswith(f"masking.yaml:{line}: ")


COLUMNS = [
    ColumnInfo("序号"),
    ColumnInfo("姓名", "PERSON", "L3"),
    ColumnInfo("身份证号", "CN_RESIDENT_ID", "L4"),
    ColumnInfo("备注", free_text=True, text_entities=("PHONE_NUMBER",)),
    ColumnInfo("机密", "SECRET_THING", "core"),
]


def test_plan_resolution_and_overrides(tmp_path: Path) -> None:
    profile = load_profiles(POLICY).get("共享")
    plan = build_plan(COLUMNS, profile)
    assert [c.op for c in plan.columns] == ["keep", "mask", "fpe", "spans", "suppress"]
    assert plan.masked_columns == ["姓名", "身份证号", "备注", "机密"]
    assert plan.dropped_columns == ["机密"]
    assert plan.describe()[2][:4] == ("身份证号", "CN_RESIDENT_ID", "L4", "fpe on_error=mask")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("profile: 分析\ncolumns:\n  姓名: {op: fake}\n  备注: keep\n", encoding="utf-8")
    name, overrides = load_plan_file(plan_file)
    assert name == "分析"
    plan = build_plan(COLUMNS, profile, overrides=overrides)
    assert plan.get("姓名").op == "fake" and plan.get("姓名").source == "plan file"
    assert plan.get("备注").op == "keep"
    # the printed plan can be fed back as a plan file
    json_file = tmp_path / "plan.json"
    import json

    json_file.write_text(json.dumps(plan.to_dict(), ensure_ascii=False), encoding="utf-8")
    _, again = load_plan_file(json_file)
    replayed = build_plan(COLUMNS, profile, overrides=again)
    assert [(c.op, c.params) for c in replayed.columns] == [(c.op, c.params) for c in plan.columns]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [({"电话": {"op": "mask"}}, "does not have: 电话"), ({"姓名": {"op": "nope"}}, "unknown operator"),
     ({"姓名": {"op": "mask", "bad": 1}}, "unknown parameter bad"), ({"姓名": 3}, "expected")],
)
def test_bad_plans(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(PlanError, match=needle):
        build_plan(COLUMNS, load_profiles(POLICY).get(None), overrides=overrides)


def test_bad_plan_files(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("columns: [1, 2]\n")
    with pytest.raises(PlanError):
        load_plan_file(bad)
    bad.write_text("cols: {}\n")
    with pytest.raises(PlanError, match="unknown key"):
        load_plan_file(bad)
    with pytest.raises(PlanError, match="cannot read"):
        load_plan_file(tmp_path / "missing.yaml")


def test_quasi_identifier_rules_raise_k() -> None:
    import pyarrow as pa

    from desensitize.masker import mask_table
    from desensitize.risk import k_anonymity

    profile = load_profiles(POLICY).get("开放")
    cols = [ColumnInfo("出生日期", quasi_identifier="birth_date"), ColumnInfo("性别", quasi_identifier="gender"),
            ColumnInfo("年龄", quasi_identifier="age")]
    plan = build_plan(cols, profile)
    assert [c.op for c in plan.columns] == ["generalize", "keep", "generalize"]
    assert plan.get("出生日期").source == "开放.quasi_identifiers.birth_date"
    t = pa.table({"出生日期": ["1990-03-07", "1990-11-02", "不详", ""], "性别": ["男"] * 4,
                  "年龄": ["31", "35", "abc", "200"]})
    out, _ = mask_table(t, plan)
    assert out.column("出生日期").to_pylist() == ["1990", "1990", "", ""]
    assert out.column("年龄").to_pylist() == ["30-39", "30-39", "", ""]
    qi = ["出生日期", "性别", "年龄"]
    k_before = k_anonymity(t.to_batches(), qi).k
    assert k_before is not None
    assert k_anonymity(out.to_batches(), qi).k == 2 > k_before
    assert [c.op for c in build_plan(cols, load_profiles(POLICY).get("共享")).columns] == ["keep"] * 3
