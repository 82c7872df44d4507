"""Phones, plates, passports, e-mail and IP addresses."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desensitize.recognizers.email import is_valid_email
from desensitize.recognizers.ip import is_valid_ip
from desensitize.recognizers.passport import is_valid_passport
from desensitize.recognizers.phone import is_valid_phone
from desensitize.recognizers.plate import is_valid_plate
from desensitize.text_scan import TextScanner
from tests.desensitize.data import pii_gen as gen


@pytest.mark.parametrize("value,ok", [
    ("13812345678", True), ("138-1234-5678", True), ("138 1234 5678", True),
    ("+86 13812345678", True), ("+8613812345678", True), ("12345678901", False),
    ("14012345678", False),            # 140 is not allocated
    ("0531-88886666", True), ("(0531)88886666", True), ("（0531）88886666", True),
    ("053188886666", True), ("010-62345678", True), ("0001-88886666", False), ("0531－88886666", True),
    ("0531-12345678", False),          # local numbers do not start with 1
])
def test_phone_table(value: str, ok: bool) -> None:
    assert is_valid_phone(value) is ok


@given(st.integers(0, 2**32), st.integers(0, 3))
@settings(max_examples=100, deadline=None)
def test_generated_mobiles_are_found_whole(seed: int, style: int) -> None:
    value = gen.mobile(random.Random(seed), style)
    assert is_valid_phone(value)


@pytest.mark.parametrize("value,ok", [
    ("鲁A12345", True), ("鲁A·12345", True), ("鲁AD12345", True), ("鲁AF1234D"[:0] + "鲁A12345D", True),
    ("京AB1234", True), ("鲁AI2345", False), ("鲁AABCDE", False), ("X鲁A12345"[1:], True),
    ("鲁A1234", False),
])
def test_plate_table(value: str, ok: bool) -> None:
    assert is_valid_plate(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("E12345678", True), ("EA1234567", True), ("G12345678", True), ("EI1234567", False),
    ("E00000000", False), ("P12345678", False),
])
def test_passport_table(value: str, ok: bool) -> None:
    assert is_valid_passport(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("zhang.wei@jinan.gov.cn", True), ("a@b.cn", True), ("a..b@x.com", False), ("@x.com", False),
    ("user@localhost", False),
])
def test_email_table(value: str, ok: bool) -> None:
    assert is_valid_email(value) is ok


@pytest.mark.parametrize("value,ok", [
    ("192.168.1.10", True), ("256.1.1.1", False), ("01.2.3.4", False),
    ("2001:db8::1", True), ("::", False), ("fe80::1ff:fe23:4567:890a", True),
])
def test_ip_table(value: str, ok: bool) -> None:
    assert is_valid_ip(value) is ok


@pytest.mark.parametrize("text", [
    "全市已整合1228项政务服务事项，网上可办率达到99.3%。",
    "建成vCPU69000核、存储18.09T的政务云平台，2021-2025年期间。",
    "订单号20210315000123456，流水号2023061500012，软件版本v2.10.3.1。",
    "本项目总投资1.26亿元，编号JN2023-0615-001，时间10:30:45。",
])
def test_policy_prose_has_no_findings(scanner: TextScanner, text: str) -> None:
    assert scanner.scan(text) == []


def test_contacts_in_a_ticket(scanner: TextScanner) -> None:
    text = "电话138-1234-5678，座机(0531)88886666，车牌鲁A·D12345，护照E12345678，邮箱 li@163.com，IP 10.2.3.4"
    got = [(f.entity, f.text) for f in scanner.scan(text, with_text=True)]
    assert got == [
        ("PHONE_NUMBER", "138-1234-5678"), ("PHONE_NUMBER", "(0531)88886666"),
        ("CN_LICENSE_PLATE", "鲁A·D12345"), ("CN_PASSPORT", "E12345678"),
        ("EMAIL_ADDRESS", "li@163.com"), ("IP_ADDRESS", "10.2.3.4"),
    ]
