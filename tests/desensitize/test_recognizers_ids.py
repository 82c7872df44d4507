"""Checksummed identifiers: GB 11643 resident IDs, GB 32100 USCC, Luhn bank cards."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.recognizers.bank_card import is_valid_card, luhn_ok
from desensitize.recognizers.resident_id import check_character, is_valid_id
from desensitize.recognizers.uscc import is_valid_uscc
from desensitize.text_scan import TextScanner
from tests.desensitize.data import pii_gen as gen


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


@pytest.mark.parametrize("body,check", [
    ("7992739871", "3"),           # the worked example of ISO/IEC 7812 Luhn
    ("401288888888188", "1"),      # a published test card number
    ("622202123456789012", "8"),
])
def test_the_generators_luhn_oracle_on_published_numbers(body: str, check: str) -> None:
    """The generator keeps its own Luhn (an oracle apart from ``desensitize.standards``)."""
    assert gen.luhn_digit(body) == check


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
    ("4012-8888 8888-1881", True),      # each gap its own separator
    ("4012+8888 8888 1881", False),     # a plus is no separator
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


# --- issue 11 finding 2 / issue 12: written forms, checksums both ways, GB/T 2260 -------

FW = {0x30 + i: 0xFF10 + i for i in range(10)} | {ord("X"): 0xFF38, ord("x"): 0xFF58}


def written_forms(v: str) -> list[str]:
    """The ways people write one resident ID number."""
    return [
        f"{v[:6]}-{v[6:14]}-{v[14:]}", f"{v[:6]} {v[6:14]} {v[14:]}", f"{v[:6]}.{v[6:14]}.{v[14:]}",
        f"{v[:6]}-{v[6:14]}-{v[14:17]}-{v[17]}", v.translate(FW), v.lower(),
        f"{v[:6]}－{v[6:14]}－{v[14:]}".translate(FW), f"{v[:6]}　{v[6:14]}　{v[14:]}",
    ]


def test_separated_and_full_width_ids_are_found_with_full_spans(scanner: TextScanner) -> None:
    rng = random.Random(12)
    ids = [gen.resident_id(rng) for _ in range(60)] + ["11010519491231002X"]
    missed = []
    for rid in ids:
        for form in written_forms(rid):
            assert is_valid_id(form), form
            for text in (f"身份证号{form}，请核对。", f"来访人 {form} 已登记"):
                found = [(f.entity, f.text) for f in scanner.scan(text, with_text=True)]
                if ("CN_RESIDENT_ID", form) not in found:
                    missed.append((text, found))
    assert missed == []  # recall 1.0, and each span covers the whole written form


@pytest.mark.parametrize("text,entity,value", [
    ("电话：138-1234-5678", "PHONE_NUMBER", "138-1234-5678"),
    ("电话：138 1234 5678", "PHONE_NUMBER", "138 1234 5678"),
    ("电话：138.1234.5678", "PHONE_NUMBER", "138.1234.5678"),
    ("手机１３８１２３４５６７８联系", "PHONE_NUMBER", "１３８１２３４５６７８"),
    ("座机（０５３１）８８８８６６６６", "PHONE_NUMBER", "（０５３１）８８８８６６６６"),
    ("卡号：6222.0212.3456.7890.128", "CN_BANK_CARD", "6222.0212.3456.7890.128"),
    ("卡号：６２２２０２１２３４５６７８９０１２８", "CN_BANK_CARD", "６２２２０２１２３４５６７８９０１２８"),
    ("卡号：4012 8888 8888 1881", "CN_BANK_CARD", "4012 8888 8888 1881"),
    ("信用代码91350100m000100y43。", "CN_USCC", "91350100m000100y43"),
    ("信用代码９１３５０１００Ｍ０００１００Ｙ４３。", "CN_USCC", "９１３５０１００Ｍ０００１００Ｙ４３"),
])
def test_written_forms_of_phones_cards_and_credit_codes(scanner: TextScanner, text: str, entity: str,
                                                        value: str) -> None:
    assert (entity, value) in {(f.entity, f.text) for f in scanner.scan(text, with_text=True)}


def _bad_check_ids(n: int) -> list[str]:
    """ID numbers with a wrong check character that pass Luhn or the GB 32100 check."""
    from desensitize.recognizers.uscc import is_valid_uscc

    rng = random.Random(7)
    out: list[str] = []
    while len(out) < n:
        rid = gen.resident_id(rng)
        for c in "0123456789X":
            bad = rid[:17] + c
            if c != rid[17] and (is_valid_card(bad) or is_valid_uscc(bad)):
                out.append(bad)
    return out


@pytest.mark.parametrize("cue", ["身份证号", "身份证号码：", "公民身份号码为", "证件号 ", "SFZH="])
def test_a_bad_check_id_near_an_id_cue_is_no_entity_at_all(scanner: TextScanner, cue: str) -> None:
    bad = _bad_check_ids(40)
    bad += [v.translate(FW) for v in bad[:10]] + [v.lower() for v in bad if v.endswith("X")]
    reported = {v: scanner.scan(f"{cue}{v}，户籍山东。") for v in bad}
    assert {v: fs for v, fs in reported.items() if fs} == {}


def test_without_an_id_cue_a_luhn_number_is_still_a_card(scanner: TextScanner) -> None:
    card = next(v for v in _bad_check_ids(40) if is_valid_card(v))
    assert [f.entity for f in scanner.scan(f"银行卡号{card}")] == ["CN_BANK_CARD"]


def test_gb2260_county_codes_current_and_retired() -> None:
    from desensitize.standards import Division, division, division_current

    assert division("370104") is Division.COUNTY and division_current("370104") is True
    assert division("370122") is Division.COUNTY and division_current("370122") is False  # 章丘县
    assert division("370199") is Division.PREFECTURE
    assert division("379999") is Division.PROVINCE
    assert division("990101") is Division.NONE
    assert division("３７０１０４") is Division.NONE  # callers fold first


def test_county_codes_raise_or_lower_confidence(scanner: TextScanner) -> None:
    from desensitize.recognizers.resident_id import check_character

    known = "37012219800101001"  # a retired county code, still printed on old cards
    unknown = "37019919800101001"
    known += check_character(known)
    unknown += check_character(unknown)
    assert is_valid_id(known) and is_valid_id(unknown)
    (k,) = scanner.scan(f"来访 {known} 已登记")
    (u,) = scanner.scan(f"来访 {unknown} 已登记")
    assert k.score == 1.0 and u.score < k.score
    (u_cue,) = scanner.scan(f"身份证号 {unknown}")
    assert u_cue.score > u.score


def test_standards_is_the_one_definition() -> None:
    """No module but desensitize/standards.py writes the weights or check alphabets, and
    fpe.py and fpe_id.py no longer import each other."""
    import ast

    root = Path(__file__).resolve().parents[2] / "desensitize"
    for path in root.rglob("*.py"):
        if path.name == "standards.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert "10X98765432" not in text and "7, 9, 10, 5, 8, 4, 2" not in text, path
        assert "pow(3, i, 31)" not in text, path
    tree = ast.parse((root / "operators" / "fpe_id.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "desensitize.operators.fpe" not in imported
