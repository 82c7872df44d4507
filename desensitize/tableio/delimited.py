"""CSV and TSV: the reader (strings only, encoding detected, long lines refused) and the writer."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from desensitize.errors import TableError
from desensitize.tableio._common import MAX_LINE, _AtomicFile, _LineFile
from desensitize.tableio.encoding import PREFIX, _codec_name, detect_encoding


class CsvSource(_LineFile):
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

    def _window(self, fh: BinaryIO, first: bool, per: int) -> Iterator[pa.RecordBatch]:
        # a window that lands inside a quoted newline is skipped
        chunk = fh.read(min(4 * 1024 * 1024, max(256 * 1024, per * 512)))
        chunk = chunk[: chunk.rfind(b"\n") + 1]
        if not chunk:
            return
        try:
            table = self._open(io.BytesIO(chunk), per, first).read_all()
        except (pa.ArrowInvalid, UnicodeDecodeError):
            if first:
                raise
            return
        yield from table.slice(0, per).to_batches()


def _has_cr(batch: pa.RecordBatch | pa.Table) -> bool:
    for col in batch.columns:
        if pa.types.is_string(col.type) and pc.any(pc.match_substring(col, "\r")).as_py():
            return True
    return False


class CsvWriter(_AtomicFile):
    """CSV in any Python codec; ``utf-8-sig`` writes a BOM."""

    def __init__(self, path: Path, encoding: str, schema: pa.Schema | None, *, delimiter: str) -> None:
        super().__init__(path, schema)
        self._enc = encoding
        self._delim = delimiter
        self._fh = self._tmp.open("wb")
        self._header_done = False
        if encoding.replace("_", "-").lower() in ("utf-8-sig", "utf8-sig"):
            self._fh.write(b"\xef\xbb\xbf")
        self._utf8 = encoding.replace("_", "-").lower() in ("utf-8", "utf8", "utf-8-sig", "utf8-sig")
        if schema is not None:
            self._write_header(schema)

    def _write_header(self, schema: pa.Schema) -> None:
        buf = io.StringIO()
        csv.writer(buf, delimiter=self._delim, lineterminator="\n").writerow(schema.names)
        self._emit(buf.getvalue().encode("utf-8"))
        self._header_done = True

    def _emit(self, data: bytes) -> None:
        if not self._utf8:
            try:
                data = data.decode("utf-8").encode(self._enc)
            except UnicodeEncodeError as exc:
                raise TableError(
                    f"{self.path.name}: a value cannot be written in {self._enc}: "
                    f"{exc.object[exc.start:exc.end]!r}"
                ) from None
        self._fh.write(data)

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        self._check(batch)
        if not self._header_done:
            self._write_header(batch.schema)
        if batch.num_rows == 0:
            return
        # Fast path: Arrow writes without quotes; it refuses values that need them,
        # and then the csv module quotes minimally (as the input usually was).
        sink = io.BytesIO()
        opts = pacsv.WriteOptions(include_header=False, delimiter=self._delim, quoting_style="none")
        if _has_cr(batch):
            # neither Arrow's "none" style nor the csv module (lineterminator "\n") quote a
            # bare CR; Arrow's "needed" style quotes every string, which reads back exactly
            opts = pacsv.WriteOptions(include_header=False, delimiter=self._delim, quoting_style="needed")
            pacsv.write_csv(batch, sink, write_options=opts)
            self._emit(sink.getvalue())
            return
        try:
            pacsv.write_csv(batch, sink, write_options=opts)
            self._emit(sink.getvalue())
            return
        except pa.ArrowInvalid:
            pass
        buf = io.StringIO()
        writer = csv.writer(buf, delimiter=self._delim, lineterminator="\n")
        cols = [c.to_pylist() for c in batch.columns]
        writer.writerows(zip(*cols, strict=True))
        self._emit(buf.getvalue().encode("utf-8"))

    def _finish(self) -> None:
        if not self._header_done and self.schema is not None:
            self._write_header(self.schema)
        self._fh.close()

    def _close_handle(self) -> None:
        self._fh.close()
