"""Spark for big tables: the same Arrow kernels as the single-process path, on a cluster.

``scan``, ``mask`` and ``watermark`` take the container (keys, profiles, policy from the
service's configuration), the principal and a table path (Parquet, or CSV/TSV), run the
domain kernels on every partition through ``DataFrame.mapInArrow`` and write Parquet.
Each job is authorized by :func:`quanguard.gate.authorize` and leaves one audit event
with its row counts. pyspark is imported only when a job starts
(``pip install 'quanguard[spark]'``; Java 17 or newer).

    from quanguard.spark import get_session, mask
    outcome = mask(container, principal, "lake/persons.parquet", "out/persons_masked.parquet",
                   spark=get_session("local[2]"))
"""

from __future__ import annotations

from quanguard.spark.jobs import (
    SparkMaskOutcome,
    SparkScanOutcome,
    SparkWatermarkOutcome,
    mask,
    scan,
    scan_df,
    watermark,
)
from quanguard.spark.session import get_session, read_table, require_spark

__all__ = [
    "SparkMaskOutcome",
    "SparkScanOutcome",
    "SparkWatermarkOutcome",
    "get_session",
    "mask",
    "read_table",
    "require_spark",
    "scan",
    "scan_df",
    "watermark",
]
