"""Identifiers written with more than one kind of separator, or grouped another way.

Attack (a careless clerk, a provider who wants rows through): a resident ID typed
``110101-19900307 7571`` (a dash, then a space), ``110101 1990 0307 7571`` (groups of
four after the address code), a phone ``138-1234 5678``, a card ``6222 0212-3456 7890
128``, a credit code ``91350100-M000100Y43`` or ``9135 0100 M000 100Y 43``. Before this
change none of them was found in text (each kind of number accepted one separator,
repeated), so a remark field carried them through masking unchanged; a column of such
cards was not a card column either.

Guarantee: each is found in text and masked out of a free-text field; a column of them is
classified as its entity. The check characters still decide: the same shapes with a wrong
check digit are not reported, and digits grouped in no identifier's way stay text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from desensitize.recognizers.bank_card import is_valid_card
from desensitize.recognizers.phone import is_valid_phone
from desensitize.recognizers.resident_id import is_valid_id
from desensitize.recognizers.uscc import is_valid_uscc
from desensitize.text_scan import TextScanner
from quanguard.auth import Principal
from tests.conftest import auth
from tests.desensitize.data import pii_gen as gen
from tests.quanguard.test_exchange_flows import csv_bytes
from tests.security.test_seams_exchange import register

RID = "110101199003077571"
CARD = "6222021234567890128"
USCC = "91350100M000100Y43"
MOBILE = "13812345678"

# (entity, the value as written, a cue before it)
WRITTEN = {
    "id dash then space": ("CN_RESIDENT_ID", "110101-19900307 7571", "身份证号"),
    "id space then dash": ("CN_RESIDENT_ID", "110101 19900307-7571", "身份证号码："),
    "id 6-4-4-4": ("CN_RESIDENT_ID", "110101 1990 0307 7571", "证件号 "),
    "id 6-8-3-1 mixed": ("CN_RESIDENT_ID", "110101-19900307.757 1", "公民身份号码"),
    "id full-width mixed": ("CN_RESIDENT_ID", "１１０１０１－１９９００３０７　７５７１", "身份证"),
    "mobile dash then space": ("PHONE_NUMBER", "138-1234 5678", "联系电话"),
    "mobile space then dash": ("PHONE_NUMBER", "138 1234-5678", "手机："),
    "mobile dot then space": ("PHONE_NUMBER", "138.1234 5678", "电话 "),
    "mobile +86 mixed": ("PHONE_NUMBER", "+86 138-1234 5678", "手机号"),
    "card mixed": ("CN_BANK_CARD", "6222 0212-3456 7890 128", "银行卡号"),
    "card dash and space": ("CN_BANK_CARD", "6222-0212 3456-7890 128", "卡号："),
    "uscc dash after division": ("CN_USCC", "91350100-M000100Y43", "统一社会信用代码"),
    "uscc groups of four": ("CN_USCC", "9135 0100 M000 100Y 43", "统一社会信用代码："),
    "uscc by fields": ("CN_USCC", "91 350100 M000100Y4 3", "信用代码 "),
    "uscc old organisation code": ("CN_USCC", "91350100 M000100Y-4 3", "统一社会信用代码"),
}
VALID = {"CN_RESIDENT_ID": is_valid_id, "PHONE_NUMBER": is_valid_phone,
         "CN_BANK_CARD": is_valid_card, "CN_USCC": is_valid_uscc}


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    return TextScanner()


def _compact(value: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", value.translate(
        {0xFF10 + i: 0x30 + i for i in range(10)}).upper())


@pytest.mark.parametrize("name", list(WRITTEN))
def test_the_written_form_is_a_valid_identifier(name: str) -> None:
    entity, value, _ = WRITTEN[name]
    assert VALID[entity](value), name


@pytest.mark.parametrize("name", list(WRITTEN))
def test_mixed_separators_are_found_in_text_with_exact_spans(scanner: TextScanner,
                                                             name: str) -> None:
    entity, value, cue = WRITTEN[name]
    text = f"{cue}{value}，已核验。"
    found = [(f.entity, text[f.start:f.end]) for f in scanner.scan(text)]
    assert (entity, value) in found, (name, found)


# a credit code is kept by every profile (policies/masking.yaml: a public identifier)
@pytest.mark.parametrize("name", [n for n in WRITTEN if WRITTEN[n][0] != "CN_USCC"])
def test_mixed_separators_do_not_survive_masking_of_a_remark(
        client: TestClient, make_key: Callable[..., tuple[str, Principal]], name: str) -> None:
    _, value, cue = WRITTEN[name]
    key, _ = make_key("manager")
    r = client.post("/v1/mask", headers=auth(key), json={
        "profile": "共享", "records": [{"备注": f"{cue}{value}，已核验。"}]})
    assert r.status_code == 200, r.text
    masked = r.json()["records"][0]["备注"]
    assert value not in masked, (name, masked)
    assert _compact(value)[-8:] not in _compact(masked), (name, masked)


def _wrong_check(entity: str, value: str) -> str:
    """``value`` with its last digit changed so that the check fails (same shape)."""
    last = max(i for i, c in enumerate(value) if c.isdigit() or "０" <= c <= "９")
    for d in "0123456789":
        candidate = value[:last] + d + value[last + 1:]
        if candidate != value and not VALID[entity](candidate):
            return candidate
    raise AssertionError(value)


@pytest.mark.parametrize("name", [n for n in WRITTEN if WRITTEN[n][0] != "PHONE_NUMBER"])
def test_the_check_character_still_decides(scanner: TextScanner, name: str) -> None:
    entity, value, cue = WRITTEN[name]
    wrong = _wrong_check(entity, value)
    text = f"{cue}{wrong}，已核验。"
    assert entity not in {f.entity for f in scanner.scan(text)}, (name, wrong)


@pytest.mark.parametrize("text", [
    "2019-2020 1234 5678 名次表",            # years and a count, no identifier's grouping
    "第138-1234 页至 5678 页",               # a phone's digits split by words
    "编号 1101 0119 9003 0775 71",           # an ID's digits grouped 4-4-4-4-2
    "订单 1390 1234 5678 已发货",            # 12 digits by four: no phone's grouping
])
def test_digits_grouped_in_no_identifier_s_way_stay_text(scanner: TextScanner, text: str) -> None:
    found = [(f.entity, text[f.start:f.end]) for f in scanner.scan(text)]
    assert not [f for f in found if f[0] in VALID], found


# -- columns ------------------------------------------------------------------------------
def _mixed(value: str, groups: list[int], seps: str) -> str:
    out, at = [], 0
    for i, width in enumerate(groups):
        out.append(value[at:at + width])
        at += width
        if at < len(value):
            out.append(seps[i % len(seps)])
    return "".join(out) + value[at:]


COLUMNS: dict[str, tuple[str, Callable[[random.Random], str]]] = {
    "cards": ("CN_BANK_CARD", lambda rng: _mixed(gen.bank_card(rng, spaced=False),
                                                 [4, 4, 4, 4], "- ")),
    "credit codes": ("CN_USCC", lambda rng: _mixed(gen.uscc(rng), [8], "-")),
    "credit codes by four": ("CN_USCC", lambda rng: _mixed(gen.uscc(rng), [4, 4, 4, 4], " -")),
    "mobiles": ("PHONE_NUMBER", lambda rng: _mixed(gen.mobile(rng, 0), [3, 4], "- ")),
}


@pytest.mark.parametrize("rows", [40, 400])  # the row-wise path and the Arrow path
@pytest.mark.parametrize("name", list(COLUMNS))
def test_a_column_of_mixed_separators_is_classified(name: str, rows: int) -> None:
    import pyarrow as pa

    from desensitize.table_scan import TableScanner

    entity, make = COLUMNS[name]
    rng = random.Random(5)
    values = [make(rng) for _ in range(rows)]
    assert all(VALID[entity](v) for v in values), values[:3]
    batch = pa.record_batch({"v": values, "n": list(range(rows))})
    report = TableScanner().scan([batch])
    column = next(c for c in report.columns if c.name == "v")
    assert column.entity == entity, (name, column)


def test_a_dataset_of_mixed_separator_cards_is_graded_by_them(
        client: TestClient, make_key: Callable[..., tuple[str, Principal]]) -> None:
    rng = random.Random(9)
    cards = [COLUMNS["cards"][1](rng) for _ in range(300)]
    provider = make_key("provider", org="某银行")[0]
    r = register(client, provider, "cards", csv_bytes({"v": cards, "n": list(range(300))}), key_column="v")
    assert r.status_code == 201, r.text
    plain = register(client, provider, "cards_plain", csv_bytes({
        "v": [_compact(c) for c in cards], "n": list(range(300))}), key_column="v")
    assert plain.status_code == 201, plain.text
    grade = {c["name"]: c["grade"] for c in r.json()["columns"]}["v"]
    assert grade == {c["name"]: c["grade"] for c in plain.json()["columns"]}["v"]
    assert r.json()["grade"] == plain.json()["grade"]
