"""mask / redact / replace / keep / suppress: examples from the issue and properties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.errors import OperatorError
from desensitize.operators import OPERATORS, OpContext, apply_operator, get_operator


def run(op: str, values: Sequence[str | None], entity: str | None = None, **params: object) -> list[Any]:
    out: list[Any] = apply_operator(op, pa.array(values, pa.string()), params, OpContext(None, entity, "c")).to_pylist()
    return out


@pytest.mark.parametrize(
    ("entity", "value", "expected"),
    [
        ("CN_RESIDENT_ID", "110101199003071234", "110101********1234"),
        ("PHONE_NUMBER", "13812345678", "138****5678"),
        ("PERSON", "张三", "张*"),
        ("PERSON", "欧阳娜娜", "欧阳**"),
        ("PERSON", "司马相如", "司马**"),
        ("PERSON", "王", "*"),
        ("LOCATION", "济南市历下区泉城路1号", "济南市历下区****"),
        ("LOCATION", "山东省济南市历城区华山街道8号", "山东省济南市历城区****"),
        ("EMAIL_ADDRESS", "zhangsan@example.com", "z***@example.com"),
        ("CN_BANK_CARD", "6222021234567890128", "622202*********0128"),
        (None, "abcdef", "a****f"),
    ],
)
def test_mask_examples(entity: str | None, value: str, expected: str) -> None:
    assert run("mask", [value], entity) == [expected]


def test_mask_params_override_defaults() -> None:
    assert run("mask", ["13812345678"], "PHONE_NUMBER", prefix=0, suffix=2, char="#") == ["#########78"]
    assert run("mask", ["13812345678"], None, prefix=3, suffix=0, fixed=4) == ["138****"]


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), max_size=30), st.integers(0, 8), st.integers(0, 8))
def test_mask_never_reveals_whole_value_and_keeps_nulls(values: list[str | None], prefix: int, suffix: int) -> None:
    out = run("mask", values, None, prefix=prefix, suffix=suffix)
    assert len(out) == len(values)
    for before, after in zip(values, out, strict=True):
        if before is None or before == "":
            assert after == before
        else:
            assert len(after) == len(before)
            assert "*" in after
            assert after != before or "*" in before


@settings(deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=20))
def test_mask_name_and_address_total_on_unicode(values: list[str]) -> None:
    for entity in ("PERSON", "LOCATION", "EMAIL_ADDRESS"):
        out = run("mask", values, entity)
        assert len(out) == len(values)
        assert all("*" in v for v in out)


@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=20))
def test_redact_replace_keep(values: list[str | None]) -> None:
    assert run("keep", values) == values
    assert run("redact", values) == [v if not v else "" for v in values]
    assert run("replace", values, "PHONE_NUMBER") == [v if not v else "<PHONE_NUMBER>" for v in values]
    assert run("replace", values, None, token="[X]") == [v if not v else "[X]" for v in values]


def test_suppress_is_declared_column_level() -> None:
    assert get_operator("suppress").drops_column
    assert run("suppress", ["a"]) == [""]


@pytest.mark.parametrize(
    ("op", "params", "needle"),
    [
        ("msk", {}, "unknown operator"),
        ("mask", {"prefx": 2}, "unknown parameter prefx"),
        ("mask", {"prefix": "2"}, "must be int"),
        ("mask", {"mode": "zip"}, "must be one of"),
        ("hash", {"length": True}, "must not be a boolean"),
    ],
)
def test_bad_operator_or_params(op: str, params: dict[str, object], needle: str) -> None:
    with pytest.raises(OperatorError, match=needle):
        run(op, ["x"], None, **params)


def test_every_operator_is_documented() -> None:
    for op in OPERATORS.values():
        assert op.doc
        assert all(p.doc for p in op.params)
