"""Full-width forms (U+FF01..U+FF5E, U+3000) hide no personal information: Chinese input
methods type ``ｚｗ＠ｅｘａｍｐｌｅ．ｃｏｍ`` routinely.  Every entry point of the text
scanner finds them, reports the offsets of the original characters and masks those, and
the table scanner types full-width columns like half-width ones."""

from __future__ import annotations

import pyarrow as pa
import pytest

from desensitize import TableScanner, TextScanner
from desensitize.pipeline import span_finder_for
from desensitize.prefilter import could_hold_pii
from desensitize.standards import fold_width
from quanguard.container import Container

_FW = {i: i + 0xFEE0 for i in range(0x21, 0x7F)} | {0x20: 0x3000}


def fw(value: str) -> str:
    """Every printable ASCII character of ``value`` in its full-width form."""
    return value.translate(_FW)


VALUES = [
    ("EMAIL_ADDRESS", "zw@example.com"),
    ("EMAIL_ADDRESS", "li.hua-01@mail.sd.gov.cn"),
    ("PHONE_NUMBER", "13812345678"),
    ("PHONE_NUMBER", "+86 138 1234 5678"),
    ("PHONE_NUMBER", "0531-88886666"),
    ("PHONE_NUMBER", "(0531)88886666"),
    ("CN_RESIDENT_ID", "11010519491231002X"),
    ("CN_RESIDENT_ID", "110105-19491231-002x"),
    ("CN_BANK_CARD", "6222021234567890128"),
    ("CN_BANK_CARD", "6222 0212 3456 7890 128"),
    ("CN_USCC", "91350100M000100Y43"),
    ("IP_ADDRESS", "192.168.1.20"),
    ("IP_ADDRESS", "fe80::1"),
    ("CN_PASSPORT", "G12345678"),
    ("CN_LICENSE_PLATE", "鲁A12345"),
]
# half and full width mixed inside one value
MIXED = [
    ("EMAIL_ADDRESS", "zw＠example.com"),
    ("EMAIL_ADDRESS", "ｚｗ@ｅｘａｍｐｌｅ.com"),
    ("EMAIL_ADDRESS", "zw@ｅｘａｍｐｌｅ．ｃｏｍ"),
    ("PHONE_NUMBER", "１３８1234５６７８"),
    ("IP_ADDRESS", "10.２０.3０.４"),
    ("CN_USCC", "９１３５０１００M０００１００y４３"),
]
CASES = [(e, fw(v)) for e, v in VALUES] + MIXED


def _ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{e}:{v}" for e, v in cases]


@pytest.mark.parametrize("entity,value", CASES, ids=_ids(CASES))
def test_scan_finds_full_width_forms_on_the_original_offsets(
        scanner: TextScanner, entity: str, value: str) -> None:
    text = f"市民来电，请联系：{value}，谢谢。"
    found = scanner.scan(text, with_text=True)
    assert [(f.entity, f.start, f.end, f.text) for f in found] == [
        (entity, 9, 9 + len(value), value)]


def test_scan_many_and_redact_agree_with_scan(scanner: TextScanner) -> None:
    texts = [f"联系人邮箱{fw('zw@example.com')}，电话{fw('0531-88886666')}。",
             "没有个人信息。", f"访问来源{fw('192.168.1.20')}"]
    assert list(scanner.scan_many(texts)) == [scanner.scan(t) for t in texts]
    assert [len(x) for x in scanner.scan_many(texts)] == [2, 0, 1]
    assert scanner.redact(texts[0]) == "联系人邮箱<EMAIL_ADDRESS>，电话<PHONE_NUMBER>。"


def test_free_text_masking_replaces_the_full_width_characters(scanner: TextScanner) -> None:
    text = f"请回复{fw('zw@example.com')}或拨打{fw('13812345678')}，IP {fw('10.1.2.3')}"
    spans = span_finder_for(scanner)([text])[0]
    assert [(text[s:e], ent) for s, e, ent in spans] == [
        (fw("zw@example.com"), "EMAIL_ADDRESS"), (fw("13812345678"), "PHONE_NUMBER"),
        (fw("10.1.2.3"), "IP_ADDRESS")]


def test_audit_redactor_keeps_no_full_width_email_in_clear(container: Container) -> None:
    from quanguard.services.scan import make_redactor

    red = make_redactor(container)
    out = red(f"投诉人邮箱{fw('zw@example.com')}，来源{fw('fe80::1')}")
    assert out == "投诉人邮箱<EMAIL_ADDRESS>，来源<IP_ADDRESS>"


def test_the_prefilter_lets_full_width_ipv6_through() -> None:
    assert could_hold_pii(fw("fe::ab"))


@pytest.mark.parametrize("entity,value", VALUES, ids=_ids(VALUES))
def test_full_width_columns_are_typed(entity: str, value: str) -> None:
    for rows in (10, 200):  # the row-wise path and the Arrow kernels
        col = [fw(value)] * rows
        report = TableScanner().scan([pa.RecordBatch.from_pydict({"v": col})])
        assert report.columns[0].entity == entity, rows


def test_full_width_pii_in_a_free_text_column_is_reported() -> None:
    notes = [f"市民反映情况，回复邮箱{fw('zw@example.com')}，已办结。"] * 20
    report = TableScanner().scan([pa.RecordBatch.from_pydict({"备注": notes})])
    assert dict(report.columns[0].contains).get("EMAIL_ADDRESS") == 20


def test_fold_width_keeps_length_and_everything_else() -> None:
    text = "ｚｗ＠ｅｘａｍｐｌｅ．ｃｏｍ　（０５３１）～｟张伟。，"
    folded = fold_width(text)
    assert len(folded) == len(text)
    assert folded == "zw@example.com (0531)~｟张伟。,"
    assert fold_width("already ascii") == "already ascii"


@pytest.mark.parametrize("text,value", [
    ("IP：fe80::1，已封禁", "fe80::1"),  # a label's full-width colon folds to ':'
    ("来源IP:2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
    ("来源ｆｅ８０：：１：访问异常", "ｆｅ８０：：１"),
])
def test_ipv6_after_or_before_a_label_colon(scanner: TextScanner, text: str, value: str) -> None:
    assert [(f.entity, f.text) for f in scanner.scan(text, with_text=True)] == [("IP_ADDRESS", value)]
