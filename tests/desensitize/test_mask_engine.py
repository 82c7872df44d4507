"""The streaming masker on a realistic government export (the issue's 'done when')."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from faker import Faker

from desensitize.classify import grade_dataset
from desensitize.errors import OperatorError, PlanError
from desensitize.keys import Keyring
from desensitize.masker import Masker, mask_table
from desensitize.pipeline import columns_from_report, quasi_from_report, run_mask, span_finder_for
from desensitize.plan import ColumnInfo, build_plan
from desensitize.profiles import load_profiles
from desensitize.recognizers.resident_id import is_valid_id
from desensitize.table_scan import TableScanner
from desensitize.tableio import open_table, open_writer, read_table
from desensitize.text_scan import TextScanner
from tests.conftest import active_suite

POLICY = Path(__file__).resolve().parents[2] / "policies" / "masking.yaml"
GRADES = {"CN_RESIDENT_ID": "L4", "CN_PASSPORT": "L4", "CN_BANK_CARD": "L4", "PERSON": "L3",
          "PHONE_NUMBER": "L3", "EMAIL_ADDRESS": "L3", "LOCATION": "L3", "CN_LICENSE_PLATE": "L3",
          "IP_ADDRESS": "L3", "CN_USCC": "L1"}
ORDER = ["L1", "L2", "L3", "L4", "core"]
PII = ["姓名", "身份证号", "联系电话", "家庭住址", "银行卡号", "车牌号码", "电子邮箱"]
KEY = Keyring(b"\x11" * 32, active_suite())


def government_export(n: int, seed: int) -> list[dict[str, str]]:
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    rows = []
    for i in range(n):
        name, tel = fake.name(), fake.phone_number()
        addr = fake.address().split(" ")[0]
        rows.append({
            "序号": f"{i + 1:05d}", "姓名": name, "性别": fake.random_element(["男", "女"]),
            "身份证号": fake.ssn(), "联系电话": tel, "家庭住址": addr,
            "银行卡号": fake.credit_card_number(), "车牌号码": "鲁A" + fake.bothify("#?###").upper(),
            "电子邮箱": fake.email(), "办理事项": fake.random_element(["居住证办理", "社保转移", "户籍迁入"]),
            "备注": f"市民{name}来电反映噪音问题，联系电话{tel}，住址{addr}。",
        })
    return rows


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gov") / "export.csv"
    rows = government_export(150, seed=20261126)
    with path.open("w", encoding="gbk", errors="strict", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def mask_file(src: Path, dst: Path, scanner: TextScanner, profile: str | None = None) -> dict[str, Any]:
    source = open_table(src)
    report = grade_dataset(TableScanner(text_scanner=scanner).scan(source.sample_batches()), GRADES, ORDER)
    plan = build_plan(columns_from_report(report), load_profiles(POLICY).get(profile))
    with open_writer(dst, source.format, source.encoding) as w:
        result = run_mask(source.iter_batches(64), w, plan, keyring=KEY, span_finder=span_finder_for(scanner),
                          quasi_identifiers=quasi_from_report(report))
    return result.to_dict()


def test_default_profile_leaves_no_personal_value(export: Path, tmp_path: Path, scanner: TextScanner) -> None:
    out = tmp_path / "masked.csv"
    summary = mask_file(export, out, scanner)
    assert open_table(out).encoding == "gb18030"  # CSV keeps its encoding
    before, after = read_table(export), read_table(out)
    assert after.column_names == before.column_names
    assert after.num_rows == before.num_rows == summary["rows"]
    text = out.read_bytes().decode("gb18030")
    leaked = [(col, v) for col in PII for v in before.column(col).to_pylist() if v and v in text]
    assert leaked == []
    for col in ("序号", "性别", "办理事项"):  # non-PII cells untouched
        assert after.column(col) == before.column(col)
    ids = after.column("身份证号").to_pylist()
    assert all(is_valid_id(v) for v in ids)
    assert after.column("姓名").to_pylist()[0].endswith("*")
    assert all("来电反映噪音问题" in v for v in after.column("备注").to_pylist())
    assert summary["k_anonymity"]["before"]["quasi_identifiers"] == ["性别"]
    assert summary["plan"]["columns"][3]["op"] == "fpe"


def test_analytics_profile_is_joinable_across_files(export: Path, tmp_path: Path, scanner: TextScanner) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    mask_file(export, a, scanner, "分析")
    mask_file(export, b, scanner, "分析")
    ta, tb = read_table(a), read_table(b)
    assert ta.column("身份证号") == tb.column("身份证号")
    assert all(v.startswith("ID-") for v in ta.column("身份证号").to_pylist())
    assert ta.column("姓名") == tb.column("姓名")


def test_parquet_stream_keeps_native_types_of_untouched_columns(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": pa.array([1, 2, 3]), "电话": ["13812345678", "13912345678", None]}), src)
    plan = build_plan([ColumnInfo("id"), ColumnInfo("电话", "PHONE_NUMBER", "L3")], load_profiles(POLICY).get(None))
    source = open_table(src)
    out = tmp_path / "out.parquet"
    masker = Masker(plan, keyring=KEY)
    with open_writer(out, schema=masker.output_schema(source.native_schema)) as w:
        for batch in masker.mask_stream(source.iter_batches(2, strings=False)):
            w.write(batch)
    got = pq.read_table(out)
    assert got.column("id").type == pa.int64() and got.column("id").to_pylist() == [1, 2, 3]
    assert got.column("电话").to_pylist() == ["138****5678", "139****5678", None]
    assert masker.stats.rows == 3 and masker.stats.cells == 2


def test_suppress_drops_column_and_spans_inside_text() -> None:
    table = pa.table({"a": ["x", "y"], "secret": ["s1", "s2"], "note": ["call 13812345678 now", ""]})
    plan = build_plan([ColumnInfo("a"), ColumnInfo("secret", "X", "core"), ColumnInfo("note", free_text=True)],
                      load_profiles(POLICY).get("共享"))

    def finder(texts: Sequence[str]) -> list[list[tuple[int, int, str]]]:
        return [[(t.index("138"), t.index("138") + 11, "PHONE_NUMBER")] if "138" in t else [] for t in texts]

    out, stats = mask_table(table, plan, keyring=KEY, span_finder=finder)
    assert out.column_names == ["a", "note"]
    assert out.column("note").to_pylist() == ["call 138****5678 now", ""]
    assert stats.spans == 1


def test_plan_needing_text_scanner_or_bad_values_fails_cleanly(tmp_path: Path) -> None:
    plan = build_plan([ColumnInfo("note", free_text=True)], load_profiles(POLICY).get(None))
    with pytest.raises(PlanError, match="text scanner"):
        Masker(plan)
    plan = build_plan([ColumnInfo("d")], load_profiles(POLICY).get(None),
                      overrides={"d": {"op": "generalize", "kind": "date"}})
    out = tmp_path / "o.csv"
    with pytest.raises(OperatorError, match="not dates"), open_writer(out) as w:
        run_mask([pa.record_batch({"d": ["2020-01-02", "tomorrow"]})], w, plan, keyring=KEY)
    assert not out.exists()


def test_columns_named_as_pii_are_masked_even_when_values_do_not_validate(tmp_path: Path,
                                                                        scanner: TextScanner) -> None:
    import random

    rnd = random.Random(3)
    rows = [{"XM": "".join(rnd.choice("张王李赵刘陈") for _ in range(3)),
             "SFZH": "".join(rnd.choice("0123456789") for _ in range(18)),  # bad check digits, dates
             "LXDH": "".join(rnd.choice("0123456789") for _ in range(11)), "BZ": "无"} for _ in range(60)]
    src = tmp_path / "bad.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "out.csv"
    summary = mask_file(src, out, scanner)
    text = out.read_text(encoding="utf-8")
    for r in rows:
        assert r["SFZH"] not in text and r["LXDH"] not in text
    sources = {c["column"]: c["source"] for c in summary["plan"]["columns"]}
    assert sources["SFZH"].endswith("(header)")
    assert read_table(out).column("BZ").to_pylist() == ["无"] * 60
