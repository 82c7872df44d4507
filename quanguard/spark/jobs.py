"""Spark jobs: authorize → run the Arrow kernels on the cluster → register → one audit event.

The same steps as the single-process use cases, with the table as a Spark DataFrame
(Parquet or CSV/TSV in, Parquet out).  Keys, profiles, grades and policy come from the
service's configuration through the container; the permission check is the one gate
(:func:`quanguard.gate.authorize`); every job leaves exactly one event — ``allow`` with
its row counts, or ``failure`` with the reason when the job broke after it was allowed
(a refusal is recorded by the gate itself).

Outputs are written to a hidden sibling folder and renamed into place when the job and
its checks succeed, so a failed job leaves no half-written copy at the target.
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from desensitize import DatasetReport
from quanguard.auth import Principal
from quanguard.errors import InvalidInput
from quanguard.gate import RequestContext, authorize, origin
from quanguard.spark import kernels
from quanguard.spark.session import (
    arrow_schema,
    counters,
    get_session,
    output_digest,
    read_table,
    spark_schema,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from desensitize.plan import MaskPlan
    from quanguard.container import Container
    from quanguard.policy.model import Decision, Resource
    from watermark import EmbedReport, Params

__all__ = ["SparkMaskOutcome", "SparkScanOutcome", "SparkWatermarkOutcome", "mask", "scan",
           "watermark"]


@dataclass(frozen=True)
class SparkScanOutcome:
    report: DatasetReport
    asset_id: str
    partitions: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"engine": "spark", "asset_id": self.asset_id, "partitions": self.partitions,
                "seconds": round(self.seconds, 3), **self.report.to_dict()}


@dataclass(frozen=True)
class SparkMaskOutcome:
    profile: str
    plan: MaskPlan
    dataset_grade: str | None
    rows_in: int
    rows_out: int
    cells_masked: int
    spans_masked: int
    per_column: dict[str, int]
    output: str
    output_sha256: str
    partitions: int
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"engine": "spark", "profile": self.profile, "plan": self.plan.to_dict(),
                "dataset_grade": self.dataset_grade, "rows": self.rows_in,
                "rows_out": self.rows_out, "cells_masked": self.cells_masked,
                "spans_masked": self.spans_masked, "per_column": self.per_column,
                "output": self.output, "output_sha256": self.output_sha256,
                "partitions": self.partitions, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class SparkWatermarkOutcome:
    report: EmbedReport
    copy_id: str
    dataset: str
    output: str
    output_digest: str
    partitions: int
    seconds: float = field(default=0.0)

    def to_dict(self) -> dict[str, object]:
        report = {k: v for k, v in self.report.to_dict().items()
                  if k not in ("codeword", "canary_keys")}  # registry-only material
        return {"engine": "spark", "copy_id": self.copy_id, "dataset": self.dataset,
                "output": self.output, "output_digest": self.output_digest,
                "partitions": self.partitions, "seconds": round(self.seconds, 3), **report}


# -- shared steps ---------------------------------------------------------------------------

_ctx = origin


def _name(dataset: str | None, path: str) -> str:
    return dataset or Path(path.rstrip("/")).stem or "dataset"


def _resource(**kw: str | None) -> Resource:
    from quanguard.policy.model import Resource

    return Resource(**kw)


def _check_target(src: str, dst: str) -> None:
    if "://" in dst:
        return
    if Path(dst).exists():
        raise InvalidInput(f"{dst}: the output exists; choose another -o (Spark writes a new folder)")
    if Path(src).resolve() == Path(dst).resolve():
        raise InvalidInput("the output would overwrite the input; choose another -o")


@contextmanager
def _failure_recorded(container: Container, principal: Principal, action: str, dataset: str,
                      decision: Decision, ctx: RequestContext | None) -> Iterator[None]:
    """A job that breaks after it was allowed still leaves its one event (outcome failure)."""
    try:
        yield
    except BaseException as exc:
        with container.unit_of_work() as session:
            container.audit.record(session, actor=principal, action=action, dataset=dataset,
                                   decision=decision, outcome="failure", **_ctx(ctx),
                                   reason=f"spark job failed: {type(exc).__name__}",
                                   labels={"engine": "spark"})
        raise


def _write(df: DataFrame, dst: str) -> None:
    """Write Parquet into a hidden sibling folder, then rename it into place (local)."""
    if "://" in dst:
        df.write.mode("errorifexists").parquet(dst)
        return
    target = Path(dst)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        df.write.mode("errorifexists").parquet(str(tmp))
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _input_schema(df: DataFrame) -> pa.Schema:
    schema = arrow_schema(df)
    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
                      for f in schema])


def scan_df(container: Container, df: DataFrame, *, csv: bool, sample: int = 10_000,
            full: bool = False) -> tuple[DatasetReport, int]:
    """Classify a DataFrame's columns with the table scanner's kernels on every partition.

    ``full`` scans every row; otherwise a seeded random sample of about ``sample`` rows.
    Returns the graded report and the number of partitions scanned.
    """
    if sample <= 0:
        raise InvalidInput("--sample must be a positive number of rows")
    if not full:
        total = df.count()
        if total > sample:
            df = df.sample(fraction=min(1.0, sample * 1.05 / total), seed=15)
    base = container.scanner.table_scanner()
    parts = max(1, df.rdd.getNumPartitions())
    distinct_cap = max(1_000, math.ceil(base.distinct_cap / parts))
    kanon_cap = max(10_000, base.kanon_cap // parts)
    fn = kernels.scan_partition(csv=csv, distinct_cap=distinct_cap, kanon_cap=kanon_cap,
                                text_values=base.text_values)
    states = [bytes(r[0]) for r in df.mapInArrow(fn, f"{kernels.STATE_COLUMN} binary").collect()]
    merged = kernels.merge_scan_partials(states, distinct_cap=base.distinct_cap,
                                         kanon_cap=base.kanon_cap, text_values=base.text_values)
    raw = base._report(merged.columns, merged.qi_kinds, merged.kanon,
                       merged.kanon_overflow, merged.rows, not full)
    return container.scanner.grade(raw), parts


# -- scan -----------------------------------------------------------------------------------

def scan(container: Container, principal: Principal, path: str, *, spark: SparkSession | None = None,
         master: str | None = None, fmt: str | None = None, encoding: str | None = None,
         sample: int = 10_000, full: bool = False, dataset: str | None = None,
         owner_org: str | None = None, ctx: RequestContext | None = None) -> SparkScanOutcome:
    """Scan a big table on Spark, store the report in the inventory, record one event."""
    from quanguard.services.scan import save_asset

    name = _name(dataset, path)
    decision = authorize(container, principal, "scan",
                         _resource(dataset=name, owner_org=owner_org or principal.org), ctx)
    started = time.perf_counter()
    with _failure_recorded(container, principal, "scan", name, decision, ctx):
        spark = spark or get_session(master)
        df, kind = read_table(spark, path, fmt=fmt, encoding=encoding)
        report, parts = scan_df(container, df, csv=kind != "parquet", sample=sample, full=full)
    fingerprint = output_digest(path) or path
    with container.unit_of_work() as session:
        stored = save_asset(session, dataset=name, fingerprint=fingerprint, source=path,
                            fmt=kind, report=report, owner_org=owner_org or principal.org,
                            scanned_by=principal.name)
        container.audit.record(
            session, actor=principal, action="scan", dataset=name,
            fields=tuple(c.name for c in report.columns if c.entity or c.contains),
            grade=report.dataset_grade, rows=report.rows_scanned, decision=decision, **_ctx(ctx),
            labels={"engine": "spark", "asset_id": stored.id, "version": str(stored.version),
                    "mode": "sample" if report.sampled else "full", "partitions": str(parts)})
    return SparkScanOutcome(report, stored.id, parts, time.perf_counter() - started)


# -- mask -----------------------------------------------------------------------------------

def mask(container: Container, principal: Principal, src: str, dst: str, *, spark: SparkSession | None = None,
         master: str | None = None, fmt: str | None = None, encoding: str | None = None,
         profile: str | None = None, plan_file: str | None = None, key_file: str | None = None,
         sample: int = 10_000, dataset: str | None = None, owner_org: str | None = None,
         ctx: RequestContext | None = None) -> SparkMaskOutcome:
    """Mask a big table on Spark into a Parquet folder ``dst`` with the service's keys."""
    from desensitize.masker import Masker
    from desensitize.plan import load_plan_file

    name = _name(dataset, src)
    _check_target(src, dst)
    plan_profile, overrides = load_plan_file(plan_file) if plan_file else (None, None)
    spark = spark or get_session(master)
    df, kind = read_table(spark, src, fmt=fmt, encoding=encoding)
    csv = kind != "parquet"
    # the grade decides the permission, so the (sampled) scan comes first, as in `mask`
    report, parts = scan_df(container, df, csv=csv, sample=sample)
    decision = authorize(container, principal, "mask",
                         _resource(grade=report.dataset_grade, dataset=name,
                                   owner_org=owner_org or principal.org), ctx)
    started = time.perf_counter()
    with _failure_recorded(container, principal, "mask", name, decision, ctx):
        service = container.masker
        plan = service.plan(report, profile or plan_profile or decision.mask_profile,
                            overrides)
        keyring = service.keyring(key_file)
        spans = any(c.op == "spans" for c in plan.columns)
        out_schema = Masker(plan, keyring=keyring, span_finder=lambda texts: [[] for _ in texts]
                            ).output_schema(_input_schema(df))
        acc = counters(spark)
        fn = kernels.mask_partition(plan, keyring, csv=csv, needs_spans=spans, counters=acc,
                                    output_schema=out_schema)
        _write(df.mapInArrow(fn, spark_schema(out_schema)), dst)
        stats = acc.value
        rows_out = spark.read.parquet(dst).count()
        if int(stats.get("rows", 0)) != rows_out:
            # a retried task adds its counters twice: the written rows are the truth
            stats["rows"] = rows_out
    outcome = SparkMaskOutcome(
        plan.profile.name, plan, report.dataset_grade, rows_out, rows_out,
        int(stats.get("cells", 0)), int(stats.get("spans", 0)),
        {k: int(v) for k, v in dict(stats.get("per_column", {})).items()}, dst,
        output_digest(dst), parts, time.perf_counter() - started)
    with container.unit_of_work() as session:
        container.audit.record(
            session, actor=principal, action="mask", dataset=name,
            fields=tuple(plan.masked_columns), grade=report.dataset_grade, rows=rows_out,
            decision=decision, result_digest=outcome.output_sha256 or None, **_ctx(ctx),
            labels={"engine": "spark", "profile": outcome.profile, "rows_in": str(rows_out),
                    "rows_out": str(rows_out), "cells_masked": str(outcome.cells_masked),
                    "partitions": str(parts), "output_sha256": outcome.output_sha256,
                    "policy_profile": str(decision.mask_profile or "")})
    return outcome


