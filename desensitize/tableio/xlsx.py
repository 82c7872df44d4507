"""XLSX: the first (or named) sheet, with a zip-bomb guard; written atomically."""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from desensitize.errors import TableError, TableTooLarge
from desensitize.tableio._common import _AtomicFile, _cell_text, _Columns, _spread

XLSX_MAX_UNCOMPRESSED = 1024 * 1024 * 1024

XLSX_MAX_RATIO = 200

PEEK_ROWS = 1_000  # rows read at opening to find columns whose header cell was left empty


def _filled(row: tuple[Any, ...]) -> int:
    """How many cells of ``row`` reach its last value."""
    for i in range(len(row) - 1, -1, -1):
        if row[i] is not None:
            return i + 1
    return 0


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


class XlsxSource(_Columns):
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
        try:
            header = next(rows, None)
            if header is None or all(c is None for c in header):
                raise TableError(f"{path.name}: empty worksheet")
            # As wide as the named header cells, or as the values in the first rows below
            # them: a column whose header cell was left empty is named column_N, at the end
            # as in the middle.
            width = _filled(header)
            for _, row in zip(range(PEEK_ROWS), rows, strict=False):
                width = max(width, _filled(row))
        finally:
            rows.close()
        names = [(_cell_text(header[i]) if i < len(header) else None) or "" for i in range(width)]
        names = [n.strip() or f"column_{i + 1}" for i, n in enumerate(names)]
        counts = Counter(names)
        dup = sorted(n for n, k in counts.items() if k > 1)
        if dup:
            raise TableError(f"{path.name}: duplicate column names: {', '.join(dup)}")
        self._set_names(names)

    def _rows(self) -> Generator[tuple[Any, ...], None, None]:
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
                from openpyxl.utils import get_column_letter

                col = next(i for i in range(width, len(row)) if row[i] is not None)
                raise TableError(
                    f"{self._p.name}: row {r} has a value in column {get_column_letter(col + 1)}, "
                    f"which has no header (nor any value in the first {PEEK_ROWS:,} rows); "
                    "give that column a header or delete the value")
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


class XlsxWriter(_AtomicFile):
    """XLSX through openpyxl's write-only workbook (constant memory)."""

    def __init__(self, path: Path, schema: pa.Schema | None, *, sheet: str | None) -> None:
        import openpyxl

        self._wb = openpyxl.Workbook(write_only=True)
        self._ws = self._wb.create_sheet(sheet or "Sheet1")
        self._header_done = False
        super().__init__(path, schema)

    def _write(self, batch: pa.RecordBatch | pa.Table) -> None:
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
