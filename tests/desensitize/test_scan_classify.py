"""Header hints (Chinese, English, pinyin initials) and the column decision rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desensitize.classify import (
    HINT_MIN,
    VALUE_MIN,
    ColumnEvidence,
    DatasetReport,
    classify_column,
    grade_dataset,
)
from desensitize.headers import hint_for


@pytest.mark.parametrize("header,entity", [
    ("XM", "PERSON"), ("姓名", "PERSON"), ("name", "PERSON"), ("联系人", "PERSON"),
    ("SFZH", "CN_RESIDENT_ID"), ("身份证号码", "CN_RESIDENT_ID"), ("id_card", "CN_RESIDENT_ID"),
    ("法定代表人身份证号", "CN_RESIDENT_ID"), ("LXDH", "PHONE_NUMBER"), ("联系人电话", "PHONE_NUMBER"),
    ("Phone No", "PHONE_NUMBER"), ("JTZZ", "LOCATION"), ("家庭住址", "LOCATION"),
    ("YHKH", "CN_BANK_CARD"), ("CPHM", "CN_LICENSE_PLATE"), ("DZYX", "EMAIL_ADDRESS"),
    ("TYSHXYDM", "CN_USCC"), ("HZHM", "CN_PASSPORT"), ("登录IP", "IP_ADDRESS"),
    ("备注", None), ("金额", None), ("单位名称", None),
])
def test_header_hints(header: str, entity: str | None) -> None:
    assert hint_for(header).entity == entity


@pytest.mark.parametrize("header,qi", [
    ("出生日期", "birth_date"), ("CSRQ", "birth_date"), ("性别", "gender"), ("XB", "gender"),
    ("所在区县", "district"), ("年龄", "age"), ("NL", "age"), ("职业", "occupation"), ("姓名", None),
])
def test_quasi_identifier_hints(header: str, qi: str | None) -> None:
    assert hint_for(header).quasi_identifier == qi


@given(st.integers(1, 10_000), st.floats(0, 1), st.booleans())
def test_a_header_never_decides_without_values(n: int, rate: float, hinted: bool) -> None:
    valid = int(n * rate)
    ev = ColumnEvidence("c", n, {"CN_RESIDENT_ID": valid}, hint_entity="CN_RESIDENT_ID" if hinted else None)
    report = classify_column(ev)
    needed = HINT_MIN if hinted else VALUE_MIN
    assert (report.entity == "CN_RESIDENT_ID") == (valid / n >= needed)
    if report.entity:
        assert 0 < report.confidence <= 1 and report.hit_rate == pytest.approx(valid / n)


def test_names_need_many_distinct_values_without_a_header() -> None:
    ev = ColumnEvidence("职业", 100, {"PERSON": 90}, distinct_ratio=0.05)
    assert classify_column(ev).entity is None
    assert classify_column(ColumnEvidence("c", 100, {"PERSON": 90}, distinct_ratio=0.9)).entity == "PERSON"


def test_grades_take_the_highest() -> None:
    cols = tuple(classify_column(ColumnEvidence(n, 10, v)) for n, v in
                 (("a", {"PHONE_NUMBER": 10}), ("b", {"CN_RESIDENT_ID": 10}), ("c", {})))
    graded = grade_dataset(DatasetReport(cols, 10, True), {"PHONE_NUMBER": "L3", "CN_RESIDENT_ID": "L4"},
                           ["L1", "L2", "L3", "L4", "core"])
    # a column without findings takes the first grade above public when the mapping is silent
    assert [c.grade for c in graded.columns] == ["L3", "L4", "L2"]
    assert graded.dataset_grade == "L4"
