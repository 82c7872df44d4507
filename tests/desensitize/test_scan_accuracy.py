"""Accuracy floor on the held-out labelled set (templates never tuned against) and on
fresh hand-written cases; ordinary policy prose yields no findings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from desensitize.text_scan import TextScanner

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("scan_accuracy", Path(__file__).parents[2] / "bench" / "scan_accuracy.py")
bench = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

FRESH = [
    ("2024年3月12日，李秀英（女，身份证号37010519820315442X）来电称其母亲住在天桥区北园大街398号2号楼3单元602室，联系电话0531-86123456。",
     [("李秀英", "PERSON"), ("37010519820315442X", "CN_RESIDENT_ID"),
      ("天桥区北园大街398号2号楼3单元602室", "LOCATION"), ("0531-86123456", "PHONE_NUMBER")]),
    ("经办人 孙建军 联系电话 13905318888", [("孙建军", "PERSON"), ("13905318888", "PHONE_NUMBER")]),
    ("车主赵刚驾驶鲁A88E66小型轿车在花园路与二环东路交叉口发生剐蹭。", [("赵刚", "PERSON"), ("鲁A88E66", "CN_LICENSE_PLATE")]),
    ("市大数据局副局长王强出席会议并讲话。", [("王强", "PERSON")]),
    ("来访人员登记：马丽，护照EJ1234567，国籍中国。", [("马丽", "PERSON"), ("EJ1234567", "CN_PASSPORT")]),
    ("联系人：高建国（13705310001），地址：章丘区明水街道汇泉路1616号。",
     [("高建国", "PERSON"), ("13705310001", "PHONE_NUMBER"), ("章丘区明水街道汇泉路1616号", "LOCATION")]),
    ("居民钱文华家住槐荫区张庄路街道幸福小区7号楼1单元301室，反映楼道灯损坏。",
     [("钱文华", "PERSON"), ("槐荫区张庄路街道幸福小区7号楼1单元301室", "LOCATION")]),
    ("请将发票寄往济南市历下区龙奥北路1577号龙奥大厦B座。", [("济南市历下区龙奥北路1577号龙奥大厦B座", "LOCATION")]),
    ("服务器地址2001:da8:8000:1::80，端口443。", [("2001:da8:8000:1::80", "IP_ADDRESS")]),
    ("截至目前，济南市共有A级旅游景区87家，其中5A级2家、4A级29家。", []),
    ("许可证编号：JY13701020012345，有效期至2026年12月31日。", []),
    ("研究建立权威、中立、客观的数据资产评估体系，高新区管委会张贴通知。", []),
]


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    return TextScanner()


def test_heldout_micro_f1_floor(scanner: TextScanner) -> None:
    records = bench.load("heldout")
    result = bench.evaluate(records, scanner)
    assert result["micro"]["f1"] >= 0.95, result["micro"]
    for entity, row in result["entities"].items():
        assert row["f1"] >= 0.9, (entity, row)
    assert result["prose_false_positives"] <= 1


@pytest.mark.parametrize("text,gold", FRESH)
def test_fresh_cases(scanner: TextScanner, text: str, gold: list[tuple[str, str]]) -> None:
    want = {(text.index(v), text.index(v) + len(v), e) for v, e in gold}
    got = {(f.start, f.end, f.entity) for f in scanner.scan(text)}
    assert got == want


def test_seed_excerpts_prose_is_clean(scanner: TextScanner) -> None:
    prose = [json.loads(line) for line in (DATA / "labelled_dev.jsonl").read_text(encoding="utf-8").splitlines()]
    text = "\n".join(r["text"] for r in prose if not r["spans"])
    assert scanner.scan(text) == []
