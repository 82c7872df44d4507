"""Spark for big tables: the same Arrow kernels as the single-process path, on a cluster.

The job bodies (:mod:`quanguard.spark.jobs`: ``scan_df``, ``mask_df``, ``watermark_df``)
run the domain kernels on every partition through ``DataFrame.mapInArrow`` and write
Parquet; the use cases that authorize a job and record its one audit event are
:mod:`quanguard.usecases.spark` (``scan``, ``mask``, ``watermark``). pyspark is imported
only when a job starts (``pip install 'quanguard[spark]'``; Java 17 or newer).

    from quanguard.spark import get_session
    from quanguard.usecases.spark import mask
    outcome = mask(container, principal, "lake/persons.parquet", "out/persons_masked.parquet",
                   spark=get_session("local[2]"))
"""

from __future__ import annotations

from quanguard.spark.jobs import mask_df, scan_df, watermark_df
from quanguard.spark.session import get_session, read_table, require_spark

__all__ = [
    "get_session",
    "mask_df",
    "read_table",
    "require_spark",
    "scan_df",
    "watermark_df",
]
