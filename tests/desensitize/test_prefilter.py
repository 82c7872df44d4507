"""The fast reject in front of the PII redactor never skips a text that holds PII."""

from __future__ import annotations

import random

import pytest

from desensitize.prefilter import could_hold_pii
from desensitize.text_scan import TextScanner
from quanguard.container import Container


@pytest.mark.parametrize("text", [
    "联系人王伟", "张先生来电", "买买提·艾力", "济南市历下区泉城路", "住在幸福小区3号楼",
    "13800138000", "身份证370102199003071234", "mail a@b.cn", "ip ::1", "ip 10.0.0.1",
    "护照G12345678", "鲁A12345", "电话１３８００１３８０００",
])
def test_texts_that_may_hold_pii_pass_the_filter(text: str) -> None:
    assert could_hold_pii(text)


@pytest.mark.parametrize("text", ["monthly report", "fraud review", "资格核验",
                                  "", "ok!"])
def test_plain_texts_are_rejected_fast(text: str) -> None:
    assert not could_hold_pii(text)


def test_the_scanner_finds_nothing_in_any_rejected_text(scanner: TextScanner) -> None:
    rng = random.Random(15)
    pool = [chr(c) for c in range(0x4E00, 0x9FA6) if not could_hold_pii(chr(c))]
    pool += list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;!?-_/()（）【】，。、：；")
    rejected = 0
    for _ in range(300):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(2, 40)))
        if could_hold_pii(text):
            continue
        rejected += 1
        assert scanner.scan(text) == [], text
    assert rejected > 250


def test_the_audit_service_does_not_scan_a_text_that_cannot_hold_pii(container: Container) -> None:
    from quanguard.auth import LOCAL_OPERATOR

    seen: list[str] = []

    def counting(text: str) -> str:
        seen.append(text)
        return text.replace("13800138000", "<PHONE_NUMBER>")

    container.audit.set_redactor(counting)
    with container.session() as session, session.begin():
        container.audit.record(session, actor=LOCAL_OPERATOR, action="query",
                               purpose="monthly report", reason="资格核验")
        container.audit.record(session, actor=LOCAL_OPERATOR, action="query",
                               purpose="call 13800138000")
    assert seen == ["call 13800138000"]