# -- watermark ------------------------------------------------------------------------------

def _grade(container: Container, dataset: str) -> str | None:
    from quanguard.services.scan import list_assets

    with container.session() as session:
        found = list_assets(session, dataset=dataset, limit=1)
    return found[0].dataset_grade if found else None


def watermark(container: Container, principal: Principal, src: str, dst: str, *, recipient: str,
              spark: SparkSession | None = None, master: str | None = None, fmt: str | None = None,
              encoding: str | None = None, dataset: str | None = None, params: Params | None = None,
              ctx: RequestContext | None = None) -> SparkWatermarkOutcome:
    """Mark a big table for ``recipient`` on Spark, register the copy, record one event.

    The plan (key and marked columns) is fixed on the driver from the table's first rows;
    each partition marks its rows with it. Raises ``TableTooSmall`` (nothing left at
    ``dst``) when the whole table carried too few marks.
    """
    from watermark import Embedder, Params
    from watermark.columns import plan_columns

    params = params or Params()
    if params.canaries:
        raise InvalidInput("canary rows are for small tables; a Spark job does not add them")
    if not recipient.strip():
        raise InvalidInput("--recipient must name who receives the copy")
    name = _name(dataset, src)
    _check_target(src, dst)
    grade = _grade(container, name)
    decision = authorize(container, principal, "watermark_embed",
                         _resource(grade=grade, dataset=name, owner_org=principal.org), ctx)
    params = container.watermarker.bounded(params, grade)  # the bound is policy's
    started = time.perf_counter()
    with _failure_recorded(container, principal, "watermark_embed", name, decision, ctx):
        spark = spark or get_session(master)
        df, kind = read_table(spark, src, fmt=fmt, encoding=encoding)
        csv = kind != "parquet"
        schema = _input_schema(df)
        head = df.limit(65_536).toArrow()
        first = pa.Table.from_batches(head.to_batches(), head.schema).combine_chunks()
        sample = kernels.normalize(first.to_batches()[0], csv=csv) if first.num_rows else \
            pa.RecordBatch.from_pylist([], schema=schema)
        plan = plan_columns(sample, params)
        wm = container.watermarker
        secret = wm.secret
        acc = counters(spark)
        fn = kernels.watermark_partition(secret, recipient, params, plan, csv=csv, counters=acc,
                                         output_schema=schema)
        _write(df.mapInArrow(fn, spark_schema(schema)), dst)
        stats = acc.value
        emb = Embedder(secret, recipient, params, plan=plan)
        emb.rows = spark.read.parquet(dst).count()
        emb._stats = {k: dict(v) for k, v in dict(stats.get("stats", {})).items()}
        emb._formats_kept = bool(stats.get("formats_kept", True))
        try:
            report = emb.report()
        except Exception:
            if "://" not in dst:
                shutil.rmtree(dst, ignore_errors=True)
            raise
        digest = output_digest(dst)
        with container.unit_of_work() as session:
            copy_id = wm.register(session, dataset=name, report=report,
                                  columns=tuple(schema.names), digest=digest,
                                  issued_by=principal.id)
            container.audit.record(
                session, actor=principal, action="watermark_embed", dataset=name,
                fields=report.plan.marked_columns, rows=report.rows, decision=decision,
                result_digest=digest or None, **_ctx(ctx),
                labels={"engine": "spark", "recipient": recipient, "copy_id": copy_id,
                        "marked_cells": report.marked_cells, "rows_in": str(report.rows),
                        "rows_out": str(report.rows), "gamma": report.plan.gamma,
                        "partitions": str(df.rdd.getNumPartitions()),
                        "key": report.key_fingerprint})
    return SparkWatermarkOutcome(report, copy_id, name, dst, digest,
                                 df.rdd.getNumPartitions(), time.perf_counter() - started)
