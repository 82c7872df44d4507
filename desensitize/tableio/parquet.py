"""Parquet: read by row group (types kept or cast to strings), written atomically."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from desensitize.errors import TableError
from desensitize.tableio._common import _AtomicFile, _Columns, _spread, _strings


class ParquetSource(_Columns):
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
        self._set_schema(self._file.schema_arrow)

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


class ParquetWriter(_AtomicFile):
    """Parquet; the schema of the first batch (or the one given) is fixed."""

    def __init__(self, path: Path, schema: pa.Schema | None) -> None:
        self._w: Any = None
        super().__init__(path, schema)

    def _write(self, batch: pa.RecordBatch | pa.Table) -> None:
        import pyarrow.parquet as pq

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
