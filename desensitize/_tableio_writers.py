"""Atomic writers behind :func:`desensitize.tableio.open_writer` (private).

Every file writer writes into ``.<name>.<random>.part`` beside the target and
``os.replace`` s it over the target on ``close()``; ``abort()`` (or leaving the
``with`` block by an exception) deletes the temporary file, so a failed run
never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.csv as pacsv

from desensitize.errors import TableError


class _AtomicFile:
    def __init__(self, path: Path, schema: pa.Schema | None) -> None:
        self.path = path
        self.schema = schema
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._done = False
        self.rows = 0

    def _check(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch | pa.Table:
        if self._done:
            raise TableError(f"{self.path.name}: writer already closed")
        if self.schema is None:
            self.schema = batch.schema
        elif batch.schema.names != self.schema.names:
            raise TableError(
                f"{self.path.name}: batch columns {batch.schema.names} differ from "
                f"{self.schema.names}"
            )
        self.rows += batch.num_rows
        return batch

    def _finish(self) -> None:  # subclasses flush their handle here
        pass

    def close(self) -> None:
        if self._done:
            return
        try:
            self._finish()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        self._done = True
        try:
            self._close_handle()
        finally:
            self._tmp.unlink(missing_ok=True)

    def _close_handle(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def _has_cr(batch: pa.RecordBatch | pa.Table) -> bool:
    import pyarrow.compute as pc

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
        import csv

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
        import csv

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


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


class JsonlWriter(_AtomicFile):
    """JSON Lines, one object per row, keys in column order, UTF-8."""

    def __init__(self, path: Path, schema: pa.Schema | None) -> None:
        super().__init__(path, schema)
        self._fh = self._tmp.open("w", encoding="utf-8", newline="\n")

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        self._check(batch)
        names = batch.schema.names
        cols = [c.to_pylist() for c in batch.columns]
        for row in zip(*cols, strict=True):
            obj = {n: _jsonable(v) for n, v in zip(names, row, strict=True)}
            try:
                self._fh.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
            except UnicodeEncodeError:
                raise TableError(f"{self.path.name}: a value is not valid Unicode text") from None

    def _finish(self) -> None:
        self._fh.close()

    def _close_handle(self) -> None:
        self._fh.close()


class ParquetWriter(_AtomicFile):
    """Parquet; the schema of the first batch (or the one given) is fixed."""

    def __init__(self, path: Path, schema: pa.Schema | None) -> None:
        super().__init__(path, schema)
        self._w: Any = None

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        import pyarrow.parquet as pq

        self._check(batch)
        if self._w is None:
            self._w = pq.ParquetWriter(self._tmp, self.schema or batch.schema)
        target = self._w.schema_arrow if hasattr(self._w, "schema_arrow") else self._w.schema
        if batch.schema != target:
            batch = batch.cast(target)
        if isinstance(batch, pa.RecordBatch):
            self._w.write_batch(batch)
        else:
            self._w.write_table(batch)

    def _finish(self) -> None:
        import pyarrow.parquet as pq

        if self._w is None:
            if self.schema is None:
                raise TableError(f"{self.path.name}: nothing written and no schema given")
            pq.write_table(self.schema.empty_table(), self._tmp)
        else:
            self._w.close()

    def _close_handle(self) -> None:
        if self._w is not None:
            with contextlib.suppress(Exception):  # cleanup after an earlier failure
                self._w.close()


class XlsxWriter(_AtomicFile):
    """XLSX through openpyxl's write-only workbook (constant memory)."""

    def __init__(self, path: Path, schema: pa.Schema | None, *, sheet: str | None) -> None:
        super().__init__(path, schema)
        import openpyxl

        self._wb = openpyxl.Workbook(write_only=True)
        self._ws = self._wb.create_sheet(sheet or "Sheet1")
        self._header_done = False

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        self._check(batch)
        if not self._header_done:
            self._ws.append(list(batch.schema.names))
            self._header_done = True
        from openpyxl.utils.exceptions import IllegalCharacterError

        cols = [c.to_pylist() for c in batch.columns]
        try:
            for row in zip(*cols, strict=True):
                self._ws.append(list(row))
        except IllegalCharacterError:
            raise TableError(
                f"{self.path.name}: a value holds control characters that XLSX cannot store"
            ) from None

    def _finish(self) -> None:
        if not self._header_done and self.schema is not None:
            self._ws.append(list(self.schema.names))
        self._wb.save(self._tmp)


class SqlWriter:
    """Writes a new table (all TEXT columns) and swaps it in by rename in one transaction."""

    def __init__(self, url: str, table: str, schema: pa.Schema | None) -> None:
        import secrets

        import sqlalchemy as sa

        self._sa = sa
        self._url = url
        self._table = table
        self._tmp_name = f"_{table}_tmp_{secrets.token_hex(4)}"
        self.schema = schema
        self._engine = sa.create_engine(url)
        self._t: Any = None
        self._done = False
        self.rows = 0

    def _ensure(self, schema: pa.Schema) -> None:
        sa = self._sa
        if self._t is None:
            md = sa.MetaData()
            self._t = sa.Table(self._tmp_name, md, *[sa.Column(n, sa.Text) for n in schema.names])
            md.create_all(self._engine)

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        self.schema = self.schema or batch.schema
        self._ensure(self.schema)
        rows = batch.to_pylist()
        self.rows += len(rows)
        if rows:
            with self._engine.begin() as conn:
                conn.execute(self._t.insert(), [{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows])

    def close(self) -> None:
        if self._done:
            return
        sa = self._sa
        if self.schema is None:
            raise TableError("nothing written and no schema given")
        self._ensure(self.schema)
        prep = self._engine.dialect.identifier_preparer
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {prep.quote(self._table)}"))
                conn.execute(
                    sa.text(
                        f"ALTER TABLE {prep.quote(self._tmp_name)} RENAME TO {prep.quote(self._table)}"
                    )
                )
        except sa.exc.SQLAlchemyError:
            self.abort()
            raise
        self._done = True
        self._engine.dispose()

    def abort(self) -> None:
        self._done = True
        if self._t is not None:
            self._t.drop(self._engine, checkfirst=True)
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
