"""Binary and database readers behind :func:`desensitize.tableio.open_table`:
Parquet, XLSX (with a zip-bomb guard) and SQL tables (private)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from desensitize._tableio_readers import _spread, _StringColumns, _strings
from desensitize.errors import TableError, TableTooLarge

XLSX_MAX_UNCOMPRESSED = 1024 * 1024 * 1024
XLSX_MAX_RATIO = 200


# ----------------------------------------------------------------------- Parquet


class ParquetSource:
    """Parquet file; ``strings=False`` keeps the stored types."""

    format = "parquet"
    encoding = None

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = str(path)
        self._p = path
        if path.stat().st_size == 0:
            raise TableError(f"{path.name}: empty file")
        try:
            self._file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TableError(f"{path.name}: not a readable Parquet file: {exc}") from None
        self._native = self._file.schema_arrow
        self._schema = pa.schema([(f.name, pa.string()) for f in self._native])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def native_schema(self) -> pa.Schema:
        return self._native

    @property
    def column_names(self) -> list[str]:
        return list(self._native.names)

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._file.iter_batches(batch_size=batch_size):
                yield _strings(batch) if strings else batch
        except (pa.ArrowInvalid, OSError) as exc:
            raise TableError(f"{self._p.name}: corrupt Parquet data: {exc}") from None

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        groups = self._file.num_row_groups
        try:
            if groups <= 1:
                yield from _spread(list(self.iter_batches()), n)
                return
            picks = sorted({int(g * groups / min(groups, 8)) for g in range(min(groups, 8))})
            per = max(1, n // len(picks))
            for g in picks:
                table = self._file.read_row_group(g)
                yield from _spread([_strings(b) for b in table.slice(0, per).to_batches()], per)
        except (pa.ArrowInvalid, OSError) as exc:
            raise TableError(f"{self._p.name}: corrupt Parquet data: {exc}") from None


# -------------------------------------------------------------------------- XLSX


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ") if (value.hour or value.minute or value.second) else (
            value.date().isoformat()
        )
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def check_zip(path: Path) -> None:
    """Refuse an XLSX whose zip directory declares a bomb-like expansion."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise TableError(f"{path.name}: not a valid XLSX (zip) file: {exc}") from None
    total = sum(i.file_size for i in infos)
    if total > XLSX_MAX_UNCOMPRESSED:
        raise TableTooLarge(
            f"{path.name}: XLSX expands to {total} bytes (limit {XLSX_MAX_UNCOMPRESSED})"
        )
    for i in infos:
        if i.compress_size and i.file_size / i.compress_size > XLSX_MAX_RATIO and i.file_size > 2**24:
            raise TableTooLarge(f"{path.name}: XLSX member {i.filename} looks like a zip bomb")


class XlsxSource(_StringColumns):
    """First (or named) worksheet of an XLSX workbook; the first row is the header."""

    format = "xlsx"
    encoding = None

    def __init__(self, path: Path, *, sheet: str | None) -> None:
        self.path = str(path)
        self._p = path
        self._sheet = sheet
        if path.stat().st_size == 0:
            raise TableError(f"{path.name}: empty file")
        check_zip(path)
        rows = self._rows()
        header = next(rows, None)
        if header is None or all(c is None for c in header):
            raise TableError(f"{path.name}: empty worksheet")
        while header and header[-1] is None:
            header = header[:-1]
        self._set_names([str(_cell_text(c) or f"column_{i + 1}").strip() for i, c in enumerate(header)])

    def _rows(self) -> Iterator[tuple[Any, ...]]:
        import openpyxl

        try:
            wb = openpyxl.load_workbook(self._p, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on bad input
            raise TableError(f"{self._p.name}: not a readable XLSX workbook: {exc}") from None
        try:
            if self._sheet is not None and self._sheet not in wb.sheetnames:
                raise TableError(
                    f"{self._p.name}: no sheet {self._sheet!r} (sheets: {', '.join(wb.sheetnames)})"
                )
            ws = wb[self._sheet] if self._sheet else wb.worksheets[0]
            yield from ws.iter_rows(values_only=True)
        finally:
            wb.close()

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        width = len(self._names)
        rows = self._rows()
        next(rows, None)
        cols: list[list[str | None]] = [[] for _ in range(width)]
        for r, row in enumerate(rows, 2):
            if len(row) > width and any(c is not None for c in row[width:]):
                raise TableError(f"{self._p.name}: row {r} has cells beyond the header")
            if all(c is None for c in row):
                continue
            for i in range(width):
                cols[i].append(_cell_text(row[i]) if i < len(row) else None)
            if len(cols[0]) >= batch_size:
                yield pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in cols], schema=self._schema)
                cols = [[] for _ in range(width)]
        if cols and cols[0]:
            yield pa.RecordBatch.from_arrays([pa.array(c, pa.string()) for c in cols], schema=self._schema)

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        yield from _spread(list(self.iter_batches()), n)


# --------------------------------------------------------------------------- SQL


def split_sql_url(url: str, table: str | None) -> tuple[str, str]:
    """``sqlite:///f.db#table`` → (``sqlite:///f.db``, ``table``); the fragment wins."""
    base, _, frag = url.partition("#")
    name = frag or table
    if not name:
        raise TableError("a SQL source needs a table: append #table to the URL or pass --table")
    if not name.replace("_", "").replace(".", "").isalnum():
        raise TableError(f"invalid SQL table name {name!r}")
    return base, name


class SqlSource(_StringColumns):
    """A table of a database reachable by SQLAlchemy URL, streamed in chunks."""

    format = "sql"
    encoding = None

    def __init__(self, url: str, table: str) -> None:
        import sqlalchemy as sa

        self.path = f"{url}#{table}"
        self._url = url
        self._table = table
        try:
            self._engine = sa.create_engine(url)
            md = sa.MetaData()
            self._t = sa.Table(table, md, autoload_with=self._engine)
        except sa.exc.NoSuchTableError:
            raise TableError(f"no table {table!r} in the database") from None
        except (sa.exc.SQLAlchemyError, ValueError) as exc:
            raise TableError(f"cannot open SQL source: {str(exc).splitlines()[0]}") from None
        self._set_names([c.name for c in self._t.columns])

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(sa.select(self._t))
            while rows := result.fetchmany(batch_size):
                cols = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays(
                    [pa.array([_cell_text(v) for v in c], pa.string()) for c in cols],
                    schema=self._schema,
                )

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(self._t)).scalar() or 0
            if total <= n:
                windows = [(0, total)]
            else:  # a few windows spread over the table
                per = max(1, n // 8)
                windows = [(int(total * w / 8), per) for w in range(8)]
            for offset, limit in windows:
                rows = conn.execute(sa.select(self._t).offset(offset).limit(limit)).fetchall()
                if rows:
                    cols = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays(
                        [pa.array([_cell_text(v) for v in c], pa.string()) for c in cols],
                        schema=self._schema,
                    )
