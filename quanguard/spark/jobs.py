"""Spark job bodies: the Arrow kernels on every partition (``DataFrame.mapInArrow``).

Scan, mask and mark a table held as a Spark DataFrame (Parquet or CSV/TSV in, Parquet
out). Nothing here asks the gate or writes the trail: the use cases
(:mod:`quanguard.usecases.spark`) authorize, call these bodies and record the one event
of each job.

Outputs are written to a hidden sibling folder and renamed into place when the job and
its checks succeed, so a failed job leaves no half-written copy at the target.
"""

from __future__ import annotations

import math
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from desensitize import DatasetReport
from quanguard.errors import InvalidInput
from quanguard.spark import kernels
from quanguard.spark.session import arrow_schema, counters, output_digest, spark_schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from desensitize.keys import Keyring
    from desensitize.masker import MaskStats
    from desensitize.plan import MaskPlan
    from quanguard.container import Container
    from quanguard.services.watermark import EmbedOutcome
    from watermark import Params

__all__ = ["check_target", "mask_df", "scan_df", "table_name",
           "watermark_df"]


def table_name(dataset: str | None, path: str) -> str:
    """The dataset name a job reports under: ``dataset``, else the path's stem."""
    return dataset or Path(path.rstrip("/")).stem or "dataset"


def check_target(src: str, dst: str) -> None:
    """A local output folder must be new and must not be the input."""
    if "://" in dst:
        return
    if Path(dst).exists():
        raise InvalidInput(f"{dst}: the output exists; choose another -o (Spark writes a new folder)")
    if Path(src).resolve() == Path(dst).resolve():
        raise InvalidInput("the output would overwrite the input; choose another -o")


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


def mask_df(spark: SparkSession, df: DataFrame, plan: MaskPlan, keyring: Keyring, *,
            csv: bool, dst: str) -> MaskStats:
    """Mask every partition of ``df`` by ``plan`` into the Parquet folder ``dst``; the
    counters of the whole job, its rows counted in the output."""
    from desensitize.masker import Masker, MaskStats

    spans = any(c.op == "spans" for c in plan.columns)
    out_schema = Masker(plan, keyring=keyring, span_finder=lambda texts: [[] for _ in texts]
                        ).output_schema(_input_schema(df))
    acc = counters(spark)
    fn = kernels.mask_partition(plan, keyring, csv=csv, needs_spans=spans, counters=acc,
                                output_schema=out_schema)
    _write(df.mapInArrow(fn, spark_schema(out_schema)), dst)
    stats = acc.value
    # a retried task adds its counters twice: the written rows are the truth
    rows = spark.read.parquet(dst).count()
    return MaskStats(rows, int(stats.get("cells", 0)), int(stats.get("spans", 0)),
                     {k: int(v) for k, v in dict(stats.get("per_column", {})).items()})


def watermark_df(spark: SparkSession, df: DataFrame, secret: bytes, recipient: str,
                 params: Params, *, csv: bool, dst: str) -> tuple[EmbedOutcome, int]:
    """Mark every partition of ``df`` for ``recipient`` into the Parquet folder ``dst``;
    the copy written (as a single-process embedding describes it) and the partitions.

    The plan (key and marked columns) is fixed on the driver from the table's first rows;
    each partition marks its rows with it. Raises ``TableTooSmall`` (nothing left at
    ``dst``) when the whole table carried too few marks.
    """
    from quanguard.services.watermark import EmbedOutcome
    from watermark import Embedder
    from watermark.columns import plan_columns

    schema = _input_schema(df)
    head = df.limit(65_536).toArrow()
    first = pa.Table.from_batches(head.to_batches(), head.schema).combine_chunks()
    sample = kernels.normalize(first.to_batches()[0], csv=csv) if first.num_rows else \
        pa.RecordBatch.from_pylist([], schema=schema)
    plan = plan_columns(sample, params)
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
    return (EmbedOutcome(report, dst, output_digest(dst), tuple(schema.names)),
            df.rdd.getNumPartitions())
