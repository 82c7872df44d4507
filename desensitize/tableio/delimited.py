"""CSV and TSV: the reader (strings only, encoding detected, long lines refused) and the writer."""

from __future__ import annotations

import codecs
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
from desensitize.tableio.encoding import PREFIX, WIDE, _codec_name, detect_encoding, wide_codec


class CsvSource(_LineFile):
    """CSV/TSV file; every column read as string."""

    format = "csv"

    def __init__(self, path: Path, *, encoding: str | None, delimiter: str) -> None:
        self.path = str(path)
        self._p = path
        self._delim = delimiter
        self.format = "tsv" if delimiter == "\t" else "csv"
        self._header_only = False  # the file is its header line, without a line end
        with path.open("rb") as fh:
            prefix = fh.read(PREFIX)
        if not prefix.strip():
            raise TableError(f"{path.name}: empty file")
        if encoding is None:
            self.encoding = detect_encoding(prefix, path.name)
        else:
            self.encoding = self._named(encoding, prefix)
        self._set_names(self._header(prefix, whole=len(prefix) < PREFIX))

    def _named(self, encoding: str, prefix: bytes) -> str:
        """The codec to read the file in by the encoding the caller named."""
        codec = _codec_name(encoding)
        if codec in WIDE:
            if b"\x00" not in prefix:
                raise TableError(
                    f"{self._p.name}: not {encoding} text (a {codec.upper()[:6]} table has NUL "
                    "bytes in its commas and line ends; this file has none): leave the "
                    "encoding to detection or name the file's own")
            return wide_codec(codec, prefix)
        if b"\x00" in prefix:
            raise TableError(f"{self._p.name}: binary file (NUL bytes), not a text table")
        return codec

    def _line_end(self, prefix: bytes) -> tuple[int, bool]:
        """Where the first line of ``prefix`` ends (the offset of its CR or LF, -1 when
        there is none) and whether that line ends in a bare CR (old Mac line ends).
        A line end is looked for as the encoding writes it, at a character boundary."""
        codec = _codec_name(self.encoding)
        unit = WIDE.get(codec, 1)
        plain, start = codec, 0
        if codec == "utf-8-sig":
            plain, start = "utf-8", len(codecs.BOM_UTF8) if prefix.startswith(codecs.BOM_UTF8) else 0
        elif codec in ("utf-16", "utf-32"):  # named so only with its byte-order mark
            little = codecs.BOM_UTF16_LE if codec == "utf-16" else codecs.BOM_UTF32_LE
            plain, start = codec + ("-le" if prefix.startswith(little) else "-be"), unit
        cr, lf = "\r".encode(plain), "\n".encode(plain)

        def find(needle: bytes) -> int:
            i = prefix.find(needle, start)
            while i >= 0 and (i - start) % unit:
                i = prefix.find(needle, i + 1)
            return i

        ends = [i for i in (find(cr), find(lf)) if i >= 0]
        if not ends:
            return -1, False
        end = min(ends)
        bare_cr = prefix[end:end + len(cr)] == cr and prefix[end + len(cr):end + len(cr) + len(lf)] != lf
        return end, bare_cr

    def _header(self, prefix: bytes, *, whole: bool) -> list[str]:
        end, bare_cr = self._line_end(prefix)
        if end < 0 and not whole:
            raise TableError(f"{self._p.name}: header line longer than {PREFIX} bytes")
        self._header_only = end < 0
        # windows of a large file start after a "\n" byte: not for bare CRs nor wide codes
        self._windowed = not bare_cr and _codec_name(self.encoding) not in WIDE
        raw = prefix if end < 0 else prefix[:end]
        try:
            text = raw.decode(self.encoding)
        except UnicodeError as exc:
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
        if self._header_only:
            return
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
        except (pa.ArrowInvalid, UnicodeError) as exc:
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
        if "invalid UTF8" in msg or isinstance(exc, UnicodeError):
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
        except (pa.ArrowInvalid, UnicodeError):
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
    """CSV in any Python text codec; ``utf-8-sig`` writes a BOM, and so do ``utf-16`` and
    ``utf-32``: once, at the start (one incremental encoder encodes the whole file)."""

    def __init__(self, path: Path, encoding: str, schema: pa.Schema | None, *, delimiter: str) -> None:
        codec = _codec_name(encoding)  # before anything is created: TableError for rot13 & co
        self._enc = encoding
        self._delim = delimiter
        self._header_done = False
        self._utf8 = codec in ("utf-8", "utf-8-sig")
        self._bom = codec == "utf-8-sig"
        self._encoder = None if self._utf8 else codecs.getincrementalencoder(codec)("strict")
        super().__init__(path, schema)

    def _open(self) -> None:
        self._fh = self._tmp.open("wb")
        if self._bom:
            self._fh.write(codecs.BOM_UTF8)
        if self.schema is not None:
            self._write_header(self.schema)

    def _write_header(self, schema: pa.Schema) -> None:
        buf = io.StringIO()
        csv.writer(buf, delimiter=self._delim, lineterminator="\n").writerow(schema.names)
        self._emit(buf.getvalue().encode("utf-8"))
        self._header_done = True

    def _emit(self, data: bytes, *, final: bool = False) -> None:
        if self._encoder is not None:
            try:
                data = self._encoder.encode(data.decode("utf-8"), final)
            except UnicodeEncodeError as exc:
                raise TableError(
                    f"{self.path.name}: a value cannot be written in {self._enc}: "
                    f"{exc.object[exc.start:exc.end]!r}"
                ) from None
            except UnicodeError as exc:  # codecs that refuse whole texts (idna: a long label)
                raise TableError(f"{self.path.name}: a value cannot be written in {self._enc}: "
                                 f"{exc}") from None
        self._fh.write(data)

    def _write(self, batch: pa.RecordBatch | pa.Table) -> None:
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
        self._emit(b"", final=True)
        self._fh.close()

    def _close_handle(self) -> None:
        self._fh.close()
