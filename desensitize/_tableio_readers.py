"""Readers behind :func:`desensitize.tableio.open_table` (private)."""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from desensitize.errors import TableError, TableTooLarge

MAX_LINE = 4 * 1024 * 1024  # a row longer than this is refused (10 MB lines are bad input)
PREFIX = 1024 * 1024  # bytes looked at to detect the encoding
SMALL_FILE = 16 * 1024 * 1024  # below this, sampling reads the whole file
XLSX_MAX_UNCOMPRESSED = 1024 * 1024 * 1024
XLSX_MAX_RATIO = 200

_GB_FAMILY = {"gb2312", "gbk", "gb18030", "hz", "cp936", "euc_cn"}


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise TableError(f"unknown encoding {encoding!r}") from None


def _strings(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Cast every non-string column of ``batch`` to string."""
    if all(pa.types.is_string(f.type) for f in batch.schema):
        return batch
    cols = [c if pa.types.is_string(c.type) else _to_string(c) for c in batch.columns]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _to_string(col: pa.Array) -> pa.Array:
    if pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
        return pc.cast(col, pa.string())
    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())


def _spread(batches: list[pa.RecordBatch], n: int) -> Iterator[pa.RecordBatch]:
    """Yield about ``n`` rows taken evenly from ``batches``."""
    if not batches:
        return
    table = pa.Table.from_batches(batches)
    if table.num_rows <= n:
        yield from table.to_batches()
        return
    step = table.num_rows / n
    idx = pa.array([int(i * step) for i in range(n)], pa.int64())
    yield from table.take(idx).to_batches()


# --------------------------------------------------------------------------- CSV


def detect_encoding(prefix: bytes, name: str) -> str:
    """Encoding of a CSV prefix: utf-8, utf-8-sig or gb18030; TableError otherwise."""
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if b"\x00" in prefix:
        raise TableError(f"{name}: binary file (NUL bytes), not a text table")
    cut = prefix
    if len(prefix) >= PREFIX:  # do not judge a character cut at the boundary
        cut = prefix[: prefix.rfind(b"\n") + 1] or prefix
    try:
        cut.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    utf8_lines = other_lines = 0
    for line in cut.splitlines():
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_lines += 1
        except UnicodeDecodeError:
            other_lines += 1
    if utf8_lines and other_lines:
        raise TableError(
            f"{name}: mixed encodings ({utf8_lines} UTF-8 lines and {other_lines} others "
            "in the first MiB); re-save the file in one encoding"
        )
    from charset_normalizer import from_bytes

    best = from_bytes(cut).best()
    if best is None:
        raise TableError(f"{name}: cannot determine the text encoding; pass an encoding")
    enc = _codec_name(best.encoding)
    if enc in _GB_FAMILY:
        return "gb18030"
    raise TableError(
        f"{name}: unsupported text encoding {enc!r} (expected UTF-8 or GBK/GB18030); "
        "pass an encoding explicitly"
    )


class CsvSource:
    """CSV/TSV file; every column read as string."""

    format = "csv"

    def __init__(self, path: Path, *, encoding: str | None, delimiter: str) -> None:
        self.path = str(path)
        self._p = path
        self._delim = delimiter
        self.format = "tsv" if delimiter == "\t" else "csv"
        with path.open("rb") as fh:
            prefix = fh.read(PREFIX)
        if not prefix.strip():
            raise TableError(f"{path.name}: empty file")
        if encoding is None:
            self.encoding = detect_encoding(prefix, path.name)
        else:
            self.encoding = "utf-8-sig" if _codec_name(encoding) == "utf-8-sig" else encoding
            if b"\x00" in prefix and "16" not in encoding and "32" not in encoding:
                raise TableError(f"{path.name}: binary file (NUL bytes), not a text table")
        self._names = self._header(prefix)
        self._schema = pa.schema([(n, pa.string()) for n in self._names])

    def _header(self, prefix: bytes) -> list[str]:
        end = prefix.find(b"\n")
        if end < 0 and len(prefix) >= PREFIX:
            raise TableError(f"{self._p.name}: header line longer than {PREFIX} bytes")
        raw = prefix if end < 0 else prefix[: end + 1]
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise TableError(f"{self._p.name}: header is not {self.encoding}: {exc}") from None
        row = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=self._delim), [])
        names = [c.strip() for c in row]
        if not names or all(not n for n in names):
            raise TableError(f"{self._p.name}: no header row")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise TableError(f"{self._p.name}: duplicate column names: {', '.join(dup)}")
        return names

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    native_schema = schema

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

    def _open(self, stream: Any, batch_size: int, skip_header: bool) -> Any:
        enc = "utf8" if self.encoding in ("utf-8", "utf-8-sig") else self.encoding
        ro = pacsv.ReadOptions(
            column_names=self._names,
            skip_rows=1 if skip_header else 0,
            block_size=MAX_LINE,
            encoding=enc,
        )
        po = pacsv.ParseOptions(delimiter=self._delim, newlines_in_values=True)
        co = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in self._names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        return pacsv.open_csv(stream, read_options=ro, parse_options=po, convert_options=co)

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        rows = 0
        try:
            with self._p.open("rb") as fh:
                reader = self._open(fh, batch_size, True)
                pending: list[pa.RecordBatch] = []
                count = 0
                for batch in reader:
                    self._check_cells(batch, rows)
                    rows += batch.num_rows
                    pending.append(batch)
                    count += batch.num_rows
                    if count >= batch_size:
                        yield from pa.Table.from_batches(pending).combine_chunks().to_batches(
                            max_chunksize=batch_size
                        )
                        pending, count = [], 0
                if pending:
                    yield from pa.Table.from_batches(pending).to_batches(max_chunksize=batch_size)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise TableError(self._explain(exc, rows)) from None

    def _check_cells(self, batch: pa.RecordBatch, rows: int) -> None:
        for col in batch.columns:
            longest = pc.max(pc.binary_length(col)).as_py()
            if longest is not None and longest > MAX_LINE:
                raise TableError(
                    f"{self._p.name}: a line after row {rows} is longer than "
                    f"{MAX_LINE // 2**20} MiB"
                )

    def _explain(self, exc: Exception, rows: int) -> str:
        msg = str(exc).splitlines()[0]
        name = self._p.name
        if "straddling" in msg or "straddles" in msg:
            return f"{name}: a line after row {rows} is longer than {MAX_LINE // 2**20} MiB"
        if "invalid UTF8" in msg or isinstance(exc, UnicodeDecodeError):
            return (
                f"{name}: bytes after row {rows} are not valid {self.encoding} "
                "(wrong or mixed encoding)"
            )
        if "Expected" in msg and "columns" in msg:
            return f"{name}: ragged rows after row {rows}: {msg.replace('CSV parse error: ', '')}"
        return f"{name}: cannot read CSV after row {rows}: {msg}"

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        size = self._p.stat().st_size
        if size <= SMALL_FILE:
            yield from _spread(list(self.iter_batches()), n)
            return
        # Large file: read a few windows spread over the file, each resynchronised
        # at a line start; a window that lands inside a quoted newline is skipped.
        windows = 8
        per = max(1, n // windows)
        with self._p.open("rb") as fh:
            for w in range(windows):
                fh.seek(int(size * w / windows))
                if w:
                    fh.readline()
                chunk = fh.read(min(4 * 1024 * 1024, max(256 * 1024, per * 512)))
                chunk = chunk[: chunk.rfind(b"\n") + 1]
                if not chunk:
                    continue
                try:
                    table = self._open(io.BytesIO(chunk), per, w == 0).read_all()
                except (pa.ArrowInvalid, UnicodeDecodeError):
                    if w == 0:
                        raise
                    continue
                yield from table.slice(0, per).to_batches()


# ------------------------------------------------------------------------- JSONL


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


class JsonlSource:
    """JSON Lines: one object per line; values read as strings (JSON text)."""

    format = "jsonl"
    encoding = "utf-8"

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._p = path
        names: dict[str, None] = {}
        with path.open("rb") as fh:
            head = fh.read(4096)
            if b"\x00" in head:
                raise TableError(f"{path.name}: binary file (NUL bytes), not JSON Lines")
            fh.seek(0)
            for lineno, obj in self._objects(fh, limit=1000):
                names.update(dict.fromkeys(obj))
        if not names:
            raise TableError(f"{path.name}: empty file")
        self._names = list(names)
        self._schema = pa.schema([(n, pa.string()) for n in self._names])

    def _objects(self, fh: Any, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
        seen = 0
        for lineno, line in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), b""), 1):
            if len(line) > MAX_LINE:
                raise TableError(f"{self._p.name}:{lineno}: line longer than {MAX_LINE // 2**20} MiB")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise TableError(f"{self._p.name}:{lineno}: not JSON: {exc}") from None
            if not isinstance(obj, dict):
                raise TableError(f"{self._p.name}:{lineno}: expected a JSON object per line")
            yield lineno, obj
            seen += 1
            if limit is not None and seen >= limit:
                return

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    native_schema = schema

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        known = set(self._names)
        cols: list[list[str | None]] = [[] for _ in self._names]
        with self._p.open("rb") as fh:
            for lineno, obj in self._objects(fh):
                extra = obj.keys() - known
                if extra:
                    raise TableError(
                        f"{self._p.name}:{lineno}: field(s) {', '.join(sorted(extra))} "
                        "not present in the first 1000 lines"
                    )
                for i, n in enumerate(self._names):
                    cols[i].append(_json_text(obj.get(n)))
                if len(cols[0]) >= batch_size:
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(c, pa.string()) for c in cols], schema=self._schema
                    )
                    cols = [[] for _ in self._names]
        if cols[0]:
            yield pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in cols], schema=self._schema
            )

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        size = self._p.stat().st_size
        if size <= SMALL_FILE:
            yield from _spread(list(self.iter_batches()), n)
            return
        # large file: a few windows spread over the file, each starting at a line start
        windows = 8
        per = max(1, n // windows)
        known = set(self._names)
        with self._p.open("rb") as fh:
            for w in range(windows):
                fh.seek(int(size * w / windows))
                if w:
                    fh.readline()
                cols: list[list[str | None]] = [[] for _ in self._names]
                for _lineno, obj in self._objects(fh, limit=per):
                    if obj.keys() - known:
                        continue
                    for i, name in enumerate(self._names):
                        cols[i].append(_json_text(obj.get(name)))
                if cols[0]:
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(c, pa.string()) for c in cols], schema=self._schema
                    )


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


class XlsxSource:
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
        self._names = [str(_cell_text(c) or f"column_{i + 1}").strip() for i, c in enumerate(header)]
        self._schema = pa.schema([(n, pa.string()) for n in self._names])

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

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    native_schema = schema

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

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


class SqlSource:
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
        self._names = [c.name for c in self._t.columns]
        self._schema = pa.schema([(n, pa.string()) for n in self._names])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    native_schema = schema

    @property
    def column_names(self) -> list[str]:
        return list(self._names)

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
