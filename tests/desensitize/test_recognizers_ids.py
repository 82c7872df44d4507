"""Checksummed identifiers: GB 11643 resident IDs, GB 32100 USCC, Luhn bank cards."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.recognizers.bank_card import is_valid_card, luhn_ok
from desensitize.recognizers.resident_id import check_character, is_valid_id
from desensitize.recognizers.uscc import is_valid_uscc
from desensitize.text_scan import TextScanner

_spec = importlib.util.spec_from_file_location("pii_gen", Path(__file__).parent / "data" / "pii_gen.py")
gen = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(gen)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    return TextScanner()


@given(st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_generated_ids_validate_and_one_changed_digit_fails(seed: int) -> None:
    rng = random.Random(seed)
    value = gen.resident_id(rng)
    assert is_valid_id(value)
    pos = rng.randrange(14, 17)  # sequence digits: date and province stay valid
    bad = value[:pos] + str((int(value[pos]) + 1) % 10) + value[pos + 1:]
    assert not is_valid_id(bad)


@pytest.mark.parametrize("value,ok", [
    ("11010519491231002X", True),        # GB 11643 standard example
    ("11010519491231002x", True),
    ("110105194912310021", False),       # wrong check character
    ("990105194912310024", False),       # no province 99
    ("110105194902300027", False),       # 30 February
    ("110105230001010015", False),       # year 2300 is not a date of birth
    ("110105491231002", True),           # 15-digit legacy number
    ("110105491331002", False),          # month 13
])
def test_resident_id_table(value: str, ok: bool) -> None:
    assert is_valid_id(value) is ok


def test_check_character_is_mod_11_2() -> None:
    assert check_character("11010519491231002") == "X"


@given(st.integers(0, 2**32))
@settings(max_examples=200, deadline=None)
def test_generated_uscc_validate_and_mutation_fails(seed: int) -> None:
    rng = random.Random(seed)
    value = gen.uscc(rng)
    assert is_valid_uscc(value)
    pos = rng.randrange(8, 17)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    other = alphabet[(alphabet.index(value[pos]) + 1) % 31]
    assert not is_valid_uscc(value[:pos] + other + value[pos + 1:])


@pytest.mark.parametrize("value,ok", [
    ("91350100M000100Y43", True),
    ("91350100M000100Y44", False),
    ("Z1350100M000100Y43", False),   # Z is not an authority code
    ("91350100M00010OY43", False),   # O is not in the alphabet
])
def test_uscc_table(value: str, ok: bool) -> None:
    assert is_valid_uscc(value) is ok


@pytest.mark.parametrize("authority", ["A", "N", "Y"])
def test_letter_prefixed_authorities(authority: str) -> None:
    from desensitize.recognizers.uscc import check_character

    body = authority + "1370102MA3C5LQ0X"
    assert is_valid_uscc(body + check_character(body))


@given(st.integers(0, 2**32), st.booleans())
@settings(max_examples=200, deadline=None)
def test_generated_cards_pass_luhn_spaced_or_not(seed: int, spaced: bool) -> None:
    value = gen.bank_card(random.Random(seed), spaced=spaced)
    assert is_valid_card(value)
    digits = value.replace(" ", "")
    last = str((int(digits[-1]) + 1) % 10)
    assert not luhn_ok(digits[:-1] + last)


@pytest.mark.parametrize("value,ok", [
    ("6222021234567890128", True),
    ("6222021234567890129", False),
    ("4012888888881881", True),
    ("4012 8888 8888 1881", True),
    ("4012-8888 8888-1881", False),     # mixed separators
    ("411111111111111", False),         # 15 digits
    ("1111111111111117", False),        # issuer digit 1
])
def test_card_table(value: str, ok: bool) -> None:
    assert is_valid_card(value) is ok


def test_ids_found_in_text_with_exact_spans(scanner: TextScanner) -> None:
    rng = random.Random(3)
    rid, code, card = gen.resident_id(rng), gen.uscc(rng), gen.bank_card(rng, spaced=True)
    text = f"身份证号{rid}，信用代码{code}，银行卡号{card}。"
    found = {(f.entity, f.text) for f in scanner.scan(text, with_text=True)}
    assert found == {("CN_RESIDENT_ID", rid), ("CN_USCC", code), ("CN_BANK_CARD", card)}


def test_invalid_ids_are_not_reported(scanner: TextScanner) -> None:
    assert scanner.scan("身份证号110105194912310021，卡号6222021234567890129") == []
