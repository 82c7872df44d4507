"""Table input/output as streams of Arrow record batches.

``open_table(path)`` opens CSV/TSV (encoding detected: UTF-8, UTF-8 with BOM,
GBK/GB18030), JSON Lines, Parquet, XLSX or a SQL table (``sqlite:///f.db#table``)
and yields ``pyarrow.RecordBatch`` es whose columns are strings by default, so
leading zeros of identifiers survive.  ``open_writer(...)`` writes the same
formats atomically: rows go to a temporary file in the target directory that is
renamed over the target only when the writer is closed without error.

Raises (all from :mod:`desensitize.errors`):
    TableError (kind ``invalid``): unsupported format, empty file, binary file,
        undecodable or mixed encoding, an encoding that is unknown or not a text
        encoding, ragged rows, over-long lines, corrupt file; an output that is a
        folder, in a folder that does not exist or that takes no files.
    OutputUnavailable (kind ``unavailable``, a TableError): the output's disk is full
        or failing; nothing was written.
    TableTooLarge (kind ``too_large``): an XLSX whose declared uncompressed size
        is too large (zip bomb guard).

One module a format: ``delimited`` (CSV/TSV), ``jsonl``, ``parquet``, ``xlsx`` and ``sql``,
each with its reader and its writer; ``encoding`` detects the encoding of text tables and
``_common`` holds what the formats share. ``check_output`` and ``text_codec`` let a
caller refuse a bad output path or encoding before a long run starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, Self

import pyarrow as pa

from desensitize.errors import TableError
from desensitize.tableio._common import check_output_path as check_output_path
from desensitize.tableio._common import write_error as write_error
from desensitize.tableio.delimited import CsvSource, CsvWriter
from desensitize.tableio.encoding import PREFIX, detect_encoding
from desensitize.tableio.encoding import text_codec as text_codec
from desensitize.tableio.jsonl import JsonlSource, JsonlWriter
from desensitize.tableio.parquet import ParquetSource, ParquetWriter
from desensitize.tableio.sql import SqlSource, SqlWriter, split_sql_url, sqlite_file
from desensitize.tableio.xlsx import XlsxSource, XlsxWriter

FORMATS = ("csv", "tsv", "jsonl", "parquet", "xlsx", "sql")

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "xlsx",
}


class TableSource(Protocol):
    """What every reader offers (see module docstring)."""

    @property
    def path(self) -> str: ...

    @property
    def format(self) -> str: ...

    @property
    def encoding(self) -> str | None: ...

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def native_schema(self) -> pa.Schema: ...

    @property
    def column_names(self) -> list[str]: ...

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]: ...

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]: ...


class TableWriter(Protocol):
    """Context manager: ``write(batch)``; commits (renames) on a clean exit."""

    def write(self, batch: pa.RecordBatch | pa.Table) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None: ...


def detect_format(path: str | os.PathLike[str]) -> str:
    """The table format of ``path`` from its URL scheme or file extension."""
    text = str(path)
    if "://" in text:
        return "sql"
    suffix = Path(text).suffix.lower()
    try:
        return _EXTENSIONS[suffix]
    except KeyError:
        known = " ".join(sorted(_EXTENSIONS))
        raise TableError(
            f"{Path(text).name}: unsupported table format {suffix or '(no extension)'!r} "
            f"(known: {known}, or a SQLAlchemy URL)"
        ) from None


# Wider tables are refused: government exports have tens of columns, a CSV bomb has
# hundreds of thousands, and every column costs a scan.
MAX_COLUMNS = 2_000


def open_table(
    path: str | os.PathLike[str],
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    table: str | None = None,
    format: str | None = None,
) -> TableSource:
    """Open a table for streaming.

    ``encoding`` forces the CSV encoding (detected otherwise) and names a JSON Lines
    file's (UTF-8 otherwise; or GBK/GB18030); ``sheet`` picks an
    XLSX worksheet (first otherwise); ``table`` names the SQL table when the URL
    has no ``#table`` fragment.  Raises TableError for anything unreadable.
    """
    source = _open(path, encoding=encoding, sheet=sheet, table=table, format=format)
    width = len(source.column_names)
    if width > MAX_COLUMNS:
        raise TableError(
            f"{Path(str(path)).name}: {width:,} columns; at most {MAX_COLUMNS:,} are accepted "
            "(a table this wide is not a dataset export)"
        )
    return source


def _open(
    path: str | os.PathLike[str],
    *,
    encoding: str | None,
    sheet: str | None,
    table: str | None,
    format: str | None,
) -> TableSource:
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise TableError(f"unknown table format {fmt!r} (known: {' '.join(FORMATS)})")
    if fmt == "sql":
        url, tbl = split_sql_url(str(path), table)
        return SqlSource(url, tbl)
    p = Path(path)
    if not p.is_file():
        raise TableError(f"{p}: no such file")
    if fmt in ("csv", "tsv"):
        return CsvSource(p, encoding=encoding, delimiter="\t" if fmt == "tsv" else ",")
    if fmt == "jsonl":
        return JsonlSource(p, encoding=encoding)
    if fmt == "parquet":
        return ParquetSource(p)
    return XlsxSource(p, sheet=sheet)


def open_writer(
    path: str | os.PathLike[str],
    format: str | None = None,
    encoding: str | None = None,
    schema: pa.Schema | None = None,
    *,
    table: str | None = None,
    sheet: str | None = None,
) -> TableWriter:
    """Open an atomic writer for ``path`` in ``format`` (detected from the path).

    ``encoding`` applies to CSV/TSV (UTF-8 by default; ``utf-8-sig`` writes a
    BOM; ``gb18030``/``gbk`` transcode) and JSON Lines (UTF-8 or the GB family).  ``schema`` fixes the column order and
    types; without it the first batch decides.  Nothing appears at ``path``
    unless the writer is closed without error.
    """
    fmt = format or detect_format(path)
    if fmt == "sql":
        url, tbl = split_sql_url(str(path), table)
        return SqlWriter(url, tbl, schema)
    p = check_output_path(path)
    if fmt in ("csv", "tsv"):
        return CsvWriter(p, encoding or "utf-8", schema, delimiter="\t" if fmt == "tsv" else ",")
    if fmt == "jsonl":
        return JsonlWriter(p, schema, encoding)
    if fmt == "parquet":
        return ParquetWriter(p, schema)
    if fmt == "xlsx":
        return XlsxWriter(p, schema, sheet=sheet)
    raise TableError(f"unknown table format {fmt!r} (known: {' '.join(FORMATS)})")


def check_output(target: str | os.PathLike[str], *, probe: bool = False) -> None:
    """Refuse (TableError) an output that cannot be written before a long run starts: a
    file path or the database file of a ``sqlite:///`` URL that is a folder, in a folder
    that does not exist, or (``probe``) in a folder that takes no files."""
    text = str(target)
    if "://" in text:
        db = sqlite_file(text.partition("#")[0])
        if db is not None:
            check_output_path(db, probe=probe)
        return
    check_output_path(text, probe=probe)


def detect_text_encoding(path: str | os.PathLike[str]) -> str:
    """Encoding of a text file (utf-8, utf-8-sig or gb18030), as for CSV; TableError otherwise."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            prefix = fh.read(PREFIX)
    except OSError as exc:
        raise TableError(f"{p}: cannot read ({exc.strerror})") from None
    if not prefix.strip():
        raise TableError(f"{p.name}: empty file")
    return detect_encoding(prefix, p.name)


def read_table(path: str | os.PathLike[str], **kwargs: Any) -> pa.Table:
    """Read a whole (small) table as strings; for tests and small inputs."""
    source = open_table(path, **kwargs)
    batches = list(source.iter_batches())
    if not batches:
        return source.schema.empty_table()
    return pa.Table.from_batches(batches, schema=source.schema)
