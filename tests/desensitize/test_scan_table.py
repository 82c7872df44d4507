"""Table scanning: column typing from values (header hints only as priors), grades,
quasi-identifiers and k-anonymity, bad input."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest
from faker import Faker

from desensitize import ScanInputError, TableScanner, grade_dataset
from desensitize.text_scan import TextScanner
from tests.desensitize.data import pii_gen as gen

GRADES = {"CN_RESIDENT_ID": "L4", "CN_BANK_CARD": "L4", "CN_PASSPORT": "L4", "PERSON": "L3",
          "PHONE_NUMBER": "L3", "LOCATION": "L3", "EMAIL_ADDRESS": "L3", "IP_ADDRESS": "L2",
          "CN_USCC": "L1", "CN_LICENSE_PLATE": "L3", "UNRECOGNISED": "L2", "QUASI_IDENTIFIER": "L2",
          "KEY_LIKE": "L3"}
ORDER = ["L1", "L2", "L3", "L4", "core"]


def export(n: int = 300, seed: int = 5) -> pa.RecordBatch:
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    cols = {
        "XM": [gen.person(rng, fake) for _ in range(n)],
        "SFZH": [gen.resident_id(rng) for _ in range(n)],
        "LXDH": [gen.mobile(rng) for _ in range(n)],
        "JTZZ": [gen.address(rng) for _ in range(n)],
        "YHKH": [gen.bank_card(rng) for _ in range(n)],
        "CPHM": [gen.plate(rng) for _ in range(n)],
        "DZYX": [gen.email(rng, fake) for _ in range(n)],
        "TYSHXYDM": [gen.uscc(rng) for _ in range(n)],
        "HZHM": [gen.passport(rng) for _ in range(n)],
        "IP": [gen.ip(rng, fake) for _ in range(n)],
        "XB": [rng.choice(["男", "女"]) for _ in range(n)],
        "NL": [str(rng.randrange(18, 80)) for _ in range(n)],
        "BZ": [rng.choice(["无", "已办结", "待回访"]) for _ in range(n)],
        "SL": [str(rng.randrange(1, 10**6)) for _ in range(n)],
    }
    return pa.RecordBatch.from_pydict(cols)


@pytest.fixture(scope="module")
def scanner() -> TableScanner:
    return TableScanner(text_scanner=TextScanner())


def test_every_pii_column_of_a_government_export_is_typed(scanner: TableScanner) -> None:
    report = grade_dataset(scanner.scan([export()]), GRADES, ORDER)
    got = {c.name: c.entity for c in report.columns}
    assert got == {
        "XM": "PERSON", "SFZH": "CN_RESIDENT_ID", "LXDH": "PHONE_NUMBER", "JTZZ": "LOCATION",
        "YHKH": "CN_BANK_CARD", "CPHM": "CN_LICENSE_PLATE", "DZYX": "EMAIL_ADDRESS",
        "TYSHXYDM": "CN_USCC", "HZHM": "CN_PASSPORT", "IP": "IP_ADDRESS",
        "XB": None, "NL": None, "BZ": None, "SL": None,
    }
    assert report.dataset_grade == "L4"
    by = {c.name: c for c in report.columns}
    assert by["SFZH"].hit_rate == 1.0 and by["SFZH"].grade == "L4"
    assert by["SL"].grade == "L2" and by["SL"].label == "UNRECOGNISED"  # unknown is never public
    assert by["XB"].grade == "L2" and by["XB"].label == "QUASI_IDENTIFIER"
    assert set(report.quasi_identifiers) == {"XB", "NL"}
    assert report.k_anonymity is not None and report.k_anonymity >= 1


def test_values_decide_without_headers(scanner: TableScanner) -> None:
    batch = export()
    renamed = pa.RecordBatch.from_arrays(batch.columns, names=[f"c{i}" for i in range(batch.num_columns)])
    report = scanner.scan([renamed])
    got = [c.entity for c in report.columns]
    assert got[:10] == ["PERSON", "CN_RESIDENT_ID", "PHONE_NUMBER", "LOCATION", "CN_BANK_CARD",
                        "CN_LICENSE_PLATE", "EMAIL_ADDRESS", "CN_USCC", "CN_PASSPORT", "IP_ADDRESS"]


def test_a_header_alone_never_decides(scanner: TableScanner) -> None:
    batch = pa.RecordBatch.from_pydict({
        "身份证号": ["已提交", "未提交", "已提交"] * 10,
        "姓名": ["1", "2", "3"] * 10,
        "联系电话": ["12345", "详见附件", "无"] * 10,
    })
    report = scanner.scan([batch])
    assert [c.entity for c in report.columns] == [None, None, None]


def test_header_tips_a_weak_value_signal(scanner: TableScanner) -> None:
    rng = random.Random(1)
    values = [gen.resident_id(rng) if i % 2 else "不详" for i in range(40)]
    report = scanner.scan([pa.RecordBatch.from_pydict({"SFZH": values, "other": values})])
    assert report.columns[0].entity == "CN_RESIDENT_ID"
    assert report.columns[0].hit_rate == pytest.approx(0.5)
    assert report.columns[1].entity is None


def test_k_anonymity_is_the_smallest_class(scanner: TableScanner) -> None:
    batch = pa.RecordBatch.from_pydict({
        "性别": ["男"] * 5 + ["女"] * 3 + ["女"],
        "所在区县": ["历下区"] * 5 + ["市中区"] * 3 + ["槐荫区"],
    })
    report = scanner.scan([batch, batch])
    assert report.k_anonymity == 2
    assert report.rows_scanned == 18


def test_free_text_columns_report_what_they_contain(scanner: TableScanner) -> None:
    rng = random.Random(2)
    texts = [f"市民来电反映噪音扰民，联系电话{gen.mobile(rng, 0)}，请尽快处理。" for _ in range(20)]
    report = scanner.scan([pa.RecordBatch.from_pydict({"诉求内容": texts})])
    col = report.columns[0]
    assert col.kind == "free_text" and col.entity is None
    assert dict(col.contains)["PHONE_NUMBER"] == 20
    graded = grade_dataset(report, GRADES, ORDER)
    assert graded.columns[0].grade == "L3"


@pytest.mark.parametrize("batches", [[], [pa.RecordBatch.from_pydict({"a": pa.array([], pa.string())})]])
def test_no_rows_is_an_error(scanner: TableScanner, batches: list[pa.RecordBatch]) -> None:
    with pytest.raises(ScanInputError):
        scanner.scan(batches)


FW = {0x30 + i: 0xFF10 + i for i in range(10)} | {ord("X"): 0xFF38, ord("M"): 0xFF2D}


@pytest.mark.parametrize("style", ["dash", "space", "dot", "fullwidth", "lower"])
def test_written_forms_are_typed_in_columns(scanner: TableScanner, style: str) -> None:
    """Issue 11 f.2: separated and full-width IDs, phones, cards and credit codes in columns."""
    rng = random.Random(8)

    def form(v: str, groups: tuple[int, ...]) -> str:
        if style == "fullwidth":
            return v.translate(FW)
        if style == "lower":
            return v.lower()
        sep = {"dash": "-", "space": " ", "dot": "."}[style]
        parts, at = [], 0
        for g in groups:
            parts.append(v[at:at + g])
            at += g
        return sep.join([*parts, v[at:]] if v[at:] else parts)

    n = 120
    ids = [gen.resident_id(rng) for _ in range(n)]
    ids = [i[:17] + "X" if i[17] == "X" else i for i in ids]
    cols = {
        "c1": [form(v, (6, 8)) for v in ids],
        "c2": [form(gen.mobile(rng, 0), (3, 4)) for _ in range(n)],
        "c3": [form(gen.bank_card(rng, spaced=False), (4, 4, 4, 4)) for _ in range(n)],
        "c4": [gen.uscc(rng).translate(FW) if style == "fullwidth" else gen.uscc(rng).lower()
               for _ in range(n)],
    }
    report = scanner.scan([pa.RecordBatch.from_pydict(cols)])
    got = {c.name: (c.entity, c.hit_rate) for c in report.columns}
    assert got["c1"] == ("CN_RESIDENT_ID", 1.0)
    assert got["c2"] == ("PHONE_NUMBER", 1.0)
    assert got["c3"] == ("CN_BANK_CARD", 1.0)
    assert got["c4"] == ("CN_USCC", 1.0)


def test_key_like_columns_are_flagged(scanner: TableScanner) -> None:
    rng = random.Random(9)
    batch = pa.RecordBatch.from_pydict({
        "hash": [f"{rng.getrandbits(64):016x}" for _ in range(200)],
        "amount": [f"{rng.uniform(0, 1e6):.2f}" for _ in range(200)],
        "day": [f"2024-01-{1 + i % 28:02d}T08:00:{i % 60:02d}" for i in range(200)],
        "serial": [f"NO{i:08d}" for i in range(200)],
        "status": [rng.choice(["已办结", "待回访"]) for _ in range(200)],
    })
    flags = {c.name: c.key_like for c in scanner.scan([batch]).columns}
    assert flags == {"hash": True, "amount": False, "day": False, "serial": False, "status": False}


def test_county_codes_in_no_list_lower_column_confidence(scanner: TableScanner) -> None:
    from desensitize.standards import gb11643_check

    def ids(region: str) -> list[str]:
        bodies = [f"{region}{1950 + i % 50}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}" for i in range(100)]
        return [b + gb11643_check(b) for b in bodies]

    report = scanner.scan([pa.RecordBatch.from_pydict({"known": ids("370122"), "unknown": ids("370199")})])
    known, unknown = report.columns
    assert known.entity == unknown.entity == "CN_RESIDENT_ID"
    assert known.confidence == 1.0 and unknown.confidence < known.confidence
