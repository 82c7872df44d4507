"""What the format modules share: string columns, spread samples, atomic files (private).

Every file writer writes into ``.<name>.<random>.part`` beside the target and
``os.replace`` s it over the target on ``close()``; ``abort()`` (or leaving the
``with`` block by an exception) deletes the temporary file, so a failed run
never leaves a half-written output.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO, Self

import pyarrow as pa
import pyarrow.compute as pc

from desensitize.errors import TableError

MAX_LINE = 4 * 1024 * 1024  # a row longer than this is refused (10 MB lines are bad input)
SMALL_FILE = 16 * 1024 * 1024  # below this, sampling reads the whole file


def _strings(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Cast every non-string column of ``batch`` to string."""
    if all(pa.types.is_string(f.type) for f in batch.schema):
        return batch
    cols = [c if pa.types.is_string(c.type) else _to_string(c) for c in batch.columns]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _to_string(col: pa.Array) -> pa.Array:
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


class _Columns:
    """A source's columns: ``native_schema`` as stored, ``schema`` the same names as strings
    (a source that reads every column as strings has the one schema twice)."""

    _native: pa.Schema
    _schema: pa.Schema
    _names: list[str]

    def _set_schema(self, native: pa.Schema) -> None:
        self._native = native
        self._schema = pa.schema([(f.name, pa.string()) for f in native])
        self._names = list(native.names)

    def _set_names(self, names: list[str]) -> None:
        self._set_schema(pa.schema([(n, pa.string()) for n in names]))

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    @property
    def native_schema(self) -> pa.Schema:
        return self._native

    @property
    def column_names(self) -> list[str]:
        return list(self._names)


class _LineFile(_Columns):
    """A text source of one row a line (CSV, JSON Lines) at ``_p``: a small file is sampled
    whole, a large one in a few windows spread over the file, each starting at a line start."""

    _p: Path

    def iter_batches(
        self, batch_size: int = 65_536, *, strings: bool = True
    ) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def _window(self, fh: BinaryIO, first: bool, per: int) -> Iterator[pa.RecordBatch]:
        """About ``per`` rows read from ``fh``, which stands at a line start."""
        raise NotImplementedError

    def sample_batches(self, n: int = 10_000) -> Iterator[pa.RecordBatch]:
        size = self._p.stat().st_size
        if size <= SMALL_FILE:
            yield from _spread(list(self.iter_batches()), n)
            return
        windows = 8
        per = max(1, n // windows)
        with self._p.open("rb") as fh:
            for w in range(windows):
                fh.seek(int(size * w / windows))
                if w:
                    fh.readline()
                yield from self._window(fh, w == 0, per)


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
    return str(value)  # Decimal, int, ... as Python prints them


class _Writer:
    """A writer used as a context manager: ``close()`` on success, ``abort()`` on error."""

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _AtomicFile(_Writer):
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

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError
