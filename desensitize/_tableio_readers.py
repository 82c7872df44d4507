"""Text readers behind :func:`desensitize.tableio.open_table`: CSV/TSV, JSON Lines (private)."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from desensitize.errors import TableError

MAX_LINE = 4 * 1024 * 1024  # a row longer than this is refused (10 MB lines are bad input)
PREFIX = 1024 * 1024  # bytes looked at to detect the encoding
SMALL_FILE = 16 * 1024 * 1024  # below this, sampling reads the whole file

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


class _StringColumns:
    """A source whose columns are all read as strings: schema and names from ``_names``."""

    _names: list[str]
    _schema: pa.Schema

    def _set_names(self, names: list[str]) -> None:
        self._names = names
        self._schema = pa.schema([(n, pa.string()) for n in names])

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def native_schema(self) -> pa.Schema:
        return self._schema

    @property
    def column_names(self) -> list[str]:
        return list(self._names)


class CsvSource(_StringColumns):
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
        self._set_names(self._header(prefix))

    def _header(self, prefix: bytes) -> list[str]:
        end = prefix.find(b"\n")
        if end < 0 and len(prefix) >= PREFIX:
            raise TableError(f"{self._p.name}: header line longer than {PREFIX} bytes")
        raw = prefix if end < 0 else prefix[: end + 1]
        try:
            text = raw.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise TableError(f"{self._p.name}: header is not {self.encoding}: {exc}") from None
        try:
            row = next(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=self._delim), [])
        except csv.Error as exc:
            raise TableError(f"{self._p.name}: unreadable header row: {exc}") from None
        names = [c.strip() for c in row]
        if not names or all(not n for n in names):
            raise TableError(f"{self._p.name}: no header row")
        counts = Counter(names)
        dup = sorted(n for n, k in counts.items() if k > 1)
        if dup:
            raise TableError(f"{self._p.name}: duplicate column names: {', '.join(dup)}")
        return names

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


class JsonlSource(_StringColumns):
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
        self._set_names(list(names))

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
