"""Issue 11, finding 2 — grading failed open.

Attack: a provider's dataset writes its resident IDs as ``370104-19460313-0991`` (or with
spaces, dots, full-width digits) next to exact incomes.  Before the fix no recognizer
matched, every column had "no findings", the lowest grade (L1, public) was given to
each of them and to the dataset, and an extract delivered all 5,000 IDs.

Guarantees tested here, through the service (HTTP scan upload) and the shipped policy:
* separated / full-width / lower-case-x IDs are found in every row (recall 1.0) and the
  dataset is L4;
* a column with no findings is never public: ``UNRECOGNISED`` is L2 in
  ``policies/grading.yaml``; a key-like column (unique code-shaped values no recognizer
  knows) is at least L3;
* a provider's declaration lowers only columns without personal information, and only
  as far as the officer's grading file allows.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from fastapi.testclient import TestClient

from desensitize import grade_dataset
from quanguard.auth import Principal
from quanguard.container import Container
from tests.conftest import auth

ROWS = 5_000
REGIONS = ["370104", "370102", "110105", "440305", "370122", "510107"]  # 370122: retired code
FW = {0x30 + i: 0xFF10 + i for i in range(10)}


def gb11643_check(body: str) -> str:
    """GB 11643 check character, written out here so the test does not trust the code."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def _ids(rng: random.Random) -> list[str]:
    out = []
    for i in range(ROWS):
        body = f"{rng.choice(REGIONS)}{1940 + i % 60}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
        v = body + gb11643_check(body)
        style = i % 5
        if style == 0:
            v = f"{v[:6]}-{v[6:14]}-{v[14:]}"
        elif style == 1:
            v = f"{v[:6]} {v[6:14]} {v[14:]}"
        elif style == 2:
            v = f"{v[:6]}.{v[6:14]}.{v[14:]}"
        elif style == 3:
            v = v.translate(FW)
        else:
            v = f"{v[:6]}-{v[6:14]}-{v[14:17]}-{v[17].lower()}"
        out.append(v)
    return out


def _csv(cols: dict[str, list[object]]) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols), buf)
    return buf.getvalue()


@pytest.fixture
def scan(
    client: TestClient, make_key: Callable[..., tuple[str, Principal]]
) -> Callable[..., dict[str, Any]]:
    key, _ = make_key("manager")

    def run(cols: dict[str, list[object]], name: str = "people.csv") -> dict[str, Any]:
        r = client.post("/v1/scan", files={"file": (name, _csv(cols), "text/csv")},
                        data={"full": "true"}, headers=auth(key))
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    return run


def test_dashed_ids_with_exact_incomes_are_not_public(scan: Callable[..., dict[str, Any]]) -> None:
    rng = random.Random(11)
    ids = _ids(rng)
    report = scan({"证件": ids, "年收入": [round(rng.uniform(20_000, 400_000), 2) for _ in range(ROWS)]})
    cols = {c["name"]: c for c in report["columns"]}
    assert report["rows_scanned"] == ROWS
    assert cols["证件"]["entity"] == "CN_RESIDENT_ID"
    assert cols["证件"]["hit_rate"] == 1.0  # every separated / full-width / x form
    assert cols["证件"]["grade"] == "L4"
    assert cols["年收入"]["grade"] == "L2" and cols["年收入"]["label"] == "UNRECOGNISED"
    assert report["dataset_grade"] == "L4"


def test_a_table_without_findings_is_internal_not_public(scan: Callable[..., dict[str, Any]]) -> None:
    rng = random.Random(2)
    report = scan({"办件数": [rng.randrange(1, 500) for _ in range(300)],
                   "金额": [round(rng.uniform(0, 1e5), 2) for _ in range(300)]})
    assert {c["grade"] for c in report["columns"]} == {"L2"}
    assert report["dataset_grade"] == "L2"


def test_unknown_identifiers_are_key_like_and_at_least_l3(scan: Callable[..., dict[str, Any]]) -> None:
    rng = random.Random(3)
    # IDs with broken check characters and hashes: no recognizer takes them, but they key people
    keys = [f"{rng.randrange(10**17, 10**18)}" for _ in range(400)]
    hashes = [f"{rng.getrandbits(128):032x}" for _ in range(400)]
    serial = [f"{i:08d}" for i in range(400)]  # sequential numbers: low entropy, not a key
    report = scan({"编号": keys, "摘要": hashes, "序号": serial,
                   "收入": [rng.randrange(1000, 9000) for _ in range(400)]})
    cols = {c["name"]: c for c in report["columns"]}
    assert cols["编号"]["label"] == "KEY_LIKE" and cols["编号"]["grade"] == "L3"
    assert cols["摘要"]["label"] == "KEY_LIKE" and cols["摘要"]["grade"] == "L3"
    assert cols["序号"]["label"] == "UNRECOGNISED" and cols["序号"]["grade"] == "L2"
    assert report["dataset_grade"] == "L3"


def test_declarations_lower_only_what_the_officer_allows(container: Container) -> None:
    from desensitize import TableScanner

    rng = random.Random(4)
    ids = _ids(rng)[:300]
    codes = [f"ML{rng.getrandbits(40):010X}" for _ in range(300)]
    table = pa.table({"证件": ids, "目录编码": codes})
    svc = container.scanner
    report = TableScanner().scan(table.to_batches())
    grades = {e: container.policy.entity_grade(e) for e in
              ("CN_RESIDENT_ID", "UNRECOGNISED", "KEY_LIKE", "DECLARED_PUBLIC")}
    order = list(container.policy.grade_order)
    # the provider declares both columns public: the ID column stays L4, the code column
    # takes the officer's DECLARED_PUBLIC grade
    graded = grade_dataset(report, grades, order, declared_public=["证件", "目录编码"])
    by = {c.name: c for c in graded.columns}
    assert by["证件"].grade == "L4" and by["目录编码"].grade == grades["DECLARED_PUBLIC"]
    assert svc.grade(report).columns[1].grade == "L3"  # undeclared: key-like
    # a dataset is never graded below what its provider declared
    codes_only = TableScanner().scan(pa.table({"目录编码": codes}).to_batches())
    floor = grade_dataset(codes_only, grades, order, declared_public=["目录编码"], declared_grade="L3")
    assert floor.dataset_grade == "L3"


def test_a_grading_file_without_the_labels_still_never_says_public() -> None:
    from desensitize.classify import ColumnEvidence, DatasetReport, classify_column

    cols = (classify_column(ColumnEvidence("金额", 100, {})),)
    graded = grade_dataset(DatasetReport(cols, 100, True), {"PERSON": "L3"}, ["L1", "L2", "L3", "L4"])
    assert graded.dataset_grade == "L2"
