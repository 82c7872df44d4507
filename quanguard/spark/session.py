"""The Spark side of the driver: the session, reading tables, schemas, counters.

pyspark is an optional part (``pip install 'quanguard[spark]'``) and needs a Java
runtime; both are checked when a job starts, with a message saying what to install.
Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from quanguard.errors import InvalidInput, Unavailable

if TYPE_CHECKING:  # pyspark is optional: imported by the functions that need it
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

__all__ = ["MergeCounters", "arrow_schema", "counters", "get_session", "merge_counters",
           "output_digest", "read_table", "require_spark", "spark_schema", "table_format"]

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}


def require_spark() -> None:
    """Raise Unavailable naming what to install when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise Unavailable("Spark jobs need pyspark: pip install 'quanguard[spark]'") from exc
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        raise Unavailable("Spark needs a Java runtime (17 or newer): install "
                          "openjdk-17-jre-headless (Debian/Ubuntu) or set JAVA_HOME")


def get_session(master: str | None = None, *, app_name: str = "quanguard") -> SparkSession:
    """The active SparkSession, or a new one on ``master`` (``local[2]``, ``yarn``, ...).

    Under ``spark-submit`` the master and the executors' Python come from the submit
    configuration. In local mode the workers run this very interpreter.
    """
    require_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = (builder.config("spark.ui.enabled", "false")
                       .config("spark.sql.shuffle.partitions", "4"))
    return builder.getOrCreate()


def table_format(path: str, fmt: str | None = None) -> str:
    """``parquet``, ``csv`` or ``tsv`` from ``fmt`` or the path (a folder is Parquet)."""
    if fmt:
        if fmt not in ("parquet", "csv", "tsv"):
            raise InvalidInput(f"unsupported Spark input format {fmt!r} (parquet, csv, tsv)")
        return fmt
    suffix = Path(path.rstrip("/")).suffix.lower()
    if suffix in _FORMATS:
        return _FORMATS[suffix]
    if "://" not in path and Path(path).is_dir():
        return "parquet"
    raise InvalidInput(f"{Path(path).name}: Spark reads Parquet or CSV/TSV "
                       f"(.parquet .csv .tsv, or a Parquet folder); got {suffix or 'no extension'!r}")


def read_table(spark: SparkSession, path: str, *, fmt: str | None = None,
               encoding: str | None = None) -> tuple[DataFrame, str]:
    """A DataFrame over ``path`` and its format. CSV columns are all strings, as in the
    single-process reader (no type inference)."""
    kind = table_format(path, fmt)
    if "://" not in path and not Path(path).exists():
        raise InvalidInput(f"{path}: no such file or folder")
    from pyspark.errors import AnalysisException

    try:
        if kind == "parquet":
            return spark.read.parquet(path), kind
        reader = (spark.read.option("header", "true").option("inferSchema", "false")
                  .option("multiLine", "true").option("escape", '"')
                  .option("encoding", encoding or "UTF-8"))
        if kind == "tsv":
            reader = reader.option("sep", "\t")
        return reader.csv(path), kind
    except AnalysisException as exc:
        raise InvalidInput(f"{path}: cannot be read by Spark: {str(exc).splitlines()[0]}") from exc


def arrow_schema(df: DataFrame) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(df.schema)


def spark_schema(schema: pa.Schema) -> StructType:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def output_digest(path: str) -> str:
    """SHA-256 over a written output (its part files in name order); '' for remote paths."""
    p = Path(path)
    if "://" in path or not p.exists():
        return ""
    files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith((".", "_"))) \
        if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(p).as_posix().encode() if p.is_dir() else b"")
        with f.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(out[k], v) if k in out else v
        return out
    if isinstance(a, bool) and isinstance(b, bool):
        return a and b
    return a + b


def merge_counters(a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
    """Numbers add, flags must all hold, mappings merge key by key."""
    return _merge(a, b)  # type: ignore[no-any-return]


class MergeCounters:
    """Accumulator parameter (pyspark's ``AccumulatorParam`` protocol) over dicts."""

    def zero(self, value: dict[str, object]) -> dict[str, object]:
        return {}

    def addInPlace(self, a: dict[str, object], b: dict[str, object]) -> dict[str, object]:
        return merge_counters(a, b)


def counters(spark: SparkSession) -> Any:
    """A dict accumulator merged with :func:`merge_counters`."""
    # MergeCounters has AccumulatorParam's methods without subclassing it: pyspark is
    # imported only when a job runs.
    return spark.sparkContext.accumulator({}, MergeCounters())  # type: ignore[arg-type]
