"""generalize (date/age/address/amount), fake (Faker zh_CN surrogates), noise."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.errors import OperatorError
from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator
from desensitize.operators.fpe import id_check_char, luhn_digit
from tests.conftest import active_suite

K1 = Keyring(b"\x07" * 32, active_suite())
K2 = Keyring(b"\x08" * 32, active_suite())


def run(op: str, values: Sequence[str | None], entity: str | None = None, key: Keyring = K1,
        **params: object) -> list[Any]:
    out: list[Any] = apply_operator(op, pa.array(values, pa.string()), params, OpContext(key, entity, "c")).to_pylist()
    return out


@pytest.mark.parametrize(
    ("value", "month", "year"),
    [("2023-05-17", "2023-05", "2023"), ("2023/5/7", "2023-05", "2023"), ("20230517", "2023-05", "2023"),
     ("2023年5月17日", "2023-05", "2023"), ("1999-12-01 08:30:00", "1999-12", "1999"), ("2023-05", "2023-05", "2023")],
)
def test_generalize_dates(value: str, month: str, year: str) -> None:
    assert run("generalize", [value], kind="date") == [month]
    assert run("generalize", [value], kind="date", to="year") == [year]


@pytest.mark.parametrize("bad", ["昨天", "2023-13-01", "abc"])
def test_generalize_non_date_is_clear_error(bad: str) -> None:
    with pytest.raises(OperatorError, match="not dates") as info:
        run("generalize", ["2020-01-01", bad], kind="date")
    assert bad not in str(info.value)


@settings(deadline=None)
@given(st.lists(st.integers(0, 120), min_size=1, max_size=20))
def test_generalize_age_band_contains_age(ages: list[int]) -> None:
    out = run("generalize", [str(a) for a in ages], kind="age")
    for a, band in zip(ages, out, strict=True):
        lo, hi = map(int, band.split("-"))
        assert lo <= a <= hi and hi - lo == 9


def test_generalize_amount_and_address() -> None:
    assert run("generalize", ["1234.5", "99", "50000"], kind="amount", edges=[0, 1000, 10000]) == [
        "1000-9999", "0-999", ">=10000"]
    assert run("generalize", ["2500"], kind="amount") == ["2000-2999"]
    assert run("generalize", ["济南市历下区泉城路1号"], "LOCATION") == ["济南市历下区"]
    with pytest.raises(OperatorError, match="not amounts"):
        run("generalize", ["一千"], kind="amount")
    with pytest.raises(OperatorError, match="ages outside"):
        run("generalize", ["200"], kind="age")


names = st.lists(st.text("张王李赵欧阳娜伟芳", min_size=2, max_size=4), min_size=1, max_size=20)


@settings(deadline=None)
@given(names)
def test_fake_same_person_same_fake_and_key_separation(values: list[str]) -> None:
    a = run("fake", values, "PERSON")
    assert a == run("fake", values, "PERSON")
    assert dict(zip(values, a, strict=True)) == {v: f for v, f in zip(values, a, strict=True)}
    assert all(re.fullmatch(r"[\u4e00-\u9fff·]{2,6}", f) for f in a)


def test_fake_differs_by_key_and_identifiers_are_well_formed() -> None:
    people = [f"人{i}" for i in range(50)]
    assert run("fake", people, "PERSON") != run("fake", people, "PERSON", K2)
    ids = run("fake", [f"3701021980010100{i:02d}" for i in range(30)], "CN_RESIDENT_ID")
    assert len(set(ids)) == 30 and all(v[17] == id_check_char(v[:17]) for v in ids)
    cards = run("fake", ["6222021234567890128"], "CN_BANK_CARD")
    assert cards[0][-1] == luhn_digit(cards[0][:-1])
    phones = run("fake", ["13812345678"], "PHONE_NUMBER")
    assert re.fullmatch(r"1\d{10}", phones[0])
    assert "@" in run("fake", ["a@b.cn"], "EMAIL_ADDRESS")[0]


@settings(deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: f"{x:.2f}"), min_size=1, max_size=20))
def test_noise_is_bounded_deterministic_and_keeps_decimals(values: list[str]) -> None:
    out = run("noise", values, scale=5)
    assert out == run("noise", values, scale=5)
    for a, b in zip(values, out, strict=True):
        assert abs(float(a) - float(b)) <= 5.0 + 1e-6
        assert len(b.split(".")[1]) == 2


def test_noise_params_and_bad_values() -> None:
    assert all(float(v) >= 0 for v in run("noise", ["1", "0", "2"], scale=10, min=0))
    with pytest.raises(OperatorError, match="exactly one"):
        run("noise", ["1"], scale=1, ratio=0.1)
    with pytest.raises(OperatorError, match="not a number"):
        run("noise", ["abc"], ratio=0.1)


@settings(deadline=None)
@given(st.lists(st.text(max_size=15), max_size=10))
def test_operators_never_raise_unexpected_exceptions(values: list[str]) -> None:
    cases: list[tuple[str, str | None, dict[str, Any]]] = [
        ("generalize", None, {"kind": "date"}), ("generalize", "LOCATION", {}),
        ("fake", None, {}), ("noise", None, {"scale": 1}), ("hash", None, {})]
    for op, entity, params in cases:
        try:
            out = run(op, values, entity, **params)
        except OperatorError:
            continue
        assert len(out) == len(values)
