"""Conservative redaction (issue 12, "checksums used both ways"): ID- and card-shaped runs
are masked in free text even when their check character fails, and the masking path
leaves no digit run of a separated or full-width ID in clear."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pyarrow as pa
import pytest

from desensitize import (
    Keyring,
    TableScanner,
    TextScanner,
    build_plan,
    columns_from_report,
    load_profiles,
    mask_table,
)
from desensitize.pipeline import span_finder_for
from desensitize.suspects import redact, suspect_spans
from quanguard.container import Container
from tests.conftest import active_suite

POLICIES = Path(__file__).resolve().parents[2] / "policies"
FW = {0x30 + i: 0xFF10 + i for i in range(10)}
BAD_ID = "370104194603130992"  # check character should be 1
GOOD_ID = "370104194603130991"
BAD_CARD = "6222021234567890129"  # Luhn fails


@pytest.mark.parametrize("value,entity", [
    (BAD_ID, "CN_RESIDENT_ID"), ("370104-19460313-0992", "CN_RESIDENT_ID"),
    (BAD_ID.translate(FW), "CN_RESIDENT_ID"), ("370104194603130", "CN_RESIDENT_ID"),
    ("37010419460313099x", "CN_RESIDENT_ID"), (BAD_CARD, "CN_BANK_CARD"),
    ("6222 0212 3456 7890 129", "CN_BANK_CARD"),
])
def test_shaped_runs_are_suspects(value: str, entity: str) -> None:
    text = f"来电人称其号码为{value}，请核实。"
    assert suspect_spans(text) == [(8, 8 + len(value), entity)]
    assert redact(text, []) == f"来电人称其号码为<{entity}>，请核实。"


@pytest.mark.parametrize("text", [
    "2024年受理1228件，办结率98.5%。", "订单 20210315001 已发货", "第 1 2 3 4 5 6 7 8 9 10 11 12 条",
    "12345678901234567890123 是一个很长的流水号",
])
def test_ordinary_numbers_are_not_suspects(text: str) -> None:
    assert suspect_spans(text) == []


def test_audit_redactor_masks_ids_whose_check_fails(container: Container) -> None:
    from quanguard.services.scan import make_redactor

    red = make_redactor(container)
    text = (f"投诉人身份证号{BAD_ID}，银行卡{BAD_CARD}，另一证件 370104-19460313-0992，"
            f"电话13812345678，号码{GOOD_ID.translate(FW)}")
    out = red(text)
    assert not re.search(r"\d{6}", out.translate({0xFF10 + i: 0x30 + i for i in range(10)})), out
    assert out.count("<CN_RESIDENT_ID>") == 3 and "<CN_BANK_CARD>" in out and "<PHONE_NUMBER>" in out


def test_masking_leaves_no_birth_date_of_separated_or_full_width_ids(scanner: TextScanner) -> None:
    rng = random.Random(5)
    from tests.desensitize.data import pii_gen as gen
    from tests.desensitize.test_recognizers_ids import written_forms

    ids = [gen.resident_id(rng) for _ in range(20)]
    forms = [f for rid in ids for f in written_forms(rid)]
    bad = [rid[:17] + ("0" if rid[17] != "0" else "1") for rid in ids]
    table = pa.table({
        "证件": forms,
        "备注": [f"市民来电，身份证号{f}，核对无误。" for f in forms],
        "附言": [f"证件号{b}（疑似填错）" for b in bad] * (len(forms) // len(bad)),
    })
    report = TableScanner(text_scanner=scanner).scan(table.to_batches())
    profiles = load_profiles(POLICIES / "masking.yaml")
    for name in ("共享", "开放", "分析"):
        plan = build_plan(columns_from_report(report), profiles.get(name))
        masked, _ = mask_table(table, plan, keyring=Keyring(b"\x07" * 32, active_suite()),
                               span_finder=span_finder_for(scanner))
        flat = " ".join(str(v) for col in masked.columns for v in col.to_pylist())
        flat = flat.translate({0xFF10 + i: 0x30 + i for i in range(10)})
        for rid in ids:
            assert rid[6:14] not in flat, (name, rid)  # the birth date never survives
