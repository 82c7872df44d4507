"""What the format modules share: string columns, spread samples, atomic files (private).

Every file writer writes into ``.<name>.<random>.part`` beside the target and
``os.replace`` s it over the target on ``close()``; ``abort()`` (or leaving the
``with`` block by an exception) deletes the temporary file, so a failed run
never leaves a half-written output. A target that cannot be written (a folder, a
folder that does not exist or takes no files) is a TableError before anything is
written; a full or failing disk is an OutputUnavailable, and the temporary file is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO, Self

import pyarrow as pa
import pyarrow.compute as pc

from desensitize.errors import OutputUnavailable, TableError

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


def _thinned(batches: Iterator[pa.RecordBatch], n: int) -> list[pa.RecordBatch]:
    """Every ``step``-th row of the stream ``batches``, ``step`` doubling whenever more than
    ``2 n`` rows are held: an even sample of a stream of unknown length in bounded memory."""
    kept: list[pa.RecordBatch] = []
    held = seen = 0
    step = 1
    for batch in batches:
        first = (-seen) % step  # the rows whose place in the whole stream is a multiple of step
        seen += batch.num_rows
        if first < batch.num_rows:
            part = batch.take(pa.array(range(first, batch.num_rows, step), pa.int64()))
            kept.append(part)
            held += part.num_rows
        while held > 2 * max(n, 1):
            table = pa.Table.from_batches(kept).combine_chunks()
            table = table.take(pa.array(range(0, table.num_rows, 2), pa.int64()))
            kept, held, step = table.to_batches(), table.num_rows, step * 2
    return kept


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
    whole, a large one in a few windows spread over the file, each starting at a line start
    (unless ``_windowed`` is false: lines that do not end in a "\\n" byte of their own)."""

    _p: Path
    _windowed = True

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
        if not self._windowed:  # read through, keeping an even sample of at most 2n rows
            yield from _spread(_thinned(self.iter_batches(), n), n)
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


# a write that failed for want of room or a working disk, not for the path the user chose
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def check_output_path(path: str | os.PathLike[str], *, probe: bool = False) -> Path:
    """``path`` as a Path if a file can be put there: TableError when it names a folder or
    its folder does not exist; with ``probe``, also when the folder takes no files (a
    temporary file is made there and removed at once), so that a long run is not started
    for nothing."""
    p = Path(path)
    if p.is_dir():
        example = f" (e.g. {p / ('masked' + p.suffix)})" if p.suffix else ""
        raise TableError(f"{p}: is a folder; name a file to write{example}")
    if not p.parent.is_dir():
        what = "is not a folder" if p.parent.exists() else "does not exist"
        raise TableError(f"{p}: the output folder {p.parent} {what}; create it or choose another")
    if probe:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
        except OSError as exc:
            raise write_error(p, exc) from None
        os.close(fd)
        os.unlink(tmp)
    return p


def write_error(path: Path, exc: OSError) -> TableError:
    """What the user is told when writing ``path`` failed with ``exc``."""
    reason = exc.strerror or str(exc)
    if path.is_dir():
        return TableError(f"{path}: is a folder; name a file to write")
    if exc.errno in _NO_ROOM:
        return OutputUnavailable(f"{path}: cannot write the output ({reason}); nothing was "
                                 "written: free space (or raise the limit) and run it again")
    return TableError(f"{path}: cannot write the output there ({reason}); choose a file in "
                      "a folder you can write to")


class _AtomicFile(_Writer):
    """The atomic file writer: subclasses set their own state, then call ``__init__``,
    which makes the temporary file and calls ``_open``; they implement ``_write`` (one
    checked batch), ``_finish`` (flush and close) and ``_close_handle`` (after a failure)."""

    def __init__(self, path: Path, schema: pa.Schema | None) -> None:
        self.path = check_output_path(path)
        self.schema = schema
        self._done = False
        self.rows = 0
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            self._open()
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise write_error(self.path, exc) from None
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def _open(self) -> None:  # subclasses open their handle on ``self._tmp`` here
        pass

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

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        self._check(batch)
        try:
            self._write(batch)
        except OSError as exc:
            raise write_error(self.path, exc) from None

    def _write(self, batch: pa.RecordBatch | pa.Table) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self) -> None:  # subclasses flush their handle here
        pass

    def close(self) -> None:
        if self._done:
            return
        try:
            self._finish()
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise write_error(self.path, exc) from None
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        self._done = True
        try:
            with contextlib.suppress(OSError):  # a handle that cannot flush (a full disk)
                self._close_handle()
        finally:
            self._tmp.unlink(missing_ok=True)

    def _close_handle(self) -> None:
        pass
