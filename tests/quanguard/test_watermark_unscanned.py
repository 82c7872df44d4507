"""A file nobody scanned is marked by what it holds, never by the default profile.

Before: ``watermark embed`` took the grade from the scan inventory under the file's name;
a file never scanned had no grade, so it got the default profile (标准: 2%, ±10, dates move)
and the grade rules of ``policies/roles.yaml`` (core never leaves) could not apply. Now the
embedding grades the file itself first (a sample scanned by ``policies/grading.yaml``) and
takes the higher of that and the inventory's grade (就高从严); a Spark job, whose table the
service cannot sample cheaply, refuses a dataset without a scan and says how to make one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from quanguard.auth import LOCAL_OPERATOR
from quanguard.container import Container
from quanguard.errors import InvalidInput
from quanguard.usecases import scan as scan_uc
from quanguard.usecases import watermark as uc
from tests.conftest import csv_bytes
from tests.desensitize.data.pii_gen import resident_id
from tests.quanguard.test_watermark_extract_grade import _plan_of
from tests.watermark.attacks import issue_table


def _with_ids(n: int = 3000) -> pa.Table:
    """The issue table plus a column of resident ID numbers (L4 by grading.yaml)."""
    rng = random.Random(7)
    table = issue_table(n, seed=5)
    return table.append_column("身份证号", pa.array([resident_id(rng) for _ in range(n)]))


def _event_grade(container: Container, action: str) -> str | None:
    with container.session() as session:
        docs = [json.loads(e.body) for e in container.audit.store.iter_range(session, 1)]
    (doc,) = [d for d in docs if d["event"]["action"] == action and d["event"]["outcome"] == "success"]
    grade: str | None = doc.get("audit", {}).get("grade")
    return grade


def test_an_unscanned_file_holding_ids_is_marked_within_the_l4_bound(
        container: Container, tmp_path: Path) -> None:
    src = tmp_path / "never_scanned.csv"
    src.write_bytes(csv_bytes(_with_ids()))
    uc.embed(container, LOCAL_OPERATOR, str(src), str(tmp_path / "out.csv"), recipient="r1")
    rel, top, dates = _plan_of(container, "never_scanned")
    assert (rel, dates) == (0.01, False) and top <= 0  # 严格, not 标准's 2%, ±10, a day
    assert _event_grade(container, "watermark_embed") == "L4"


def test_the_inventory_grade_of_the_name_does_not_lower_the_file_s_own(
        container: Container, tmp_path: Path) -> None:
    """A harmless file scanned under the name, then a file of ID numbers marked under it."""
    harmless = tmp_path / "harmless.csv"
    harmless.write_bytes(csv_bytes(issue_table(500, seed=2).select([2, 3])))
    report, _ = scan_uc.scan_table(container, LOCAL_OPERATOR, str(harmless), dataset="户籍")
    assert report.dataset_grade != "L4"
    src = tmp_path / "ids.csv"
    src.write_bytes(csv_bytes(_with_ids()))
    uc.embed(container, LOCAL_OPERATOR, str(src), str(tmp_path / "out.csv"), recipient="r1",
             dataset="户籍")
    rel, top, dates = _plan_of(container, "户籍")
    assert (rel, dates) == (0.01, False) and top <= 0


def test_a_harmless_unscanned_file_keeps_the_default_bound(container: Container, tmp_path: Path) -> None:
    src = tmp_path / "stats.csv"
    src.write_bytes(csv_bytes(issue_table(3000, seed=3)))
    uc.embed(container, LOCAL_OPERATOR, str(src), str(tmp_path / "out.csv"), recipient="r1")
    rel, _top, _dates = _plan_of(container, "stats")
    assert rel == 0.02
    assert _event_grade(container, "watermark_embed") in ("L2", "L3")


def test_a_spark_job_refuses_a_dataset_nobody_scanned(container: Container, tmp_path: Path) -> None:
    from quanguard.usecases import spark as spark_uc

    src = tmp_path / "big.csv"
    src.write_bytes(csv_bytes(_with_ids(50)))
    with pytest.raises(InvalidInput, match=r"no scan.*quanguard spark scan"):
        spark_uc.watermark(container, LOCAL_OPERATOR, str(src), str(tmp_path / "out"), recipient="r1")
