"""Spark jobs give the single-process results: same classification, byte-identical masked
cells for the same keys, a marked copy whose leak is traced, one audit event per job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from desensitize.tableio import open_table
from monitor.events import AuditEvent
from quanguard.auth import Principal
from quanguard.container import Container
from quanguard.errors import Forbidden, InvalidInput
from quanguard.usecases import spark as uc

MANAGER = Principal(id="m-1", name="manager-1", role="manager", org="市大数据局")
AUDITOR = Principal(id="a-1", name="auditor-1", role="auditor", org="市大数据局")
CONSUMER = Principal(id="c-1", name="consumer-1", role="consumer", org="某公司")


def events(container: Any) -> list[AuditEvent]:
    with container.session() as session:
        return [AuditEvent.from_json(e.body) for e in container.audit.store.iter_range(session)]


def spark_events(container: Any, action: str) -> list[AuditEvent]:
    return [e for e in events(container)
            if e.action == action and e.labels.get("engine") == "spark"]


def _key(report: Any) -> list[tuple[Any, ...]]:
    return [(c.name, c.entity, c.grade, c.kind, c.contains, c.quasi_identifier, c.non_empty,
             round(c.hit_rate, 9), round(c.confidence, 9)) for c in report.columns]


def test_scan_classifies_like_the_single_process_scan(container: Container, spark: Any, people_csv: Path) -> None:
    scanner = container.scanner
    single = scanner.grade(scanner.table_scanner().scan(
        open_table(str(people_csv)).iter_batches(16_384), sampled=False))
    out = uc.scan(container, MANAGER, str(people_csv), spark=spark, full=True)
    assert _key(out.report) == _key(single)
    assert out.report.dataset_grade == single.dataset_grade
    assert out.report.k_anonymity == single.k_anonymity
    assert out.report.quasi_identifiers == single.quasi_identifiers
    assert out.report.rows_scanned == 3_000
    found = {c.name: c.entity for c in out.report.columns}
    assert found["身份证号"] == "CN_RESIDENT_ID" and found["手机号"] == "PHONE_NUMBER"
    (event,) = spark_events(container, "scan")
    assert event.rows == 3_000 and event.decision is not None
    assert event.decision.effect == "allow" and event.labels["mode"] == "full"


def test_masked_cells_are_byte_identical_to_the_single_process_mask(container: Container, spark: Any,
                                                                   people_csv: Path, tmp_path: Path) -> None:
    from quanguard.usecases.mask import mask_file

    single_out = tmp_path / "single.csv"
    mask_file(container, MANAGER, str(people_csv), str(single_out))
    out = uc.mask(container, MANAGER, str(people_csv), str(tmp_path / "spark.parquet"),
                  spark=spark)
    single = pa.Table.from_batches(list(open_table(str(single_out)).iter_batches())).sort_by("编号")
    ours = pq.read_table(tmp_path / "spark.parquet").sort_by("编号")
    assert ours.column_names == single.column_names
    assert ours.num_rows == single.num_rows == 3_000
    for name in ours.column_names:
        assert ours.column(name).cast("string").to_pylist() == \
            single.column(name).cast("string").to_pylist(), name
    source = pacsv.read_csv(people_csv).sort_by("编号")
    assert ours.column("身份证号").to_pylist() != source.column("身份证号").cast("string").to_pylist()
    assert out.rows_out == 3_000 and out.cells_masked > 3_000
    (event,) = spark_events(container, "mask")
    assert event.rows == 3_000 and event.labels["rows_out"] == "3000"
    assert "身份证号" in event.fields


def test_a_leak_of_a_spark_marked_copy_is_traced(container: Container, spark: Any, people_csv: Path, tmp_path: Path) -> None:
    from quanguard.usecases.watermark import detect

    uc.scan(container, MANAGER, str(people_csv), spark=spark, dataset="people")  # grade first
    out = uc.watermark(container, MANAGER, str(people_csv), str(tmp_path / "marked.parquet"),
                       recipient="bureau-7", spark=spark, dataset="people")
    assert out.report.rows == 3_000 and out.report.marked_cells > 0
    marked = pq.read_table(tmp_path / "marked.parquet")
    leak = tmp_path / "leak.csv"
    pacsv.write_csv(marked.slice(0, 2_000), leak)
    verdict = detect(container, AUDITOR, str(leak), dataset="people")
    assert verdict.verdict == "match" and verdict.recipient == "bureau-7"
    (event,) = spark_events(container, "watermark_embed")
    assert event.rows == 3_000 and event.labels["recipient"] == "bureau-7"


def test_marking_a_dataset_no_scan_graded_is_refused_and_writes_nothing(
        container: Container, spark: Any, people_csv: Path, tmp_path: Path) -> None:
    target = tmp_path / "unscanned.parquet"
    with pytest.raises(InvalidInput, match="no scan in the inventory"):
        uc.watermark(container, MANAGER, str(people_csv), str(target), recipient="bureau-7",
                     spark=spark, dataset="never-scanned")
    assert not target.exists()
    (event,) = spark_events(container, "watermark_embed")  # the refused attempt, recorded
    assert event.outcome == "failure" and event.dataset == "never-scanned"
    assert event.labels["recipient"] == "bureau-7" and "no scan" in (event.reason or "")


def test_refused_job_writes_nothing_and_leaves_one_deny_event(container: Container, spark: Any, people_csv: Path,
                                                             tmp_path: Path) -> None:
    target = tmp_path / "denied.parquet"
    with pytest.raises(Forbidden):
        uc.mask(container, CONSUMER, str(people_csv), str(target), spark=spark)
    assert not target.exists()
    denied = [e for e in events(container) if e.action == "mask"]
    assert len(denied) == 1 and denied[0].decision is not None
    assert denied[0].decision.effect == "deny"


def test_bad_inputs_are_clear_errors(container: Container, spark: Any, people_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        uc.scan(container, MANAGER, str(tmp_path / "missing.parquet"), spark=spark)
    with pytest.raises(InvalidInput, match="Parquet or CSV"):
        uc.scan(container, MANAGER, str(tmp_path / "x.xlsx"), spark=spark)
    existing = tmp_path / "exists.parquet"
    existing.mkdir()
    with pytest.raises(InvalidInput, match="exists"):
        uc.mask(container, MANAGER, str(people_csv), str(existing), spark=spark)


def test_cli_spark_scan(container: Container, spark: Any, people_csv: Path, make_key: Callable[..., tuple[str, Principal]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from quanguard.cli.main import build_app

    key, _ = make_key("manager")
    s = container.settings
    monkeypatch.setenv("QUANGUARD_DB_URL", s.db_url)
    monkeypatch.setenv("QUANGUARD_KEY_DIR", str(s.key_dir))
    monkeypatch.setenv("QUANGUARD_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("QUANGUARD_POLICY_DIR", str(s.policy_dir))
    monkeypatch.setenv("QUANGUARD_API_KEY", key)
    r = CliRunner().invoke(build_app(), ["spark", "scan", str(people_csv), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["engine"] == "spark" and out["rows_scanned"] == 3_000
    r = CliRunner().invoke(build_app(), ["spark", "mask", str(people_csv), "-o",
                                         str(tmp_path / "m.csv.parquet"), "--input-format", "bogus"])
    assert r.exit_code != 0 and "unsupported Spark input format" in r.output


def test_a_job_that_breaks_after_it_was_allowed_leaves_one_failure_event(container: Container, spark: Any,
                                                                         people_csv: Path, tmp_path: Path) -> None:
    bad_key = tmp_path / "short.key"
    bad_key.write_bytes(b"too short")
    target = tmp_path / "never.parquet"
    with pytest.raises(Exception, match="32 bytes|key"):
        uc.mask(container, MANAGER, str(people_csv), str(target), spark=spark,
                key_file=str(bad_key))
    assert not target.exists()
    (event,) = [e for e in events(container) if e.action == "mask"]
    assert event.outcome == "failure" and event.labels.get("engine") == "spark"
