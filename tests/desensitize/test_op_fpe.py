"""FF1 against the NIST SP 800-38G samples; fpe formats, check characters, round trips."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.errors import DomainTooSmall, OperatorError
from desensitize.keys import Keyring
from desensitize.operators import OpContext, apply_operator, invert_operator
from desensitize.operators.ff1 import FF1
from desensitize.operators.fpe import (
    USCC_ALPHABET,
    id_check_char,
    luhn_digit,
    provinces,
    uscc_check_char,
)
from tests.conftest import active_suite

KEY128 = "2B7E151628AED2A6ABF7158809CF4F3C"
KEY192 = KEY128 + "EF4359D8D580AA4F"
KEY256 = KEY192 + "7F036D6F04FC6A94"
TW10 = "39383736353433323130"
TW36 = "3737373770717273373737"
ALPHA36 = "0123456789abcdefghijklmnopqrstuvwxyz"

# NIST SP 800-38G FF1 samples 1-9 (FF1samples.pdf)
NIST = [
    (KEY128, 10, "", "0123456789", "2433477484"),
    (KEY128, 10, TW10, "0123456789", "6124200773"),
    (KEY128, 36, TW36, "0123456789abcdefghi", "a9tv40mll9kdu509eum"),
    (KEY192, 10, "", "0123456789", "2830668132"),
    (KEY192, 10, TW10, "0123456789", "2496655549"),
    (KEY192, 36, TW36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"),
    (KEY256, 10, "", "0123456789", "6657667009"),
    (KEY256, 10, TW10, "0123456789", "1001623463"),
    (KEY256, 36, TW36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"),
]


@pytest.mark.parametrize(("key", "radix", "tweak", "pt", "ct"), NIST)
def test_ff1_nist_vectors(key: str, radix: int, tweak: str, pt: str, ct: str) -> None:
    cipher = FF1(bytes.fromhex(key), radix)
    nums = [ALPHA36.index(c) for c in pt]
    out = cipher.encrypt(nums, bytes.fromhex(tweak))
    assert "".join(ALPHA36[x] for x in out) == ct
    assert cipher.decrypt(out, bytes.fromhex(tweak)) == nums


@settings(deadline=None, max_examples=50)
@given(st.integers(2, 64).flatmap(lambda r: st.tuples(st.just(r), st.lists(st.integers(0, r - 1), min_size=6, max_size=24))),
       st.binary(max_size=20))
def test_ff1_round_trip_any_radix(case: tuple[int, list[int]], tweak: bytes) -> None:
    radix, nums = case
    cipher = FF1(b"k" * 16, radix)
    if radix ** len(nums) < 1_000_000:
        with pytest.raises(DomainTooSmall):
            cipher.encrypt(nums, tweak)
        return
    out = cipher.encrypt(nums, tweak)
    assert len(out) == len(nums) and all(0 <= x < radix for x in out)
    assert cipher.decrypt(out, tweak) == nums


def test_ff1_bad_key_and_radix() -> None:
    with pytest.raises(OperatorError):
        FF1(b"short", 10)
    with pytest.raises(OperatorError):
        FF1(b"k" * 16, 1)


K1 = Keyring(b"\x05" * 32, active_suite())
K2 = Keyring(b"\x06" * 32, active_suite())


def run(values: Sequence[str | None], entity: str | None, key: Keyring = K1, **params: object) -> list[str]:
    out: list[str] = apply_operator("fpe", pa.array(values), params, OpContext(key, entity, "c")).to_pylist()
    return out


def back(values: list[str], entity: str | None, key: Keyring = K1, **params: object) -> list[str]:
    out: list[str] = invert_operator("fpe", pa.array(values), params, OpContext(key, entity, "c")).to_pylist()
    return out


def valid_id(v: str) -> bool:
    if not re.fullmatch(r"\d{17}[\dX]", v) or v[:2] not in provinces():
        return False
    try:
        date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
    except ValueError:
        return False
    return v[17] == id_check_char(v[:17])


def id_numbers() -> st.SearchStrategy[str]:
    def build(prov: str, region: int, born: date, seq: int) -> str:
        body = f"{prov}{region:04d}{born:%Y%m%d}{seq:03d}"
        return body + id_check_char(body)

    return st.builds(build, st.sampled_from(provinces()), st.integers(0, 9999),
                     st.dates(date(1900, 1, 1), date(2025, 12, 31)), st.integers(0, 999))


@settings(deadline=None, max_examples=60)
@given(st.lists(id_numbers(), min_size=1, max_size=10))
def test_fpe_resident_id_validates_and_round_trips(ids: list[str]) -> None:
    out = run(ids, "CN_RESIDENT_ID")
    assert all(valid_id(v) for v in out)
    assert all(a != b for a, b in zip(ids, out, strict=True))
    assert back(out, "CN_RESIDENT_ID") == ids
    assert run(ids, "CN_RESIDENT_ID", K2) != out


@settings(deadline=None, max_examples=40)
@given(st.lists(st.text(USCC_ALPHABET, min_size=17, max_size=17), min_size=1, max_size=5))
def test_fpe_uscc_check_recomputed(bodies: list[str]) -> None:
    codes = [b + uscc_check_char(b) for b in bodies]
    out = run(codes, "CN_USCC")
    for before, after in zip(codes, out, strict=True):
        assert after[:8] == before[:8] and after[17] == uscc_check_char(after[:17])
    assert back(out, "CN_USCC") == codes


@settings(deadline=None, max_examples=40)
@given(st.lists(st.text("0123456789", min_size=15, max_size=18), min_size=1, max_size=5))
def test_fpe_bank_card_luhn_and_bin(bodies: list[str]) -> None:
    cards = [b + luhn_digit(b) for b in bodies]
    out = run(cards, "CN_BANK_CARD")
    for before, after in zip(cards, out, strict=True):
        assert len(after) == len(before) and after[:6] == before[:6]
        assert after[-1] == luhn_digit(after[:-1])
    assert back(out, "CN_BANK_CARD") == cards


@settings(deadline=None)
@given(st.lists(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), min_size=1, max_size=10))
def test_fpe_phone_keeps_format(phones: list[str]) -> None:
    out = run(phones, "PHONE_NUMBER")
    assert all(re.fullmatch(r"1[3-9]\d{9}", v) and v[:3] == p[:3] for p, v in zip(phones, out, strict=True))
    assert back(out, "PHONE_NUMBER") == phones


def test_fpe_keeps_separators() -> None:
    out = run(["0531-88881234", "138 1234 5678"], "PHONE_NUMBER")
    assert out[0][:5] == "0531-" and out[1][3] == " " and out[1][8] == " "


@pytest.mark.parametrize("value", ["12345", "ab-12"])
def test_fpe_refuses_small_domains(value: str) -> None:
    with pytest.raises(DomainTooSmall, match="1,000,000"):
        run([value], None)


@pytest.mark.parametrize(("value", "entity"), [("11010119900307", "CN_RESIDENT_ID"),
                                               ("990101199003071234", "CN_RESIDENT_ID"),
                                               ("110101199013071234", "CN_RESIDENT_ID"),
                                               ("123", "CN_BANK_CARD"), ("IO0000000000000000", "CN_USCC")])
def test_fpe_rejects_malformed_values_without_echoing_them(value: str, entity: str) -> None:
    with pytest.raises(OperatorError) as info:
        run([value], entity)
    assert value not in str(info.value)


@settings(deadline=None)
@given(st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=5))
def test_fpe_never_crashes_on_unicode(values: list[str]) -> None:
    try:
        out = run(values, None)
    except OperatorError:
        return
    assert back(out, None) == values


@settings(deadline=None, max_examples=30)
@given(st.lists(id_numbers(), min_size=1, max_size=30))
def test_vectorised_id_ranks_match_scalar_code(ids: list[str]) -> None:
    from desensitize.operators.fpe import _parse_id, _render_id
    from desensitize.operators.fpe_id import ids_from_ranks, ranks_from_ids

    ranks = ranks_from_ids(ids).tolist()
    assert ranks == [_parse_id(v)[0] for v in ids]
    assert ids_from_ranks(ranks) == [_render_id(r) for r in ranks] == ids


def test_fpe_on_error_mask_falls_back_per_value() -> None:
    good = "11010119900307" + "123"
    good += id_check_char(good)
    values = [good, "11010119901399123X", "12345", "", None]
    with pytest.raises(OperatorError):
        run(values, "CN_RESIDENT_ID")
    out = run(values, "CN_RESIDENT_ID", on_error="mask")
    assert valid_id(out[0]) and out[0] != good
    assert out[1] == "110101********123X" and out[2].startswith("1") and "*" in out[2]
    assert out[3:] == ["", None]
    assert run(values, "CN_RESIDENT_ID", on_error="redact")[1:3] == ["", ""]
    assert back(out, "CN_RESIDENT_ID", on_error="mask") == [good, *out[1:]]
